# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks every inventory value goes through, and the site's services and upstreams
(private to the collection).

Pure Python: no Ansible imports. A bad value raises ``PolicyError`` naming the variable
path and the value.
"""

from __future__ import annotations

import datetime
import difflib
import importlib.util
import ipaddress
import re
from collections.abc import Callable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import BUILTIN_UPSTREAMS, SERVICES
from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import is_dns_entry, parse_name
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import merged, network

# netaddr is a declared requirement (requirements.txt): the filters and actions check for it
# so that a controller without it is told at once. The compile itself merges on integers.
HAS_NETADDR = importlib.util.find_spec("netaddr") is not None

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")
# A table (nftables, iptables chains) or anchor (pf) name: an identifier, as NAME_RE.
TABLE_RE = NAME_RE
# A log prefix (egress_log.prefix): nothing a ruleset would read as anything but text.
PREFIX_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,23}")
# A rate (egress_log.rate, egress_edge.conn_limit.rate): a count per unit, and each unit in seconds.
RATE_RE = re.compile(r"([1-9][0-9]{0,5})/(second|minute|hour|day)")
RATE_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# A local user or group name (a role's users and groups).
LOCAL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
LOCAL_ID_MAX = 4294967294  # (uid_t)-1 means "no owner"
DIGITS_RE = re.compile(r"[0-9]{1,32}")
PROTOCOLS = ("tcp", "udp", "icmp")
SERVICE_KEYS = {"proto", "ports", "description"}


# --------------------------------------------------------------------------- helpers


def as_list(value: object, path: str, *, allow_empty: bool = False, what: str = "one value or a list of them") -> list:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise PolicyError(path, value, f"must be {what}")
    if not value and not allow_empty:
        raise PolicyError(path, value, "must not be empty")
    return list(value)


def read_number(value: object, low: int = 0, high: int | None = None) -> int | None:
    """``value`` as a whole number from ``low`` to ``high`` (no upper bound when None), or
    None: an int (not a bool), or text of the ASCII digits 0-9 and nothing else. No sign, no
    space, no digits of another script (``'²'``, ``'٣'``, which ``str.isdigit`` takes)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and DIGITS_RE.fullmatch(value):
        number = int(value)
    else:
        return None
    if number < low or (high is not None and number > high):
        return None
    return number


def plain(value: object) -> object:
    """``value`` with every string, number, mapping and list as the plain Python type. The
    inventory's values may be subclasses a YAML dumper cannot represent, and a filter's
    arguments may be Ansible's lazily templated containers, whose every item access costs a
    template check: a filter that walks a large structure many times converts it once."""
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return str(value)


def as_mapping(value: object, path: str) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(path, value, "must be a mapping")
    return value


def check_keys(value: Mapping, allowed: set, path: str) -> None:
    for key in value:
        if key not in allowed:
            raise PolicyError(f"{path}.{key}", value[key], f"is not a known key (expected one of: {', '.join(sorted(allowed))})")


def require_keys(value: Mapping, keys: tuple, path: str, problem: str = "is required") -> None:
    """Every missing key is named: one as ``path.key``, several in one message."""
    missing = [key for key in keys if key not in value]
    if len(missing) == 1:
        raise PolicyError(f"{path}.{missing[0]}", None, problem)
    if missing:
        raise PolicyError(path, dict(value), f"lacks the keys {', '.join(missing)}: each {problem}")


# How alike (difflib's ratio) a known name must be to a name that is not defined for the
# error to suggest it: a typo (smpt, dns_resolver, mailserver) is; a name that only shares
# some letters (nosuchgroup and ungrouped, 0.6) is not.
CLOSE = 0.75


def closest(value: object, known) -> str | None:
    """The known name nearest in spelling to ``value``, or None when none is near."""
    if not isinstance(value, str):
        return None
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=CLOSE)
    return close[0] if close else None


def unknown(path: str, value: object, what: str, known, problem: str = "") -> PolicyError:
    """The error for a name that is not defined: the closest known name first, then the list."""
    known = sorted(known)
    close = closest(value, known)
    hint = f"did you mean {close}? " if close else ""
    listed = ", ".join(known[:40]) + (f", and {len(known) - 40} more" if len(known) > 40 else "")
    return PolicyError(path, value, f"{problem or f'is not a known {what}'} ({hint}known {what}s: {listed})")


