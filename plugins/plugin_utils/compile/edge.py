# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site's edge: a gateway's forward-hook Policy IR (private to the collection).

Compiled from the whole inventory, with the same helpers as a host's policy, so the edge
lets out exactly what the hosts' own policies let out, and less: the site baseline (no
transit, anti-spoofing per inside interface, special-purpose destinations, routing
protocols, a per-source limit on new connections) comes before every allow.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Callable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import (
    alert_rules,
    dns_extra,
    begin,
    exception_record,
    exception_warnings,
    wide_service_warnings,
)
from ansible_collections.warden.egress.plugins.plugin_utils.compile.roles import Plans, owner_paths
from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import NEVER_LEAVE, ROUTING_PROTOCOLS
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError, parse_bool
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import (
    NAME_RE, RATE_RE, as_list, check_keys, as_mapping, require_keys, merge, parse_network,
)
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import FAMILIES, dedupe, new_ir, new_rule
from ansible_collections.warden.egress.plugins.plugin_utils.model.site import parse_roles
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import Spans, members, text, tightest
from ansible_collections.warden.egress.plugins.plugin_utils.render.platforms import capabilities, check_interface, check_meter, check_names

EDGE_KEYS = {"inside", "outside", "routes", "conn_limit", "never_leave"}
INSIDE_KEYS = {"interface", "prefixes"}
LIMIT_KEYS = {"rate", "burst"}
SEGMENT_KEYS = {"prefixes", "role", "description"}
DEFAULT_LIMIT = {"rate": "100/second", "burst": 200}
# A declared inside prefix this many bits shorter than what its hosts and segments need
# is "far wider" (16 times the address space, or more).
WIDE_BITS = 4


def _trusted_prefixes(raw: object, path: str, trusted: Spans) -> list:
    """Prefixes that must each lie within egress_trusted_prefixes."""
    prefixes = []
    for j, value in enumerate(as_list(raw, path)):
        net = parse_network(value, f"{path}[{j}]")
        if not trusted.covers(net):
            raise PolicyError(f"{path}[{j}]", value, "is not within egress_trusted_prefixes")
        prefixes.append(net)
    return prefixes


def _parse_edge(raw: object, trusted: Spans, platform: str) -> dict:
    edge = as_mapping(raw, "egress_edge")
    check_keys(edge, EDGE_KEYS, "egress_edge")
    require_keys(edge, ("inside", "outside"), "egress_edge", "is required for an edge")
    outside = [check_interface(platform, v, "egress_edge.outside" if isinstance(edge["outside"], str) else f"egress_edge.outside[{i}]")
               for i, v in enumerate(as_list(edge["outside"], "egress_edge.outside"))]
    single = capabilities(platform)["one_inside_one_outside"]
    if single and len(outside) != 1:
        raise PolicyError("egress_edge.outside", edge["outside"], f"must be one interface for egress_platform {platform} (one ACL is bound out on it)")
    inside = []
    for i, entry in enumerate(as_list(edge["inside"], "egress_edge.inside")):
        path = f"egress_edge.inside[{i}]"
        entry = as_mapping(entry, path)
        check_keys(entry, INSIDE_KEYS, path)
        require_keys(entry, ("interface", "prefixes"), path)
        name = check_interface(platform, entry["interface"], f"{path}.interface")
        if name in outside:
            raise PolicyError(f"{path}.interface", name, "is also an outside interface")
        if name in [x["interface"] for x in inside]:
            raise PolicyError(f"{path}.interface", name, "is declared twice")
        prefixes = _trusted_prefixes(entry["prefixes"], f"{path}.prefixes", trusted)
        inside.append({"interface": name, "prefixes": prefixes, "path": path})
    routes = parse_bool(edge.get("routes", False), "egress_edge.routes")
    limit_raw = edge.get("conn_limit", True)
    if limit_raw is not None and not isinstance(limit_raw, Mapping):
        try:
            limit_raw = parse_bool(limit_raw, "egress_edge.conn_limit")
        except PolicyError:
            raise PolicyError("egress_edge.conn_limit", limit_raw, "must be true or false (or yes/no, on/off, 1/0), "
                                                                   "or a mapping with rate and burst") from None
    if limit_raw is False:
        limit = None
    elif limit_raw is True:
        limit = dict(DEFAULT_LIMIT)
    else:
        limit = dict(DEFAULT_LIMIT)
        user = as_mapping(limit_raw, "egress_edge.conn_limit")
        check_keys(user, LIMIT_KEYS, "egress_edge.conn_limit")
        limit.update(user)
        if not isinstance(limit["rate"], str) or not RATE_RE.fullmatch(limit["rate"]):
            raise PolicyError("egress_edge.conn_limit.rate", limit["rate"], "is not a rate like '25/second'")
        burst = limit["burst"]
        if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= 100000:
            raise PolicyError("egress_edge.conn_limit.burst", burst, "is not a number of connections (1-100000)")
        check_meter(platform, limit)
    never_raw = as_list(edge.get("never_leave") or [], "egress_edge.never_leave", allow_empty=True)
    never = [parse_network(v, f"egress_edge.never_leave[{i}]") for i, v in enumerate(never_raw)]
    if single and len(inside) != 1:
        raise PolicyError("egress_edge.inside", [e["interface"] for e in inside],
                          f"must be one interface for egress_platform {platform} (the ACL's sources are that interface's prefixes)")
    return {"inside": inside, "outside": outside, "routes": routes, "conn_limit": limit, "never_leave": never}


