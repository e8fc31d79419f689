"""A generated site of any size, for benchmarks/site_scale.py and the unit tests that hold the
site compile against the per-host compile. Deterministic for given sizes and seed.

Addresses: hosts and segments on 2001:db8:1000::/36 and 198.51.100.0/25 (trusted), upstream
prefixes from 2001:db8:8000::/33 and 203.0.113.0/24. Nothing is ever sent to them."""

from __future__ import annotations

import ipaddress
import random

SERVICES = ["dns", "ntp", "smtp", "http", "https", "ssh", "submission", "imaps"]


def generate(hosts: int, roles: int, prefixes: int, seed: int = 1, segments: int = 0, exceptions: int = 0) -> dict:
    """Returns {variables, addresses, groups, host_roles, edge}: the site-wide variables as
    group_vars/all would hold them, each host's addresses, the groups, each host's role."""
    rng = random.Random(seed)
    v6_hosts = ipaddress.ip_network("2001:db8:1000::/36")
    upstream_count = max(1, roles)
    upstreams: dict[str, list[str]] = {f"up{i:03d}": [] for i in range(upstream_count)}
    v4_pool = [f"203.0.113.{i}" for i in range(1, 255)]
    for i in range(prefixes):
        name = f"up{rng.randrange(upstream_count):03d}"
        if i < len(v4_pool) and i % 4 == 0:
            upstreams[name].append(v4_pool[i])
        else:
            upstreams[name].append(f"2001:db8:{0x8000 + (i >> 8) % 0x7fff:x}:{i & 0xff:x}00::/56")
    for name, members in upstreams.items():
        if not members:
            members.append("203.0.113.250")
    role_defs = {}
    for r in range(roles):
        allow = [{"service": rng.sample(SERVICES, 2), "to": f"up{(r + k) % upstream_count:03d}"} for k in range(3)]
        allow.append({"service": "dns", "to": "resolvers"})
        role_defs[f"role{r:03d}"] = {"allow": allow}
    addresses, host_roles = {}, {}
    groups: dict[str, list[str]] = {"resolvers": []}
    for h in range(hosts):
        name = f"h{h:05d}"
        addresses[name] = [str(v6_hosts.network_address + 0x10000 + h)]
        host_roles[name] = f"role{h % roles:03d}" if roles else "client"
        groups.setdefault(f"grp_{host_roles[name]}", []).append(name)
    groups["resolvers"] = sorted(addresses)[:2]
    variables = {
        "egress_trusted_prefixes": ["198.51.100.0/25", "2001:db8:1000::/36"],
        "egress_upstreams": {**upstreams, "resolvers": "group:resolvers"},
        "egress_roles": role_defs,
        "egress_segments": {f"seg{s:03d}": {"prefixes": [f"2001:db8:1f{s:02x}::/48"], "role": f"role{s % max(roles, 1):03d}"}
                            for s in range(segments)},
        "egress_exceptions": [
            {"hosts": [f"h{(e * 7) % max(hosts, 1):05d}"], "service": "https", "to": [f"203.0.113.{e % 200 + 1}"],
             "reason": "generated", "owner": "bench", "expires": "2099-12-31"} for e in range(exceptions)],
    }
    edge = {"inside": [{"interface": "eth0", "prefixes": ["198.51.100.0/25", "2001:db8:1000::/36"]}], "outside": "eth1"}
    return {"variables": variables, "addresses": addresses, "groups": groups, "host_roles": host_roles, "edge": edge}


def wide_edge(site: dict, trusted: int) -> dict:
    """``site`` with ``trusted`` trusted prefixes (IPv6 /64s holding its hosts, then more),
    each declared behind the edge's inside interface."""
    base = ipaddress.ip_network("2001:db8:1000::/36")
    prefixes = ["198.51.100.0/25"] + [str(net) for net, dummy in zip(base.subnets(new_prefix=64), range(trusted - 1))]
    for h, name in enumerate(sorted(site["addresses"])):
        site["addresses"][name] = [str(ipaddress.ip_network(prefixes[1 + h % (trusted - 1)]).network_address + 1 + h)]
    site["variables"]["egress_trusted_prefixes"] = prefixes
    site["edge"] = {"inside": [{"interface": "eth0", "prefixes": prefixes}], "outside": "eth1"}
    return site
