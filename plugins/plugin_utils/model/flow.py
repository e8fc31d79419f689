# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One flow, as every stage speaks of it (private to the collection).

A ``Flow`` is what the oracle judges, what a person asks about (the explain playbook, module
and filter, ``egress_verify_flows``) and what a learned log line becomes: ``src``, ``dst``,
``proto``, ``dport``, ``sport``, ``icmp_type``, ``iif``, ``oif``, ``user``, ``group``,
``direction``, ``midstream``, ``ct_state``, ``hoplimit`` and ``dns_name`` (the DNS name its
client resolved to reach ``dst``). Their meaning is in
docs/policy-ir.md; the oracle (``oracle.evaluate``) derives from a Flow the packet it judges.

``Flow.from_mapping`` is its one door: every field is checked there, and a bad one raises
``PolicyError`` naming the field and the value. ``port`` is read as ``dport`` only where a
person types the flow (``aliases=True``), and an error then names ``port``. ``to_dict`` gives
the flow back as plain data, the form it travels through Ansible in.

``read_number`` is the one reader of a number written as text, for the flow and for the log
lines read back into flows: ASCII digits only.

Pure Python: no Ansible imports.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import flow_name
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import LOCAL_ID_MAX, LOCAL_NAME_RE, read_number

PROTOS = ("tcp", "udp", "icmp", "icmpv6")
PORT_PROTOS = ("tcp", "udp")
CT_STATES = ("new", "established", "related", "invalid")
DIRECTIONS = ("outbound", "inbound")
IFNAME_RE = re.compile(r"[A-Za-z0-9_.@:/-]{1,64}")
# What a person may write for a field where a flow is typed (aliases=True).
ALIASES = {"port": "dport"}


def field_path(path: str, key: str) -> str:
    """Where a field of the flow at ``path`` is (the field alone when the flow has no path)."""
    return f"{path}.{key}" if path else key


@dataclasses.dataclass(frozen=True)
class Flow:
    """One flow. Build it with ``from_mapping`` (which checks every field); ``to_dict`` is its
    plain-data form. A field left at its default means what docs/policy-ir.md says: ``proto``
    tcp, ``direction`` outbound, ``ct_state`` new (outbound), ``hoplimit`` 64, ``icmp_type``
    echo-request for icmp, ``oif`` the host's default; no ``user`` or ``group``: no local
    user's socket."""

    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    proto: str | int = "tcp"
    dport: int | None = None
    sport: int | None = None
    icmp_type: str | int | None = None
    iif: str | None = None
    oif: str | None = None
    user: str | int | None = None
    group: str | int | None = None
    direction: str = "outbound"
    midstream: bool = False
    ct_state: str | None = None
    hoplimit: int | None = None
    dns_name: str | None = None

    @property
    def family(self) -> str:
        return f"ipv{self.dst.version}"

    @classmethod
    def from_mapping(cls, value: object, path: str = "flow", aliases: bool = False) -> Flow:
        """The flow ``value`` describes (a Flow is returned as it is), checked. ``path`` names
        it in errors; ``aliases`` lets ``port`` stand for ``dport`` (where a person types it)."""
        if isinstance(value, Flow):
            return value
        if not isinstance(value, Mapping):
            raise PolicyError(path or "flow", value, "must be a mapping with src, dst, proto and dport")
        keys = FIELDS | set(ALIASES) if aliases else FIELDS
        given: dict = {}
        names: dict = {}
        for key, item in value.items():
            if key not in keys:
                raise PolicyError(field_path(path, key), item, f"is not a known flow key ({', '.join(sorted(keys))})")
            name = ALIASES.get(key, key) if aliases else key
            if name in given:
                raise PolicyError(field_path(path, key), item, f"is another name for {names[name]}: give one of them")
            given[name], names[name] = item, key

        def at(name: str) -> str:
            return field_path(path, names.get(name, name))

        src, dst = _address(given, "src", at), _address(given, "dst", at)
        if src.version != dst.version:
            raise PolicyError(at("dst"), given["dst"], f"is not of the address family of src ({given['src']})")
        proto = given.get("proto", "tcp")
        if not (proto in PROTOS or isinstance(proto, int) and not isinstance(proto, bool) and 0 <= proto <= 255):
            raise PolicyError(at("proto"), proto, "is not one of tcp, udp, icmp, or an IP protocol number")
        dport = None
        if proto in PORT_PROTOS:
            dport = _port(given, "dport", at, "is not a port (1-65535)")
        direction = given.get("direction", "outbound")
        if direction not in DIRECTIONS:
            raise PolicyError(at("direction"), direction, f"is not one of {', '.join(DIRECTIONS)}")
        midstream = given.get("midstream", False)
        if not isinstance(midstream, bool):
            raise PolicyError(at("midstream"), midstream, "must be true or false")
        if midstream and (direction != "outbound" or proto != "tcp" or given.get("ct_state", "new") != "new"):
            raise PolicyError(at("midstream"), midstream, "is for an outbound tcp packet tracked from mid-stream (ct_state new)")
        sport = None
        if direction == "inbound":
            if "ct_state" in given:
                raise PolicyError(at("ct_state"), given["ct_state"], "is not for an inbound flow (the host's answer is an established reply)")
            if given.get("sport") is not None:
                sport = _port(given, "sport", at, "is not a port (1-65535)")
        else:
            if given.get("ct_state", "new") not in CT_STATES:
                raise PolicyError(at("ct_state"), given["ct_state"], f"is not one of {', '.join(CT_STATES)}")
            if "sport" in given and not midstream:
                raise PolicyError(at("sport"), given["sport"], "is for an inbound flow (the client's source port) or a midstream packet")
            if midstream:
                sport = _port(given, "sport", at, "is not a port (1-65535): a midstream packet leaves from a port of this host")
        icmp_type = given.get("icmp_type")
        if icmp_type is not None and not (isinstance(icmp_type, str) and icmp_type or read_number(icmp_type, 0, 255) is not None):
            raise PolicyError(at("icmp_type"), icmp_type, "is not an ICMP type (a name or 0-255)")
        hoplimit = given.get("hoplimit")
        if hoplimit is not None:
            hoplimit = read_number(hoplimit, 0, 255)
            if hoplimit is None:
                raise PolicyError(at("hoplimit"), given["hoplimit"], "is not a hop limit (0-255)")
        return cls(src=src, dst=dst, proto=proto, dport=dport, sport=sport, icmp_type=icmp_type,
                   iif=_interface(given, "iif", at), oif=_interface(given, "oif", at),
                   user=_owner(given, "user", at), group=_owner(given, "group", at), direction=direction,
                   midstream=midstream, ct_state=given.get("ct_state"), hoplimit=hoplimit,
                   dns_name=None if given.get("dns_name") is None else flow_name(given["dns_name"], at("dns_name")))

    def to_dict(self) -> dict:
        """The flow as plain data: addresses as text, ``proto`` always, every other field only
        when it is not its default."""
        out: dict = {"src": str(self.src), "dst": str(self.dst), "proto": self.proto}
        for field in dataclasses.fields(self)[3:]:
            value = getattr(self, field.name)
            if value != field.default:
                out[field.name] = value
        return out

    def but(self, **changes) -> Flow:
        """This flow with some fields changed, checked again as ``from_mapping`` checks them."""
        return Flow.from_mapping({**self.to_dict(), **changes})