def check_name(value: object, path: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise PolicyError(path, value, f"is not a valid {what} name (letters, digits and '_', starting with a letter, at most 32)")
    return value


def parse_network(value: object, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address or prefix; host bits must be clear."""
    if isinstance(value, bool) or not isinstance(value, str) or not value or len(value) > 64:
        raise PolicyError(path, value, "is not an IP address or prefix")
    text = value.strip()
    try:
        return network(text)
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
    """Merge prefixes per family: the fewest prefixes holding the same addresses, sorted, as
    text (``spans.merged``)."""
    out = merged(networks)
    return {"ipv4": out[4], "ipv6": out[6]}


def parse_date(value: object, path: str) -> datetime.date:
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
    for i, item in enumerate(as_list(value, path)):
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
    spec = as_mapping(spec, path)
    check_keys(spec, SERVICE_KEYS, path)
    if "proto" not in spec:
        raise PolicyError(f"{path}.proto", None, "is required (tcp, udp, icmp, or a list of tcp/udp)")
    protos = as_list(spec["proto"], f"{path}.proto")
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


def parse_services(user: object) -> dict[str, dict]:
    services = {name: _service(name, spec, f"built-in service {name}") for name, spec in SERVICES.items()}
    for name, spec in as_mapping(user, "egress_services").items():
        check_name(name, f"egress_services.{name}", "service")
        services[name] = _service(name, spec, f"egress_services.{name}")
    return services


# --------------------------------------------------------------------------- upstreams


class Inventory:
    """What the compiler may ask of the inventory: host addresses and group members."""

    def __init__(self, addresses: Callable[[str], object] | Mapping | None, groups: Mapping | None) -> None:
        self._addresses = addresses or {}
        self.groups = groups or {}

    def has_host(self, name: str) -> bool:
        if callable(self._addresses):
            return self._addresses(name) is not None
        return name in self._addresses

    def addresses(self, name: str, path: str) -> list:
        """The host's addresses; ``path`` is the variable that needs them (named in the error
        when the host has none, which is reported against its egress_addresses)."""
        raw = self._addresses(name) if callable(self._addresses) else self._addresses.get(name)
        if raw is None or raw == []:
            raise PolicyError(f"hostvars[{name}].egress_addresses", raw,
                              f"is unset or empty, and ansible_host is not an IP address: host {name} has no address, which {path} needs; "
                              "set egress_addresses (or ansible_host to an IP) for it")
        nets = []
        for i, addr in enumerate(as_list(raw, f"hostvars[{name}].egress_addresses")):
            net = parse_network(addr, f"hostvars[{name}].egress_addresses[{i}]")
            if net.prefixlen != net.max_prefixlen:
                raise PolicyError(f"hostvars[{name}].egress_addresses[{i}]", addr, "must be a single address, not a prefix")
            nets.append(net)
        return nets


def upstream_entry(entry: object, path: str, inventory: Inventory) -> list:
    if is_dns_entry(entry):
        raise PolicyError(path, entry, "is a DNS name, which only an upstream of egress_upstreams may hold: "
                                       "define one there and name it here")
    if isinstance(entry, str) and entry.startswith("group:"):
        group = entry[len("group:"):]
        if not HOST_RE.fullmatch(group):
            raise PolicyError(path, entry, "names an invalid group")
        if group not in inventory.groups:
            close = closest(group, inventory.groups)
            hint = f" (did you mean group:{close}?)" if close else ""
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


def parse_upstreams(user: object, inventory: Inventory) -> dict[str, dict]:
    """Every upstream, resolved and merged: name -> {ipv4: [...], ipv6: [...]}, and
    ``names`` (sorted) for an upstream that holds ``dns:`` entries."""
    out = {name: merge([ipaddress.ip_network(p) for p in nets]) for name, nets in BUILTIN_UPSTREAMS.items()}
    for name, value in as_mapping(user, "egress_upstreams").items():
        path = f"egress_upstreams.{name}"
        check_name(name, path, "upstream")
        if name in BUILTIN_UPSTREAMS:
            raise PolicyError(path, value, f"redefines the built-in upstream '{name}'")
        entries = as_list(value, path)
        nets, names = [], []
        for i, entry in enumerate(entries):
            epath = f"{path}[{i}]" if not isinstance(value, str) else path
            if is_dns_entry(entry):
                names.append(parse_name(entry, epath))
            else:
                nets.extend(upstream_entry(entry, epath, inventory))
        out[name] = merge(nets)
        if names:
            out[name]["names"] = sorted(set(names))
    return out