def parse_segments(raw: object, role_defs: Mapping, trusted: Spans) -> list[dict]:
    """egress_segments: each segment's name, prefixes (within the trusted prefixes) and roles."""
    out = []
    for name, spec in as_mapping(raw, "egress_segments").items():
        path = f"egress_segments.{name}"
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise PolicyError(path, name, "is not a valid segment name (letters, digits and '_', starting with a letter, at most 32)")
        spec = as_mapping(spec, path)
        check_keys(spec, SEGMENT_KEYS, path)
        require_keys(spec, ("prefixes",), path)
        prefixes = _trusted_prefixes(spec["prefixes"], f"{path}.prefixes", trusted)
        roles = parse_roles(spec.get("role"), role_defs, f"{path}.role", f"segment {name}")
        for role in roles:
            for owned in owner_paths(*role_defs[role]):
                raise PolicyError(owned, role, f"names local users or groups, which an edge cannot see (it sees addresses only), and segment {name} "
                                               f"has no host policy of its own to enforce them: give {path}.role a role without users and groups")
        out.append({"name": name, "prefixes": prefixes, "roles": roles})
    return out


def _mixed_roles(sources: list[tuple]) -> list[tuple]:
    """Pairs (wider, narrower) of nested sources whose roles differ. ``sources`` holds
    (network, where, roles). Prefixes either nest or are apart, so one sweep in address order
    that keeps the widest open prefix meets every such pair, or one that implies it."""
    found = []
    for version in (4, 6):
        ordered = sorted((s for s in sources if s[0].version == version), key=lambda s: (int(s[0].network_address), -s[0].num_addresses))
        widest = None
        for source in ordered:
            if widest is not None and int(source[0].network_address) <= int(widest[0].broadcast_address):
                if sorted(widest[2]) != sorted(source[2]):
                    found.append((widest, source))
            else:
                widest = source
    return found


def _check_sources(host_addresses: Mapping, host_role_lists: Mapping, segments: list) -> list[str]:
    """Each source address must get one set of roles at the edge: two hosts with one address
    and overlapping segments of different roles are errors; a host inside a segment of other
    roles gets both at the edge (a warning)."""
    owner: dict = {}
    for host, addresses in host_addresses.items():
        for address in addresses:
            other = owner.setdefault(address, host)
            if other != host:
                raise PolicyError(f"hostvars[{host}].egress_addresses", str(address.network_address),
                                  f"is also an address of {other} (hostvars[{other}].egress_addresses); "
                                  "at the edge that address would get the roles of both hosts")
    sources = [(p, f"egress_segments.{s['name']}.prefixes", s["roles"]) for s in segments for p in s["prefixes"]]
    sources += [(a, f"hostvars[{host}].egress_addresses", host_role_lists[host]) for host, addresses in host_addresses.items() for a in addresses]
    warnings = []
    for (wide, wide_at, wide_roles), (narrow, narrow_at, narrow_roles) in _mixed_roles(sources):
        if narrow_at.startswith("egress_segments"):
            raise PolicyError(narrow_at, str(narrow), f"overlaps {wide} of {wide_at} with other roles ({', '.join(narrow_roles)} against "
                                                      f"{', '.join(wide_roles)}); at the edge its sources would get the roles of both")
        warnings.append(f"{narrow_at}: {narrow} lies in {wide} of {wide_at}, which has other roles ({', '.join(wide_roles)}); "
                        "at the edge it may send what both allow")
    return warnings


