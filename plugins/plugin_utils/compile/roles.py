# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Roles: what a role lets a host send (``allow``, optionally only as named local users or
groups) and what it serves (``serves``: the services whose replies may leave), as IR rules
made once per site for each role (private to the collection).

Pure Python: no Ansible imports. A bad value raises ``PolicyError`` naming the variable
path and the value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import FAMILIES, new_rule, rule_key
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import (
    LOCAL_ID_MAX,
    LOCAL_NAME_RE,
    NAME_RE,
    as_list,
    check_keys,
    as_mapping,
    check_name,
    require_keys,
    upstream_entry,
    merge,
    unknown,
)
from ansible_collections.warden.egress.plugins.plugin_utils.model.site import Site

ROLE_KEYS = {"allow", "serves", "description"}
ALLOW_KEYS = {"service", "to", "users", "groups"}
SERVES_KEYS = {"service", "from", "description"}
OWNER_KINDS = ("users", "groups")


def service_rules(service: dict, set_name: str | None, addresses: dict, origin: str, comment: str) -> list[dict]:
    """Rules for one service to one address set (``None``: any destination).

    Set matches are per family, so a set gives one rule per family it has addresses in;
    any destination gives one rule per protocol for both families. Echo requests are
    ICMP or ICMPv6, so they are always per family.
    """
    if service["protos"] == ["icmp"]:
        return [
            new_rule("accept", origin, comment, family=family, daddr_in=set_name,
                     proto="icmp" if family == "ipv4" else "icmpv6", icmp_types=["echo-request"])
            for family in FAMILIES if set_name is None or addresses[family] or addresses.get("names")
        ]
    if set_name is None:
        return [new_rule("accept", origin, comment, proto=proto, dports=service["ports"]) for proto in service["protos"]]
    return [
        new_rule("accept", origin, comment, family=family, daddr_in=set_name, proto=proto, dports=service["ports"])
        for family in FAMILIES if addresses[family] or addresses.get("names")
        for proto in service["protos"]
    ]


def _serve_rules(service: dict, set_name: str | None, addresses: dict, origin: str, comment: str) -> list[dict]:
    """Rules that let out the replies of connections opened from outside to one served
    service (from the clients in one set; ``None``: from anywhere): the packet belongs to a
    connection this host did not open (``ct_direction: reply``) whose original destination
    port is the service's. For ICMP, the echo replies to echo requests."""
    if service["protos"] == ["icmp"]:
        return [
            new_rule("accept", origin, comment, family=family, ct_direction="reply", ct_orig_saddr_in=set_name,
                     proto="icmp" if family == "ipv4" else "icmpv6", icmp_types=["echo-reply"])
            for family in FAMILIES if set_name is None or addresses[family]
        ]
    if set_name is None:
        return [new_rule("accept", origin, comment, ct_direction="reply", proto=proto, ct_orig_dports=service["ports"]) for proto in service["protos"]]
    return [
        new_rule("accept", origin, comment, family=family, ct_direction="reply", ct_orig_saddr_in=set_name, proto=proto, ct_orig_dports=service["ports"])
        for family in FAMILIES if addresses[family]
        for proto in service["protos"]
    ]


def resolve_allow(site: Site, service: str, spath: str, upstream: str, upath: str) -> tuple[dict, str | None, dict]:
    """A service and an upstream named together (by a role or an exception): the service,
    the destination set's name (``None`` for any destination) and its addresses."""
    if service not in site.services:
        raise unknown(spath, service, "service", site.services)
    if upstream not in site.upstreams:
        raise unknown(upath, upstream, "upstream", site.upstreams, "is not defined in egress_upstreams")
    return site.services[service], None if upstream == "any" else f"up_{upstream}", site.upstreams[upstream]


# --------------------------------------------------------------------------- roles