FIELDS = frozenset(field.name for field in dataclasses.fields(Flow))


def _address(given: Mapping, key: str, at) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if key not in given:
        raise PolicyError(at(key), None, "is required")
    try:
        return ipaddress.ip_address(str(given[key]))
    except ValueError:
        raise PolicyError(at(key), given[key], "is not an IP address") from None


def _port(given: Mapping, key: str, at, problem: str) -> int:
    number = read_number(given.get(key), 1, 65535)
    if number is None:
        raise PolicyError(at(key), given.get(key), problem)
    return number


def _interface(given: Mapping, key: str, at) -> str | None:
    value = given.get(key)
    if value is not None and (not isinstance(value, str) or not IFNAME_RE.fullmatch(value)):
        raise PolicyError(at(key), value, "is not an interface name")
    return value


def _owner(given: Mapping, key: str, at) -> str | int | None:
    """A local user or group: its number (from an int or digits), or its name."""
    value = given.get(key)
    if value is None:
        return None
    number = read_number(value, 0, LOCAL_ID_MAX)
    if number is not None:
        return number
    if isinstance(value, str) and LOCAL_NAME_RE.fullmatch(value):
        return value
    raise PolicyError(at(key), value, f"is not a local {key} name or number")


def learned_flow(record: Mapping) -> dict:
    """A learned flow as the plain data of a ``model.flow.Flow`` (what ``Flow.from_mapping``
    and the oracle read), as the policy that logged it saw it: the line's ``UID`` and ``GID``
    are the flow's ``user`` and ``group``, and the name its host's resolver answered the
    address for (``learn.resolver``) its ``dns_name``, so that it is judged by the name as
    the kernel judges it. Checked where it is judged, as every flow is."""
    flow = {"src": record["src"], "dst": record["dst"], "proto": record["proto"]}
    if record.get("dns_name"):
        flow["dns_name"] = record["dns_name"]
    if record["dport"] is not None:
        flow["dport"] = record["dport"]
    if isinstance(record.get("icmp_type"), str):
        flow["icmp_type"] = record["icmp_type"]
    for key in ("iif", "oif"):
        if record.get(key):
            flow[key] = record[key]
    for key, field in (("uid", "user"), ("gid", "group")):
        if record.get(key) is not None:
            flow[field] = record[key]
    return flow