def _width_warnings(inside: list, sources: list) -> list[str]:
    """Warn when a declared inside prefix is far wider than the hosts and segments in it."""
    warnings = []
    ordered = {v: sorted((s for s in sources if s.version == v), key=lambda s: int(s.network_address)) for v in (4, 6)}
    starts = {v: [int(s.network_address) for s in ordered[v]] for v in (4, 6)}
    for entry in inside:
        for net in entry["prefixes"]:
            within = members(net, ordered[net.version], starts[net.version])
            if not within:
                warnings.append(f"{entry['path']}: {text(net)} holds no host or segment of the inventory")
                continue
            tight = tightest(int(within[0].network_address), max(int(m.broadcast_address) for m in within), net.version)
            if tight.prefixlen - net.prefixlen >= WIDE_BITS:
                warnings.append(
                    f"{entry['path']}: {net} is far wider than the hosts and segments behind it "
                    f"(they fit in {tight}); a tighter prefix lets fewer forged sources out"
                )
    return warnings


def compile_edge(
    variables: Mapping,
    target: str,
    addresses: Callable[[str], object] | Mapping | None = None,
    groups: Mapping | None = None,
    host_roles: Mapping | None = None,
    today: datetime.date | None = None,
    plans: Plans | None = None,
) -> dict:
    """Build the forward-hook Policy IR of the edge ``target``.

    ``host_roles`` maps every inventory host that has an ``egress_role`` to that value;
    their addresses come from ``addresses`` as for upstreams.
    """
    variables, settings, plans = begin(variables, target, addresses, groups, today, plans)
    site = plans.site
    role_defs, inventory = site.role_defs, site.inventory
    trusted = Spans(site.trusted)
    edge = _parse_edge(variables.get("egress_edge"), trusted, settings["platform"])
    segments = parse_segments(variables.get("egress_segments"), role_defs, trusted)
    warnings: list[str] = []

    # Sources of each role: its hosts' addresses and its segments' prefixes.
    role_sources: dict[str, list] = {}
    host_addresses: dict[str, list] = {}
    host_role_lists: dict[str, list] = {}
    for host, raw_roles in sorted((host_roles or {}).items()):
        roles = host_role_lists[host] = parse_roles(raw_roles, role_defs, f"hostvars[{host}].egress_role", f"host {host}")
        host_addresses[host] = inventory.addresses(host, f"hostvars[{host}].egress_role")
        for role in roles:
            role_sources.setdefault(role, []).extend(host_addresses[host])
    warnings.extend(_check_sources(host_addresses, host_role_lists, segments))
    for segment in segments:
        for role in segment["roles"]:
            role_sources.setdefault(role, []).extend(segment["prefixes"])
    all_sources = [a for addrs in host_addresses.values() for a in addrs] + [p for s in segments for p in s["prefixes"]]
    warnings.extend(_width_warnings(edge["inside"], all_sources))
    if capabilities(settings["platform"])["meter"] is None and edge["conn_limit"] is not None:
        warnings.append(f"egress_edge.conn_limit is not enforced by a {settings['platform']} ACL (a stateless ACL has no per-source connection meter); "
                        "set it to false to silence this")

    outside = edge["outside"]
    inside_names = [entry["interface"] for entry in edge["inside"]]
    used_sets: dict[str, dict] = {}
    rules = [
        new_rule("accept", "baseline", "baseline: replies and related traffic", ct_state=["established", "related"]),
        new_rule("deny", "baseline", "baseline: invalid state", ct_state=["invalid"]),
        new_rule("deny", "baseline", "baseline: no transit (outside back to outside)", iif=outside, oif=outside),
        new_rule("accept", "baseline", "baseline: not leaving by the outside (other tables decide)", oif_not=outside),
        new_rule("deny", "baseline", "baseline: from an interface declared neither inside nor outside", iif_not=inside_names + outside),
    ]
    for entry in edge["inside"]:
        # A set name from the interface name; 'eth-0' and 'eth_0' must not share one.
        base = set_name = f"trusted_{re.sub(r'[^A-Za-z0-9_]', '_', entry['interface'])}"
        while set_name in used_sets:
            set_name = f"{base}_{len(used_sets)}"
        used_sets[set_name] = merge(entry["prefixes"])
        rules.append(new_rule("deny", "baseline", f"baseline: anti-spoofing on {entry['interface']}", iif=[entry["interface"]], saddr_not_in=set_name))
    never = [ipaddress.ip_network(p) for family in FAMILIES for p in NEVER_LEAVE[family]] + edge["never_leave"]
    used_sets["never_leave"] = merge(never)
    rules.append(new_rule("deny", "baseline", "baseline: special-purpose, private, multicast and broadcast destinations", daddr_in="never_leave"))
    if not edge["routes"]:
        for proto in ROUTING_PROTOCOLS:
            rules.append(new_rule(
                "deny", "baseline", f"baseline: routing protocol {proto['name']} (the box does not route)",
                family=proto.get("family", "any"), proto=proto.get("proto"), dports=proto.get("ports"), l4proto=proto.get("l4proto"),
            ))
    if edge["conn_limit"]:
        rules.append(new_rule("ratelimit", "baseline", "baseline: per-source limit on new connections", ct_state=["new"], meter=edge["conn_limit"]))

    def add_rules(plan: Mapping, source_set: str) -> None:
        """A role's or exception's rules (its plan, shared with hosts: copied here), from
        ``source_set`` out of the outside; the edge sees addresses, not local users."""
        used_sets.update(plan["sets"])
        for rule in plan["rules"]:
            rule = {**rule, "saddr_in": source_set, "oif": outside, "users": None, "groups": None}
            if rule["family"] == "any":
                # The source set is per family: only families the source has.
                for family in FAMILIES:
                    if used_sets[source_set][family]:
                        rules.append({**rule, "family": family})
            elif used_sets[source_set][rule["family"]]:
                rules.append(rule)

    uses: dict[str, set] = {}
    for role in sorted(role_sources):
        source_set = f"src_{role}"
        used_sets[source_set] = merge(role_sources[role])
        plan = plans[role]
        for svc in plan["services"]:
            uses.setdefault(svc, set()).add(f"role {role}")
        add_rules(plan, source_set)

    exceptions = []
    for exc in site.exceptions:
        i = exc["index"]
        sources = [a for host in exc["hosts"] for a in (host_addresses.get(host) or inventory.addresses(host, f"{exc['path']}.hosts"))]
        exceptions.append(exception_record(exc))
        warnings.extend(exception_warnings(exc, site.today, site.exception_warn_days, " at the edge"))
        if not exc["active"]:
            continue
        source_set = f"exc_{i}_src"
        used_sets[source_set] = merge(sources)
        plan = plans.exception(exc)
        for svc in plan["services"]:
            uses.setdefault(svc, set()).add(f"egress_exceptions[{i}]")
        add_rules(plan, source_set)

    rules.extend(alert_rules(settings["log"]["alert"], oif=outside))
    warnings.extend(wide_service_warnings(site, uses))
    check_names(settings["platform"], used_sets)
    return new_ir("edge", target, settings, sorted(role_sources), used_sets, dedupe(rules), exceptions, warnings,
                  **dns_extra(site, used_sets, "edge"), edge={
        "inside": [{"interface": e["interface"], "prefixes": [text(p) for p in e["prefixes"]]} for e in edge["inside"]],
        "outside": outside,
        "routes": edge["routes"],
        "conn_limit": edge["conn_limit"],
    })
