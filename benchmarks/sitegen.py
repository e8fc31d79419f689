"""A generated site of any size, for benchmarks/site_scale.py and the unit tests that hold the
site compile against the per-host compile (``generate``), and the shape of a large user's site
for benchmarks/site_shape.py (``large_site``). Deterministic for given sizes and seed.

Addresses (``generate``): hosts and segments on 2001:db8:1000::/36 and 198.51.100.0/25
(trusted), upstream prefixes from 2001:db8:8000::/33 and 203.0.113.0/24. ``large_site``: hosts
and segments on 10.0.0.0/8 and 2001:db8:1000::/36 (trusted), upstream prefixes from
198.18.0.0/15, 2001:db8:8000::/33 and 203.0.113.0/24. Nothing is ever sent to them."""

from __future__ import annotations

import ipaddress
import random

SERVICES = ["dns", "ntp", "smtp", "http", "https", "ssh", "submission", "imaps"]


def segment_block(s: int) -> int:
    """The 16-bit block of segment ``s``'s IPv6 /48 inside the trusted 2001:db8:1000::/36:
    2001:db8:1f00:: upwards for the first 256, then 2001:db8:1e00:: upwards."""
    return (0x1f00 + s) if s < 256 else (0x1e00 + s - 256)


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
        "egress_segments": {f"seg{s:03d}": {"prefixes": [f"2001:db8:{segment_block(s):x}::/48"], "role": f"role{s % max(roles, 1):03d}"}
                            for s in range(segments)},
        "egress_exceptions": [
            {"hosts": [f"h{(e * 7) % max(hosts, 1):05d}"], "service": "https", "to": [f"203.0.113.{e % 200 + 1}"],
             "reason": "generated", "owner": "bench", "expires": "2099-12-31"} for e in range(exceptions)],
    }
    edge = {"inside": [{"interface": "eth0", "prefixes": ["198.51.100.0/25", "2001:db8:1000::/36"]}], "outside": "eth1"}
    return {"variables": variables, "addresses": addresses, "groups": groups, "host_roles": host_roles, "edge": edge}


def wide_edge(site: dict, trusted: int, scattered: bool = False) -> dict:
    """``site`` with ``trusted`` trusted prefixes (IPv6 /64s holding its hosts, then more),
    each declared behind the edge's inside interface. The /64s are consecutive (they merge
    into a few prefixes), or with ``scattered`` every other /64 of 2001:db8:1000::/36, listed
    in a shuffled order (no two merge)."""
    base = ipaddress.ip_network("2001:db8:1000::/36")
    step = 2 if scattered else 1
    nets = [ipaddress.ip_network((int(base.network_address) + (i * step << 64), 64)) for i in range(trusted - 1)]
    if scattered:
        random.Random(trusted).shuffle(nets)
    prefixes = ["198.51.100.0/25"] + [str(net) for net in nets]
    for h, name in enumerate(sorted(site["addresses"])):
        site["addresses"][name] = [str(ipaddress.ip_network(prefixes[1 + h % (trusted - 1)]).network_address + 1 + h)]
    site["variables"]["egress_trusted_prefixes"] = prefixes
    site["edge"] = {"inside": [{"interface": "eth0", "prefixes": prefixes}], "outside": "eth1"}
    return site


TEAMS = [f"team-{name}" for name in ("payments", "search", "storage", "identity", "mail", "build", "data", "edge", "ops", "web",
                                     "mobile", "billing", "ml", "security", "support", "ads", "maps", "media", "infra", "qa")]


