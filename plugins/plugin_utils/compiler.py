# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory variables -> Policy IR for one target (private to the collection).

Pure Python: no Ansible imports. Every input is validated here; a bad value raises
``PolicyError`` naming the variable path and the value, before anything is rendered.

The IR is plain data (dicts, lists, strings, ints) so it can travel through Ansible
facts unchanged. Its shape is documented in ``docs/policy-ir.md``.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.catalogue import (
    ALERT_CLASSES,
    BUILTIN_UPSTREAMS,
    ROLES,
    SERVICES,
)
from ansible_collections.warden.egress.plugins.plugin_utils.errors import PolicyError

try:
    import netaddr

    HAS_NETADDR = True
except ImportError:  # pragma: no cover - reported by the filter wrapper
    HAS_NETADDR = False

IR_SCHEMA = 1
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")
TABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
IPTABLES_TABLE_MAX = 18
IPTABLES_PREFIX_MAX = 17
PREFIX_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,23}")
RATE_RE = re.compile(r"([1-9][0-9]{0,5})/(second|minute|hour|day)")
RATE_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# iptables' limit match refuses more than 10,000 a second; its hashlimit refuses a burst
# worth more than a day of tokens.
IPTABLES_RATE_MAX = 10000
PROTOCOLS = ("tcp", "udp", "icmp")
MODES = ("enforce", "audit")
DEVICE_PLATFORMS = ("ios", "eos", "junos")  # routers and switches: an edge only, as ACLs
PLATFORMS = ("nftables", "iptables", "pf") + DEVICE_PLATFORMS
LOG_KEYS = {"denied", "rate", "prefix", "alert"}
SERVICE_KEYS = {"proto", "ports", "description"}
ROLE_KEYS = {"allow", "description"}
ALLOW_KEYS = {"service", "to"}
EXCEPTION_KEYS = {"hosts", "service", "to", "reason", "owner", "expires"}
# A service wider than this many ports is warned about (it also hides the alert classes).
WIDE_PORTS = 1024
# Exceptions that expire within this many days are warned about (egress_exception_warn_days).
EXCEPTION_WARN_DAYS = 14
DEFAULT_LOG = {"denied": True, "rate": "10/minute", "prefix": "warden-egress", "alert": ["irc", "backdoor", "smtp"]}
FAMILIES = ("ipv4", "ipv6")

# ICMP that IPv4 and IPv6 need to work (errors, path MTU), and IPv6 neighbour discovery.
ICMP_ERRORS_V4 = ["destination-unreachable", "time-exceeded", "parameter-problem"]
ICMP_ERRORS_V6 = ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem"]
ICMPV6_ND = ["nd-router-solicit", "nd-neighbor-solicit", "nd-neighbor-advert"]
ICMPV6_MLD = ["mld-listener-report", "mld2-listener-report"]


# --------------------------------------------------------------------------- helpers


def _as_list(value: object, path: str, *, allow_empty: bool = False, what: str = "one value or a list of them") -> list:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise PolicyError(path, value, f"must be {what}")
    if not value and not allow_empty:
        raise PolicyError(path, value, "must not be empty")
    return list(value)


def _mapping(value: object, path: str) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(path, value, "must be a mapping")
    return value


def _check_keys(value: Mapping, allowed: set, path: str) -> None:
    for key in value:
        if key not in allowed:
            raise PolicyError(f"{path}.{key}", value[key], f"is not a known key (expected one of: {', '.join(sorted(allowed))})")


def _require(value: Mapping, keys: tuple, path: str, problem: str = "is required") -> None:
    """Every missing key is named: one as ``path.key``, several in one message."""
    missing = [key for key in keys if key not in value]
    if len(missing) == 1:
        raise PolicyError(f"{path}.{missing[0]}", None, problem)
    if missing:
        raise PolicyError(path, dict(value), f"lacks the keys {', '.join(missing)}: each {problem}")


def unknown(path: str, value: object, what: str, known, problem: str = "") -> PolicyError:
    """The error for a name that is not defined: the closest known name first, then the list."""
    known = sorted(known)
    close = difflib.get_close_matches(value, known, n=1) if isinstance(value, str) else []
    hint = f"did you mean {close[0]}? " if close else ""
    listed = ", ".join(known[:40]) + (f", and {len(known) - 40} more" if len(known) > 40 else "")
    return PolicyError(path, value, f"{problem or f'is not a known {what}'} ({hint}known {what}s: {listed})")