def _owners(entry: Mapping, path: str) -> tuple[str, list[tuple]] | None:
    """An allow entry's ``users`` or ``groups``: (kind, [(name or number, path), ...]), or None."""
    given = [kind for kind in OWNER_KINDS if kind in entry]
    if len(given) == 2:
        raise PolicyError(path, {k: entry[k] for k in OWNER_KINDS},
                          "names both users and groups: write one allow entry for the users and another for the groups")
    if not given:
        return None
    kind = given[0]
    raw = entry[kind]
    what = "user" if kind == "users" else "group"
    items = []
    for j, value in enumerate(as_list(raw, f"{path}.{kind}", what=f"a local {what} name or number, or a list of them")):
        vpath = f"{path}.{kind}[{j}]" if isinstance(raw, (list, tuple)) else f"{path}.{kind}"
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= LOCAL_ID_MAX:
                raise PolicyError(vpath, value, f"is not a {what} number (0-{LOCAL_ID_MAX})")
        elif not isinstance(value, str) or not LOCAL_NAME_RE.fullmatch(value):
            raise PolicyError(vpath, value, f"is not a local {what} name (a letter or '_', then letters, digits, '_.-', at most 32) "
                                            f"or a {what} number")
        if value in [v for v, dummy in items]:
            raise PolicyError(vpath, value, f"is listed twice in {path}.{kind}")
        items.append((value, vpath))
    return kind, items


def allow_entries(spec: object, path: str) -> list[dict]:
    """A role's allow entries: index, services, upstreams (to), path and owners (see _owners)."""
    spec = as_mapping(spec, path)
    check_keys(spec, ROLE_KEYS, path)
    if "allow" not in spec:
        raise PolicyError(f"{path}.allow", None, "is required (use an empty list for a role that may send nothing)")
    entries = []
    for i, entry in enumerate(as_list(spec["allow"], f"{path}.allow", allow_empty=True)):
        epath = f"{path}.allow[{i}]"
        entry = as_mapping(entry, epath)
        check_keys(entry, ALLOW_KEYS, epath)
        require_keys(entry, ("service", "to"), epath)
        services = [check_name(s, f"{epath}.service", "service") for s in as_list(entry["service"], f"{epath}.service")]
        targets = [check_name(t, f"{epath}.to", "upstream") for t in as_list(entry["to"], f"{epath}.to")]
        entries.append({"index": i, "services": services, "to": targets, "path": epath, "owners": _owners(entry, epath)})
    return entries


def owner_paths(spec: object, path: str) -> list[str]:
    """The ``users``/``groups`` paths of a role's allow entries (what an edge cannot enforce)."""
    return [f"{e['path']}.{e['owners'][0]}" for e in allow_entries(spec, path) if e["owners"]]


def _serve_sources(site: Site, raw: object, path: str, role: str, index: int) -> tuple[str | None, dict, str]:
    """An entry's ``from``: (set name or None for anywhere, its addresses, a label for comments).
    Upstream names, prefixes, inventory hosts and group:NAME, as an exception's ``to``."""
    entries = as_list(raw, path)
    named, nets = [], []
    for j, entry in enumerate(entries):
        epath = f"{path}[{j}]" if isinstance(raw, (list, tuple)) else path
        if isinstance(entry, str) and NAME_RE.fullmatch(entry) and entry in site.upstreams:
            if site.upstreams[entry].get("names"):
                raise PolicyError(epath, entry, f"names upstream {entry}, which holds DNS names: a client is not known by the name "
                                                "it resolved, so serves from takes addresses only")
            named.append(entry)
        else:
            nets.extend(upstream_entry(entry, epath, site.inventory))
    label = ", ".join(str(e) for e in entries)
    if len(label) > 60:
        label = f"{len(entries)} sources"
    if "any" in named:
        return None, site.upstreams["any"], label
    if len(named) == 1 and not nets:
        return f"up_{named[0]}", site.upstreams[named[0]], label
    for name in named:
        nets.extend(ipaddress.ip_network(p) for family in FAMILIES for p in site.upstreams[name][family])
    return f"serve_{role}_{index}", merge(nets), label


def _serve_entries(site: Site, role: str, spec: Mapping, path: str) -> tuple[list[dict], dict, list[list[int]], list[str]]:
    """A role's ``serves``: its rules, the sets they use, every TCP port range it serves and
    the names of the services it serves."""
    rules: list[dict] = []
    sets: dict[str, dict] = {}
    tcp: list[list[int]] = []
    names: list[str] = []
    for i, entry in enumerate(as_list(spec["serves"], path, allow_empty=True)):
        epath = f"{path}[{i}]"
        entry = as_mapping(entry, epath)
        check_keys(entry, SERVES_KEYS, epath)
        require_keys(entry, ("service",), epath)
        set_name, addresses, label = None, {}, ""
        if "from" in entry:
            set_name, addresses, label = _serve_sources(site, entry["from"], f"{epath}.from", role, i)
            if set_name:
                sets[set_name] = addresses
        for svc in [check_name(s, f"{epath}.service", "service") for s in as_list(entry["service"], f"{epath}.service")]:
            if svc not in site.services:
                raise unknown(f"{epath}.service", svc, "service", site.services)
            service = site.services[svc]
            names.append(svc)
            if "tcp" in service["protos"]:
                tcp.extend(service["ports"])
            comment = f"role {role}: serves {svc}" + (f" from {label}" if label else "")
            rules.extend(_serve_rules(service, set_name, addresses, f"role:{role}", comment))
    return rules, sets, tcp, names