def large_site(hosts: int, roles: int = 50, prefixes: int = 5000, seed: int = 1, groups: int = 200, segments: int = 300,
               exceptions: int = 2000, expired: int = 100) -> dict:
    """The shape of a large user's site, as ``generate`` returns it: ``groups`` inventory groups
    (``svc000``...) each used as an upstream ``grpNNN: group:svcNNN``, every host in two of them;
    ``prefixes`` upstream prefixes (half IPv4 /29s in 198.18.0.0/15, half IPv6 /56s in
    2001:db8:8000::/33, none adjacent, so none merge) over 100 named upstreams; ``roles`` roles,
    each allowing services to three prefix upstreams and four group upstreams (every group upstream
    is used) and DNS to the resolvers, one role in five serving HTTPS to a group upstream and SSH
    to the site; every host an IPv4 address in 10.0.0.0/16, the even-numbered ones an IPv6 address
    too; ``segments`` segments (an IPv4 /24 in 10.128.0.0/14 and an IPv6 /48 each, apart from the
    hosts); ``exceptions`` exceptions naming one to three hosts, to an upstream or to addresses, of
    which ``expired`` (spread through the list) expired in 2024 and the others expire from 2030."""
    rng = random.Random(seed)
    if hosts < 2 or hosts > 65000 or segments > 1000 or prefixes > 16000:
        raise ValueError("large_site: 2 to 65,000 hosts, at most 1,000 segments and 16,000 prefixes")
    prefix_upstreams = 100
    upstreams: dict[str, object] = {f"up{i:03d}": [] for i in range(prefix_upstreams)}
    for i in range(prefixes):
        members = upstreams[f"up{rng.randrange(prefix_upstreams):03d}"]
        if i % 2 == 0:  # every other /29 of 198.18.0.0/15: 8,192 of them
            members.append(str(ipaddress.ip_address("198.18.0.0") + 16 * (i // 2)) + "/29")
        else:  # every other /56 of 2001:db8:8000::/33
            j = i // 2
            members.append(f"2001:db8:{0x8000 + (j >> 7):x}:{(j & 0x7f) << 9:x}::/56")
    for name, members in upstreams.items():
        if not members:
            members.append("203.0.113.250")
    upstreams.update({f"grp{g:03d}": f"group:svc{g:03d}" for g in range(groups)})
    upstreams["resolvers"] = "group:resolvers"
    role_defs = {}
    for r in range(roles):
        allow = [{"service": rng.sample(SERVICES, 2), "to": f"up{(2 * r + k) % prefix_upstreams:03d}"} for k in range(3)]
        allow += [{"service": rng.sample(SERVICES, 2), "to": [f"grp{(4 * r + k) % groups:03d}" for k in range(2 * j, 2 * j + 2)]}
                  for j in range(2)]
        allow.append({"service": "dns", "to": "resolvers"})
        role_defs[f"role{r:03d}"] = {"description": f"generated role {r}", "allow": allow}
        if r % 5 == 0:
            role_defs[f"role{r:03d}"]["serves"] = [{"service": "https", "from": [f"grp{(4 * r + 7) % groups:03d}"]},
                                                   {"service": "ssh", "from": ["10.0.0.0/16"]}]
    addresses, host_roles = {}, {}
    v4_hosts, v6_hosts = ipaddress.ip_address("10.0.0.0"), ipaddress.ip_address("2001:db8:1000::")
    inventory_groups: dict[str, list[str]] = {f"svc{g:03d}": [] for g in range(groups)}
    for h in range(hosts):
        name = f"h{h:05d}"
        addresses[name] = [str(v4_hosts + 1 + h)] + ([str(v6_hosts + 0x10000 + h)] if h % 2 == 0 else [])
        host_roles[name] = f"role{h % roles:03d}"
        inventory_groups[f"svc{h % groups:03d}"].append(name)
        second = f"svc{(h * 7 + 3) % groups:03d}"
        if name not in inventory_groups[second]:
            inventory_groups[second].append(name)
    for g in range(groups):  # a site smaller than two hosts per group: no group is empty
        if not inventory_groups[f"svc{g:03d}"]:
            inventory_groups[f"svc{g:03d}"].append(f"h{g % hosts:05d}")
    inventory_groups["resolvers"] = sorted(addresses)[:2]
    owners = [*TEAMS, *(f"{team}@example.org" for team in TEAMS)]
    targets = [name for name in upstreams if name != "resolvers"]
    expired_at = {round(k * exceptions / expired) for k in range(expired)} if expired else set()
    exception_list = []
    for e in range(exceptions):
        named = sorted({f"h{rng.randrange(hosts):05d}" for dummy in range(rng.randint(1, 3))})
        if e % 2 == 0:
            to = [rng.choice(targets)]
        else:
            to = [f"203.0.113.{rng.randrange(1, 255)}"] + ([f"2001:db8:9{rng.randrange(0x1000):03x}::/64"] if e % 4 == 1 else [])
        year = 2024 if e in expired_at else 2030 + e % 60
        exception_list.append({"hosts": named, "service": rng.sample(SERVICES, rng.randint(1, 2)), "to": to,
                               "reason": f"CHG-{100000 + e}: generated exception {e}", "owner": rng.choice(owners),
                               "expires": f"{year}-{1 + e % 12:02d}-{1 + e % 28:02d}"})
    variables = {
        "egress_trusted_prefixes": ["10.0.0.0/8", "2001:db8:1000::/36"],
        "egress_upstreams": upstreams,
        "egress_roles": role_defs,
        "egress_segments": {f"seg{s:03d}": {"prefixes": [f"10.{128 + (s >> 8)}.{s & 0xff}.0/24", f"2001:db8:1{0x100 + s:03x}::/48"],
                                            "role": f"role{s % roles:03d}", "description": f"generated segment {s}"}
                            for s in range(segments)},
        "egress_exceptions": exception_list,
    }
    edge = {"inside": [{"interface": "eth0", "prefixes": ["10.0.0.0/8", "2001:db8:1000::/36"]}], "outside": "eth1"}
    return {"variables": variables, "addresses": addresses, "groups": inventory_groups, "host_roles": host_roles, "edge": edge}