def _name(value: object, path: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise PolicyError(path, value, f"is not a valid {what} name (letters, digits and '_', starting with a letter, at most 32)")
    return value


def parse_network(value: object, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address or prefix; host bits must be clear."""
    if isinstance(value, bool) or not isinstance(value, str) or not value or len(value) > 64:
        raise PolicyError(path, value, "is not an IP address or prefix")
    text = value.strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise PolicyError(path, value, "is not an IP address or prefix") from None
    raise PolicyError(path, value, f"has host bits set (did you mean {loose}?)")


def _is_address_like(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9A-Fa-f:.]+(/[0-9]+)?", value)) and any(c in value for c in ".:")


def merge(networks: list) -> dict[str, list[str]]:
    """Merge prefixes per family with netaddr; sorted, deterministic."""
    out: dict[str, list[str]] = {}
    for family, version in (("ipv4", 4), ("ipv6", 6)):
        nets = [str(n) for n in networks if n.version == version]
        if HAS_NETADDR:
            merged = [str(n) for n in netaddr.cidr_merge(nets)]
        else:  # pragma: no cover
            merged = [str(n) for n in ipaddress.collapse_addresses(ipaddress.ip_network(n) for n in nets)]
        out[family] = merged
    return out


def _parse_date(value: object, path: str) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise PolicyError(path, value, "is not a date (YYYY-MM-DD)")


# --------------------------------------------------------------------------- services


def _ports(value: object, path: str) -> list[list[int]]:
    ranges = []
    for i, item in enumerate(_as_list(value, path)):
        ipath = f"{path}[{i}]"
        if isinstance(item, bool):
            raise PolicyError(ipath, item, "is not a port or port range (1-65535, or 'low-high')")
        if isinstance(item, int):
            low = high = item
        elif isinstance(item, str) and re.fullmatch(r"[0-9]{1,5}(-[0-9]{1,5})?", item.strip()):
            parts = item.strip().split("-")
            low, high = int(parts[0]), int(parts[-1])
        else:
            raise PolicyError(ipath, item, "is not a port or port range (1-65535, or 'low-high')")
        if not (1 <= low <= 65535 and 1 <= high <= 65535):
            raise PolicyError(ipath, item, "is out of range (ports are 1-65535)")
        if low > high:
            raise PolicyError(ipath, item, "is an empty range (low port above high port)")
        ranges.append([low, high])
    ranges.sort()
    merged: list[list[int]] = []
    for low, high in ranges:
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


def _service(name: str, spec: object, path: str) -> dict:
    spec = _mapping(spec, path)
    _check_keys(spec, SERVICE_KEYS, path)
    if "proto" not in spec:
        raise PolicyError(f"{path}.proto", None, "is required (tcp, udp, icmp, or a list of tcp/udp)")
    protos = _as_list(spec["proto"], f"{path}.proto")
    for i, proto in enumerate(protos):
        if proto not in PROTOCOLS:
            raise PolicyError(f"{path}.proto[{i}]" if len(protos) > 1 else f"{path}.proto", proto, f"is not a supported protocol ({', '.join(PROTOCOLS)})")
    if len(set(protos)) != len(protos):
        raise PolicyError(f"{path}.proto", spec["proto"], "lists a protocol twice")
    if "icmp" in protos:
        if len(protos) > 1:
            raise PolicyError(f"{path}.proto", spec["proto"], "mixes icmp with port protocols; declare two services")
        if spec.get("ports") not in (None, []):
            raise PolicyError(f"{path}.ports", spec.get("ports"), "makes no sense for icmp (echo requests are allowed)")
        return {"name": name, "protos": ["icmp"], "ports": None}
    if "ports" not in spec:
        raise PolicyError(f"{path}.ports", None, "is required for tcp/udp services")
    return {"name": name, "protos": sorted(protos), "ports": _ports(spec["ports"], f"{path}.ports")}


def _services(user: object) -> dict[str, dict]:
    services = {name: _service(name, spec, f"built-in service {name}") for name, spec in SERVICES.items()}
    for name, spec in _mapping(user, "egress_services").items():
        _name(name, f"egress_services.{name}", "service")
        services[name] = _service(name, spec, f"egress_services.{name}")
    return services


# --------------------------------------------------------------------------- upstreams


class _Inventory:
    """What the compiler may ask of the inventory: host addresses and group members."""

    def __init__(self, addresses: Callable[[str], object] | Mapping | None, groups: Mapping | None) -> None:
        self._addresses = addresses or {}
        self.groups = groups or {}

    def sources(self) -> tuple:
        """The objects the answers come from (the site cache compares them by identity)."""
        return (self._addresses, self.groups)

    def has_host(self, name: str) -> bool:
        if callable(self._addresses):
            return self._addresses(name) is not None
        return name in self._addresses

    def addresses(self, name: str, path: str) -> list:
        raw = self._addresses(name) if callable(self._addresses) else self._addresses.get(name)
        if raw is None or raw == []:
            raise PolicyError(path, name, "is an inventory host with no address: set egress_addresses (or ansible_host to an IP) for it")
        nets = []
        for i, addr in enumerate(_as_list(raw, f"hostvars[{name}].egress_addresses")):
            net = parse_network(addr, f"hostvars[{name}].egress_addresses[{i}]")
            if net.num_addresses != 1:
                raise PolicyError(f"hostvars[{name}].egress_addresses[{i}]", addr, "must be a single address, not a prefix")
            nets.append(net)
        return nets


def _upstream_entry(entry: object, path: str, inventory: _Inventory) -> list:
    if isinstance(entry, str) and entry.startswith("group:"):
        group = entry[len("group:"):]
        if not HOST_RE.fullmatch(group):
            raise PolicyError(path, entry, "names an invalid group")
        if group not in inventory.groups:
            close = difflib.get_close_matches(group, sorted(inventory.groups), n=1)
            hint = f" (did you mean group:{close[0]}?)" if close else ""
            raise PolicyError(path, entry, f"names group '{group}', which is not in the inventory{hint}")
        members = list(inventory.groups[group])
        if not members:
            raise PolicyError(path, entry, f"names group '{group}', which has no hosts")
        nets = []
        for host in sorted(members):
            nets.extend(inventory.addresses(host, path))
        return nets
    if isinstance(entry, str) and not _is_address_like(entry) and HOST_RE.fullmatch(entry):
        if inventory.has_host(entry):
            return inventory.addresses(entry, path)
        raise PolicyError(path, entry, "is not an IP address or prefix, an inventory host, or group:NAME")
    return [parse_network(entry, path)]


def _upstreams(user: object, inventory: _Inventory) -> dict[str, dict]:
    """Every upstream, resolved and merged: name -> {ipv4: [...], ipv6: [...]}."""
    out = {name: merge([ipaddress.ip_network(p) for p in nets]) for name, nets in BUILTIN_UPSTREAMS.items()}
    for name, value in _mapping(user, "egress_upstreams").items():
        path = f"egress_upstreams.{name}"
        _name(name, path, "upstream")
        if name in BUILTIN_UPSTREAMS:
            raise PolicyError(path, value, f"redefines the built-in upstream '{name}'")
        entries = _as_list(value, path)
        nets = []
        for i, entry in enumerate(entries):
            epath = f"{path}[{i}]" if not isinstance(value, str) else path
            nets.extend(_upstream_entry(entry, epath, inventory))
        out[name] = merge(nets)
    return out


# --------------------------------------------------------------------------- roles


def _role_defs(user: object) -> dict[str, tuple[dict, str]]:
    roles = {name: (spec, f"built-in role {name}") for name, spec in ROLES.items()}
    for name, spec in _mapping(user, "egress_roles").items():
        path = f"egress_roles.{name}"
        _name(name, path, "role")
        roles[name] = (spec, path)
    return roles


def _allow_entries(spec: object, path: str) -> list[tuple[int, list[str], list[str], str]]:
    spec = _mapping(spec, path)
    _check_keys(spec, ROLE_KEYS, path)
    if "allow" not in spec:
        raise PolicyError(f"{path}.allow", None, "is required (use an empty list for a role that may send nothing)")
    entries = []
    for i, entry in enumerate(_as_list(spec["allow"], f"{path}.allow", allow_empty=True)):
        epath = f"{path}.allow[{i}]"
        entry = _mapping(entry, epath)
        _check_keys(entry, ALLOW_KEYS, epath)
        _require(entry, ("service", "to"), epath)
        services = [_name(s, f"{epath}.service", "service") for s in _as_list(entry["service"], f"{epath}.service")]
        targets = [_name(t, f"{epath}.to", "upstream") for t in _as_list(entry["to"], f"{epath}.to")]
        entries.append((i, services, targets, epath))
    return entries


# --------------------------------------------------------------------------- rules


RULE_FIELDS = (
    "family",        # any | ipv4 | ipv6
    "iif",           # list of input interface names
    "oif",           # list of output interface names
    "oif_not",       # list: matches when the output interface is none of these
    "ct_state",      # list of conntrack states
    "saddr_in",      # set name: source in the set
    "saddr_not_in",  # set name: source not in the set
    "daddr_in",      # set name: destination in the set
    "proto",         # tcp | udp | icmp | icmpv6
    "l4proto",       # a raw IP protocol number (OSPF 89, EIGRP 88)
    "dports",        # merged port ranges
    "icmp_types",
    "hoplimit",
    "meter",         # {rate, burst}: per-source limit on new connections; matches when exceeded
    "iif_not",       # list: matches when the input interface is none of these
)


def _rule(action: str, origin: str, comment: str, **match) -> dict:
    rule = {"action": action}
    for field in RULE_FIELDS:
        rule[field] = match.pop(field, "any" if field == "family" else None)
    rule["origin"] = origin
    rule["comment"] = comment
    if match:  # pragma: no cover - programming error
        raise TypeError(f"unknown match keys {sorted(match)}")
    return rule


def _baseline_rules() -> list[dict]:
    return [
        _rule("accept", "baseline", "baseline: loopback", oif=["lo"]),
        _rule("accept", "baseline", "baseline: replies and related traffic", ct_state=["established", "related"]),
        _rule("deny", "baseline", "baseline: invalid state", ct_state=["invalid"]),
        _rule("accept", "baseline", "baseline: IPv6 neighbour discovery", family="ipv6", proto="icmpv6", icmp_types=ICMPV6_ND, hoplimit=255),
        _rule("accept", "baseline", "baseline: IPv6 multicast listener reports", family="ipv6", proto="icmpv6", icmp_types=ICMPV6_MLD, hoplimit=1),
        _rule("deny", "baseline", "baseline: anti-spoofing IPv4", family="ipv4", saddr_not_in="trusted"),
        _rule("deny", "baseline", "baseline: anti-spoofing IPv6", family="ipv6", saddr_not_in="trusted"),
        _rule("accept", "baseline", "baseline: ICMP errors", family="ipv4", proto="icmp", icmp_types=ICMP_ERRORS_V4),
        _rule("accept", "baseline", "baseline: ICMPv6 errors and path MTU", family="ipv6", proto="icmpv6", icmp_types=ICMP_ERRORS_V6),
    ]


def _service_rules(service: dict, set_name: str | None, addresses: dict, origin: str, comment: str) -> list[dict]:
    """Rules for one service to one address set (``None``: any destination).

    Set matches are per family, so a set gives one rule per family it has addresses in;
    any destination gives one rule per protocol for both families. Echo requests are
    ICMP or ICMPv6, so they are always per family.
    """
    if service["protos"] == ["icmp"]:
        return [
            _rule("accept", origin, comment, family=family, daddr_in=set_name,
                  proto="icmp" if family == "ipv4" else "icmpv6", icmp_types=["echo-request"])
            for family in FAMILIES if set_name is None or addresses[family]
        ]
    if set_name is None:
        return [_rule("accept", origin, comment, proto=proto, dports=service["ports"]) for proto in service["protos"]]
    return [
        _rule("accept", origin, comment, family=family, daddr_in=set_name, proto=proto, dports=service["ports"])
        for family in FAMILIES if addresses[family]
        for proto in service["protos"]
    ]


def alert_rules(classes: list[str], **match) -> list[dict]:
    """Denied flows of a dangerous kind, logged under their own prefix (after every allow).
    ``alert_class`` names the class: each class is logged under its own per-source limit."""
    rules = []
    for name in classes:
        for proto, ports in ALERT_CLASSES[name]["match"]:
            rules.append({**_rule("alert", "alert", f"alert: {name}", proto=proto, dports=ports, **match), "alert_class": name})
    return rules


def resolve_allow(site: Mapping, service: str, spath: str, upstream: str, upath: str) -> tuple[dict, str | None, dict]:
    """A service and an upstream named together (by a role or an exception): the service,
    the destination set's name (``None`` for any destination) and its addresses."""
    if service not in site["services"]:
        raise unknown(spath, service, "service", site["services"])
    if upstream not in site["upstreams"]:
        raise unknown(upath, upstream, "upstream", site["upstreams"], "is not defined in egress_upstreams")
    return site["services"][service], None if upstream == "any" else f"up_{upstream}", site["upstreams"][upstream]


def wide_service_warnings(site: Mapping, uses: Mapping[str, set]) -> list[str]:
    """Warn about each service wider than WIDE_PORTS ports, naming what allows it here.
    ``uses`` maps a service name to the roles and exceptions that allow it."""
    warnings = []
    for name in sorted(uses):
        count = sum(high - low + 1 for low, high in site["services"][name]["ports"] or [])
        if count > WIDE_PORTS:
            warnings.append(f"service {name} opens {count} ports (more than {WIDE_PORTS}; a range that wide also lets out "
                            f"the alert classes inside it), allowed by {', '.join(sorted(uses[name]))}")
    return warnings


def exception_warnings(exc: Mapping, today: datetime.date, warn_days: int, scope: str) -> list[str]:
    """Expired exceptions (not applied) and those that expire within ``warn_days``, with the owner."""
    label = f"egress_exceptions[{exc['index']}] ({', '.join(exc['service'])} for {', '.join(exc['hosts'])}){scope}"
    days = (datetime.date.fromisoformat(exc["expires"]) - today).days
    if days < 0:
        return [f"{label} expired on {exc['expires']} and is not applied; owner {exc['owner']}: renew or remove it"]
    if days <= warn_days:
        return [f"{label} expires on {exc['expires']}, in {days} day{'s' if days != 1 else ''}; owner {exc['owner']}: renew or remove it"]
    return []


def _rule_key(rule: Mapping) -> tuple:
    """What makes two rules the same rule (their origin and comment aside)."""
    return tuple((k, repr(v)) for k, v in rule.items() if k not in ("origin", "comment"))


def _dedupe(rules: list[dict], keys: list | None = None) -> list[dict]:
    """The rules without repeats, first kept; ``keys`` may give each rule's key ready-made."""
    seen = set()
    out = []
    for rule, key in zip(rules, keys or map(_rule_key, rules)):
        if key in seen:
            continue
        seen.add(key)
        out.append(rule)
    return out


def role_plan(site: Mapping, role: str) -> dict:
    """What one role lets a host send: its rules (with their keys), the destination sets
    they use and which services it allows. The same for every host of the role, so it is
    made once per site (kept in the shared site) and copied out."""
    plans = site["plans"]
    if role not in plans:
        rules: list[dict] = []
        sets: dict[str, dict] = {}
        spec, rpath = site["role_defs"][role]
        services: list[str] = []
        for dummy, svc_names, targets, epath in _allow_entries(spec, rpath):
            for svc in svc_names:
                services.append(svc)
                for upstream in targets:
                    service, set_name, addrs = resolve_allow(site, svc, f"{epath}.service", upstream, f"{epath}.to")
                    if set_name:
                        sets[set_name] = addrs
                    rules.extend(_service_rules(service, set_name, addrs, f"role:{role}", f"role {role}: {svc} to {upstream}"))
        plans[role] = {"rules": rules, "keys": [_rule_key(r) for r in rules], "sets": sets, "services": services}
    return plans[role]


# --------------------------------------------------------------------------- entry point


# The site-wide inputs: the same for every target of a site, so parsed once (see _shared_site).
SHARED_VARIABLES = ("egress_trusted_prefixes", "egress_upstreams", "egress_services", "egress_roles", "egress_exceptions")
_SHARED: dict = {}


def _shared_site(variables: Mapping, inventory: _Inventory, today: datetime.date) -> dict:
    """Trusted prefixes, services, upstreams, roles and exceptions, parsed and merged once
    while their inputs are the same objects (a site compile passes every target the same
    ones; the inputs are never changed in place). One site is kept."""
    refs = tuple(variables.get(name) for name in SHARED_VARIABLES) + inventory.sources()
    key = (tuple(id(ref) for ref in refs), today, variables.get("egress_exception_warn_days", EXCEPTION_WARN_DAYS))
    cached = _SHARED.get(key)
    if cached is not None and all(a is b for a, b in zip(cached[0], refs)):
        return cached[1]
    trusted_raw = variables.get("egress_trusted_prefixes")
    if trusted_raw is None:
        raise PolicyError("egress_trusted_prefixes", None, "is required: list the prefixes your hosts' traffic may come from")
    trusted = [parse_network(p, f"egress_trusted_prefixes[{i}]") for i, p in enumerate(_as_list(trusted_raw, "egress_trusted_prefixes"))]
    warn_days = key[2]
    if isinstance(warn_days, bool) or not isinstance(warn_days, int) or not 0 <= warn_days <= 3650:
        raise PolicyError("egress_exception_warn_days", warn_days, "is not a number of days (0-3650)")
    shared = {
        "exception_warn_days": warn_days,
        "trusted": trusted,
        "services": _services(variables.get("egress_services")),
        "upstreams": _upstreams(variables.get("egress_upstreams"), inventory),
        "role_defs": _role_defs(variables.get("egress_roles")),
    }
    shared["exceptions"] = parse_exceptions(variables.get("egress_exceptions"), shared, inventory, today)
    shared["trusted_set"] = merge(trusted)
    shared["plans"] = {}  # role_plan: each role's rules, made once
    shared["fixed"] = {}  # the baseline and alert rules, made once per alert classes
    _SHARED.clear()
    _SHARED[key] = (refs, shared)
    return shared


def parse_site(variables: Mapping, inventory: _Inventory, today: datetime.date) -> dict:
    """Validate the variables a target's compilation starts from: its own (mode, platform,
    table, log) and the site-wide ones (parsed once, see _shared_site)."""
    mode = variables.get("egress_mode", "enforce")
    if mode not in MODES:
        raise PolicyError("egress_mode", mode, f"is not one of: {', '.join(MODES)}")
    platform = variables.get("egress_platform", "nftables")
    if platform not in PLATFORMS:
        raise PolicyError("egress_platform", platform, f"is not one of: {', '.join(PLATFORMS)}")
    table = variables.get("egress_table", "warden_egress")
    if not isinstance(table, str) or not TABLE_RE.fullmatch(table):
        raise PolicyError("egress_table", table, "is not a valid table name (letters, digits and '_', at most 32)")

    log = dict(DEFAULT_LOG)
    user_log = _mapping(variables.get("egress_log"), "egress_log")
    _check_keys(user_log, LOG_KEYS, "egress_log")
    log.update(user_log)
    if not isinstance(log["denied"], bool):
        raise PolicyError("egress_log.denied", log["denied"], "must be true or false")
    if not isinstance(log["rate"], str) or not RATE_RE.fullmatch(log["rate"]):
        raise PolicyError("egress_log.rate", log["rate"], "is not a rate like '10/minute' (per second, minute, hour or day)")
    if not isinstance(log["prefix"], str) or not PREFIX_RE.fullmatch(log["prefix"]):
        raise PolicyError("egress_log.prefix", log["prefix"], "is not a usable log prefix (letters, digits, '_.:-', at most 24)")
    if platform == "iptables":
        # iptables' kernel fields are short: chain names (TABLE-ratelimit) at most 28
        # characters, LOG prefixes ("PREFIX ratelimit: ") at most 29.
        if len(table) > IPTABLES_TABLE_MAX:
            raise PolicyError("egress_table", table, f"is too long for egress_platform iptables (at most {IPTABLES_TABLE_MAX} characters)")
        count, unit = RATE_RE.fullmatch(log["rate"]).groups()
        if int(count) > IPTABLES_RATE_MAX * RATE_SECONDS[unit]:
            raise PolicyError("egress_log.rate", log["rate"], f"is faster than egress_platform iptables can limit (at most {IPTABLES_RATE_MAX}/second)")
        if len(log["prefix"]) > IPTABLES_PREFIX_MAX:
            raise PolicyError("egress_log.prefix", log["prefix"], f"is too long for egress_platform iptables (at most {IPTABLES_PREFIX_MAX} characters)")
    alert = _as_list(log["alert"], "egress_log.alert", allow_empty=True)
    for i, name in enumerate(alert):
        if name not in ALERT_CLASSES:
            raise PolicyError(f"egress_log.alert[{i}]", name, f"is not an alert class ({', '.join(sorted(ALERT_CLASSES))})")
    log["alert"] = list(alert)
    return {"mode": mode, "platform": platform, "table": table, "log": log, **_shared_site(variables, inventory, today)}


def begin(variables: Mapping, target: str, addresses, groups, today: datetime.date | None) -> tuple:
    """What every target's compilation starts with: its variables checked, the inventory
    lookups, today's date (for exceptions) and the parsed site-wide variables."""
    variables = _mapping(variables, "variables")
    if not isinstance(target, str) or not HOST_RE.fullmatch(target):
        raise PolicyError("inventory_hostname", target, "is not a usable host name")
    inventory = _Inventory(addresses, groups)
    today = today or datetime.date.today()
    return variables, inventory, today, parse_site(variables, inventory, today)


def parse_roles(raw: object, role_defs: Mapping, path: str, host: str) -> list[str]:
    """A host's (or segment's) egress_role: one known role name or a list of them."""
    if raw is None:
        raise PolicyError(path, None, f"is required for {host} (one of: {', '.join(sorted(role_defs))})")
    roles = _as_list(raw, path, what="a role name or a list of role names")
    for i, role in enumerate(roles):
        rpath = path if isinstance(raw, str) else f"{path}[{i}]"
        if not isinstance(role, str) or role not in role_defs:
            raise unknown(rpath, role, "role", role_defs)
    if len(set(roles)) != len(roles):
        raise PolicyError(path, raw, "lists a role twice")
    return roles


def parse_exceptions(raw: object, site: Mapping, inventory: _Inventory, today: datetime.date) -> list[dict]:
    """Validate every exception; each comes back with its services and destinations resolved."""
    out = []
    for i, exc in enumerate(_as_list(raw or [], "egress_exceptions", allow_empty=True)):
        epath = f"egress_exceptions[{i}]"
        exc = _mapping(exc, epath)
        _check_keys(exc, EXCEPTION_KEYS, epath)
        _require(exc, ("hosts", "service", "to", "reason", "owner", "expires"), epath,
                 "is required: every exception records hosts, service, to, reason, owner and expires")
        hosts = _as_list(exc["hosts"], f"{epath}.hosts")
        for j, host in enumerate(hosts):
            if not isinstance(host, str) or not HOST_RE.fullmatch(host) or not inventory.has_host(host):
                raise PolicyError(f"{epath}.hosts[{j}]", host, "is not a host of the inventory")
        for key in ("reason", "owner"):
            if not isinstance(exc[key], str) or not exc[key].strip():
                raise PolicyError(f"{epath}.{key}", exc[key], "must be a non-empty text")
        expires = _parse_date(exc["expires"], f"{epath}.expires")
        svc_names = [_name(s, f"{epath}.service", "service") for s in _as_list(exc["service"], f"{epath}.service")]
        for svc in svc_names:
            if svc not in site["services"]:
                raise unknown(f"{epath}.service", svc, "service", site["services"])
        named: list[str] = []
        nets = []
        for j, entry in enumerate(_as_list(exc["to"], f"{epath}.to")):
            tpath = f"{epath}.to[{j}]" if not isinstance(exc["to"], str) else f"{epath}.to"
            if isinstance(entry, str) and NAME_RE.fullmatch(entry) and entry in site["upstreams"]:
                named.append(entry)
            else:
                nets.extend(_upstream_entry(entry, tpath, inventory))
        out.append({
            "index": i, "path": epath, "hosts": sorted(hosts), "service": svc_names, "named": named,
            "addresses": merge(nets) if nets else None, "reason": exc["reason"], "owner": exc["owner"],
            "expires": expires.isoformat(), "active": expires >= today,
        })
    return out


def exception_record(exc: Mapping, applies: bool) -> dict:
    """How an IR lists an exception of the site (the record is made once per exception)."""
    if "record" not in exc:
        exc["record"] = {k: exc[k] for k in ("index", "hosts", "service", "reason", "owner", "expires", "active")}
    return {**exc["record"], "applies": applies}


def compile_policy(
    variables: Mapping,
    target: str,
    addresses: Callable[[str], object] | Mapping | None = None,
    groups: Mapping | None = None,
    today: datetime.date | None = None,
) -> dict:
    """Validate the egress_* variables seen by ``target`` and build its Policy IR.

    ``variables`` maps the variable names (egress_trusted_prefixes, egress_upstreams,
    egress_services, egress_roles, egress_exceptions, egress_log, egress_mode,
    egress_platform, egress_role, egress_table) to their values. ``addresses`` maps an
    inventory host name to its addresses (or is a callable returning them or None);
    ``groups`` maps group names to member host names.
    """
    variables, inventory, today, site = begin(variables, target, addresses, groups, today)
    services = site["services"]
    if site["platform"] in DEVICE_PLATFORMS:
        raise PolicyError("egress_role", variables.get("egress_role"),
                          f"is for hosts; egress_platform {site['platform']} enforces only a site edge (egress_edge)")
    roles = parse_roles(variables.get("egress_role"), site["role_defs"], "egress_role", f"host {target}")
    warnings: list[str] = []

    used_sets: dict[str, dict] = {"trusted": site["trusted_set"]}
    alert = tuple(site["log"]["alert"])
    if alert not in site["fixed"]:
        baseline, alerts = _baseline_rules(), alert_rules(list(alert))
        site["fixed"][alert] = (baseline, [_rule_key(r) for r in baseline], alerts, [_rule_key(r) for r in alerts])
    baseline, baseline_keys, alerts, alert_keys = site["fixed"][alert]
    rules, keys = list(baseline), list(baseline_keys)

    def resolve(service: str, spath: str, upstream: str, upath: str) -> tuple[dict, str | None, dict]:
        found, set_name, addrs = resolve_allow(site, service, spath, upstream, upath)
        if set_name:
            used_sets[set_name] = addrs
        return found, set_name, addrs

    def add(new_rules: list) -> None:
        rules.extend(new_rules)
        keys.extend(map(_rule_key, new_rules))

    uses: dict[str, set] = {}
    for role in roles:
        plan = role_plan(site, role)
        rules.extend(plan["rules"])
        keys.extend(plan["keys"])
        used_sets.update(plan["sets"])
        for svc in plan["services"]:
            uses.setdefault(svc, set()).add(f"role {role}")

    exceptions = []
    for exc in site["exceptions"]:
        i = exc["index"]
        applies = target in exc["hosts"]
        exceptions.append(exception_record(exc, applies))
        if not applies:
            continue
        warnings.extend(exception_warnings(exc, today, site["exception_warn_days"], f" on {target}"))
        if not exc["active"]:
            continue
        for svc in exc["service"]:
            uses.setdefault(svc, set()).add(f"egress_exceptions[{i}]")
            for upstream in exc["named"]:
                service, set_name, addrs = resolve(svc, f"{exc['path']}.service", upstream, f"{exc['path']}.to")
                add(_service_rules(service, set_name, addrs, f"exception:{i}", f"exception {i}: {svc} to {upstream}"))
            if exc["addresses"]:
                set_name = f"exc_{i}"
                used_sets[set_name] = exc["addresses"]
                add(_service_rules(services[svc], set_name, used_sets[set_name], f"exception:{i}", f"exception {i}: {svc}"))

    rules.extend(alerts)
    keys.extend(alert_keys)
    warnings.extend(wide_service_warnings(site, uses))
    return {
        "schema": IR_SCHEMA,
        "target": target,
        "kind": "host",
        "hook": "output",
        "platform": site["platform"],
        "table": site["table"],
        "mode": site["mode"],
        "roles": roles,
        "default": "deny",
        "log": site["log"],
        "sets": dict(sorted(used_sets.items())),
        "rules": [dict(rule) for rule in _dedupe(rules, keys)],
        "exceptions": exceptions,
        "warnings": warnings,
    }