def role_plan(site: Site, role: str) -> dict:
    """What one role lets a host send and what it serves: its rules (with their keys), the
    sets they use, which services it allows, the local users and groups it names, and its
    ``serves`` rules (None when the role does not declare ``serves``). The same for every
    host of the role, so a compile makes it once per site (``Plans``)."""
    rules: list[dict] = []
    sets: dict[str, dict] = {}
    spec, rpath = site.role_defs[role]
    services: list[str] = []
    local: dict[str, dict] = {kind: {} for kind in OWNER_KINDS}
    owned_icmp: list[str] = []
    for entry in allow_entries(spec, rpath):
        epath = entry["path"]
        for svc in entry["services"]:
            services.append(svc)
            for upstream in entry["to"]:
                service, set_name, addrs = resolve_allow(site, svc, f"{epath}.service", upstream, f"{epath}.to")
                if set_name:
                    sets[set_name] = addrs
                new = service_rules(service, set_name, addrs, f"role:{role}", f"role {role}: {svc} to {upstream}")
                if entry["owners"]:
                    kind, items = entry["owners"]
                    for rule in new:
                        rule[kind] = [value for value, dummy in items]
                    if service["protos"] == ["icmp"]:
                        owned_icmp.append(f"{epath}.{kind}")
                rules.extend(new)
        if entry["owners"]:
            kind, items = entry["owners"]
            for value, vpath in items:
                if isinstance(value, str):
                    local[kind].setdefault(value, vpath)
    serves, serve_keys, serve_sets, tcp, names = None, None, {}, [], []
    if "serves" in spec:
        serves, serve_sets, tcp, names = _serve_entries(site, role, spec, f"{rpath}.serves")
        serve_keys = [rule_key(r) for r in serves]
    return {
        "rules": rules, "keys": [rule_key(r) for r in rules], "sets": sets, "services": services,
        "local": local, "owned_icmp": owned_icmp,
        "serves": serves, "serve_keys": serve_keys, "serve_sets": serve_sets, "served_tcp": tcp, "served_names": names,
        "serves_path": f"{rpath}.serves",
    }


def exception_plan(site: Site, exc: Mapping) -> dict:
    """What an active exception lets out, for whichever host or edge applies it: its rules
    (with their keys), the destination sets they use and its services."""
    rules: list[dict] = []
    sets: dict[str, dict] = {}
    i = exc["index"]
    for svc in exc["service"]:
        for upstream in exc["named"]:
            service, set_name, addrs = resolve_allow(site, svc, f"{exc['path']}.service", upstream, f"{exc['path']}.to")
            if set_name:
                sets[set_name] = addrs
            rules.extend(service_rules(service, set_name, addrs, f"exception:{i}", f"exception {i}: {svc} to {upstream}"))
        if exc["addresses"]:
            sets[f"exc_{i}"] = exc["addresses"]
            rules.extend(service_rules(site.services[svc], f"exc_{i}", exc["addresses"], f"exception:{i}", f"exception {i}: {svc}"))
    return {"rules": rules, "keys": [rule_key(r) for r in rules], "sets": sets, "services": list(exc["service"])}


class Plans:
    """One compile's view of a Site: each role's plan (``role_plan``), each exception's
    (``exception_plan``) and the fixed rules of each kind of host, made once and shared by
    every host and edge the compile derives from the Site. Held by the compile that made
    it, never by a module."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._roles: dict[str, dict] = {}
        self._exceptions: dict[int, dict] = {}
        self.fixed: dict[tuple, tuple] = {}

    def exception(self, exc: Mapping) -> dict:
        plan = self._exceptions.get(exc["index"])
        if plan is None:
            plan = self._exceptions[exc["index"]] = exception_plan(self.site, exc)
        return plan

    def __getitem__(self, role: str) -> dict:
        plan = self._roles.get(role)
        if plan is None:
            plan = self._roles[role] = role_plan(self.site, role)
        return plan
