# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reference semantics of a Policy IR (private to the collection).

``evaluate(ir, packet)`` walks the rules first-match, as every renderer must behave.
Renderers are tested against it; the verify role derives its expected matrix from it.

A flow through an edge (a gateway's forward hook) is judged with the interfaces it comes in
and goes out by. Left out, they default as a forwarded packet would meet them: in by the
inside interface whose prefixes hold the source, out by the inside interface whose prefixes
hold the destination, or else by the (first) outside interface.

A flow is outbound by default: a packet of a connection the host opens (or, at an edge,
forwards). ``direction: inbound`` describes a connection opened from outside to the host
(``src`` the client, ``dst`` the host, ``dport`` the port asked for); what is judged is the
host's answer to it, a packet in the connection's reply direction (to the client's ``sport``,
if given). ``user`` and ``group``
name the local owner of the socket that sends (a name or a number); a packet without them
comes from no local user's socket. Addresses and ports are taken as unchanged by NAT.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import PrefixIndex, Spans

IFNAME_RE = re.compile(r"[A-Za-z0-9_.@:/-]{1,64}")
PACKET_KEYS = {"src", "dst", "proto", "dport", "icmp_type", "iif", "oif", "ct_state", "hoplimit", "direction", "user", "group", "sport",
               "midstream"}
CT_STATES = ("new", "established", "related", "invalid")
DIRECTIONS = ("outbound", "inbound")
LOCAL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
ECHO_REPLY = {"echo-request": "echo-reply"}


def _owner(packet: Mapping, key: str, path: str) -> str | int | None:
    value = packet.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4294967294:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) <= 4294967294:
        return int(value)
    if isinstance(value, str) and LOCAL_NAME_RE.fullmatch(value):
        return value
    raise PolicyError(f"{path}.{key}", value, f"is not a local {key} name or number")


def _interface(packet: Mapping, key: str, path: str) -> str | None:
    value = packet.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not IFNAME_RE.fullmatch(value):
        raise PolicyError(f"{path}.{key}", value, "is not an interface name")
    return value


def _inside_interface(edge: Mapping, address) -> str | None:
    """The inside interface whose declared prefixes hold ``address`` (longest match)."""
    best = None
    for entry in edge["inside"]:
        for prefix in entry["prefixes"]:
            net = ipaddress.ip_network(prefix)
            if net.version == address.version and address in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, entry["interface"])
    return None if best is None else best[1]


def edge_interfaces(edge: Mapping, src, dst, iif: str | None, oif: str | None, path: str = "flow") -> tuple[str, str]:
    """The interfaces a forwarded flow meets at an edge: those given, or the defaults.

    In: the inside interface the source belongs to; a source in no inside prefix comes in
    by the outside when the destination is inside (inbound), or else by the only inside
    interface (a forged source). Out: the inside interface the destination belongs to, or
    else the first outside interface (every outside interface is judged alike).
    """
    inside = [entry["interface"] for entry in edge["inside"]]
    outside = list(edge["outside"])
    to_inside = _inside_interface(edge, dst)
    if iif is None:
        iif = _inside_interface(edge, src)
        if iif is None and to_inside is not None:
            iif = outside[0]
        elif iif is None and len(inside) == 1:
            iif = inside[0]
        elif iif is None:
            raise PolicyError(f"{path}.iif", None, f"is required: source {src} is in no inside prefix of the edge, so the interface it comes in by "
                                                   f"is not known (inside: {', '.join(inside)}; outside: {', '.join(outside)})")
    if oif is None:
        oif = to_inside or outside[0]
    return iif, oif


def normalise_packet(packet: Mapping, path: str = "flow", ir: Mapping | None = None) -> dict:
    """Validate a packet description and fill in defaults (the interfaces from ``ir``
    when it is an edge policy)."""
    if not isinstance(packet, Mapping):
        raise PolicyError(path, packet, "must be a mapping with src, dst, proto and dport")
    for key in packet:
        if key not in PACKET_KEYS:
            raise PolicyError(f"{path}.{key}", packet[key], f"is not a known flow key ({', '.join(sorted(PACKET_KEYS))})")
    out = {}
    for key in ("src", "dst"):
        if key not in packet:
            raise PolicyError(f"{path}.{key}", None, "is required")
        try:
            out[key] = ipaddress.ip_address(str(packet[key]))
        except ValueError:
            raise PolicyError(f"{path}.{key}", packet[key], "is not an IP address") from None
    if out["src"].version != out["dst"].version:
        raise PolicyError(f"{path}.dst", packet["dst"], "is not of the same address family as src")
    family = "ipv4" if out["dst"].version == 4 else "ipv6"
    proto = packet.get("proto", "tcp")
    if proto == "icmp" and family == "ipv6":
        proto = "icmpv6"
    if isinstance(proto, int) and not isinstance(proto, bool) and 0 <= proto <= 255:
        pass  # a raw IP protocol number (e.g. 89 for OSPF)
    elif proto not in ("tcp", "udp", "icmp", "icmpv6"):
        raise PolicyError(f"{path}.proto", proto, "is not one of tcp, udp, icmp, or an IP protocol number")
    dport = None
    if proto in ("tcp", "udp"):
        raw = packet.get("dport")
        dport = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        if dport is None and isinstance(raw, str) and raw.isascii() and raw.isdigit():
            dport = int(raw)
        if dport is None or not 1 <= dport <= 65535:
            raise PolicyError(f"{path}.dport", raw, "is not a port (1-65535)")
    direction = packet.get("direction", "outbound")
    if direction not in DIRECTIONS:
        raise PolicyError(f"{path}.direction", direction, f"is not one of {', '.join(DIRECTIONS)}")
    icmp_type = packet.get("icmp_type", "echo-request" if proto in ("icmp", "icmpv6") else None)
    src, dst = out["src"], out["dst"]
    midstream = packet.get("midstream", False)
    if not isinstance(midstream, bool):
        raise PolicyError(f"{path}.midstream", midstream, "must be true or false")
    if midstream and (direction != "outbound" or proto != "tcp" or packet.get("ct_state", "new") != "new"):
        raise PolicyError(f"{path}.midstream", midstream, "is for an outbound tcp packet tracked from mid-stream (ct_state new)")
    if direction == "inbound":
        if "ct_state" in packet:
            raise PolicyError(f"{path}.ct_state", packet["ct_state"], "is not for an inbound flow (the host's answer is an established reply)")
        if ir is not None and ir.get("kind") == "edge":
            raise PolicyError(f"{path}.direction", direction, "is for a host policy (an edge judges what it forwards as it comes)")
        # The packet judged is the host's answer: from the host back to the client.
        src, dst = dst, src
        ct_state, ct_direction = "established", "reply"
        orig_dport, orig_src = dport, out["src"]
        sport = packet.get("sport")
        if sport is not None and (isinstance(sport, bool) or not isinstance(sport, int) or not 1 <= sport <= 65535):
            raise PolicyError(f"{path}.sport", sport, "is not a port (1-65535)")
        if proto in ("icmp", "icmpv6"):
            icmp_type = ECHO_REPLY.get(icmp_type, icmp_type)
    else:
        ct_state = packet.get("ct_state", "new")
        if ct_state not in CT_STATES:
            raise PolicyError(f"{path}.ct_state", ct_state, f"is not one of {', '.join(CT_STATES)}")
        if "sport" in packet and not midstream:
            raise PolicyError(f"{path}.sport", packet["sport"], "is for an inbound flow (the client's source port) or a midstream packet")
        ct_direction, orig_dport, orig_src = "original", dport, src
        sport = packet.get("sport")
        if midstream and (isinstance(sport, bool) or not isinstance(sport, int) or not 1 <= sport <= 65535):
            raise PolicyError(f"{path}.sport", sport, "is not a port (1-65535): a midstream packet leaves from a port of this host")
    iif, oif = _interface(packet, "iif", path), _interface(packet, "oif", path)
    if ir is not None and ir.get("kind") == "edge":
        iif, oif = edge_interfaces(ir["edge"], src, dst, iif, oif, path)
    elif oif is None:
        oif = "lo" if dst.is_loopback else "eth0"
    return {
        "family": family,
        "src": src,
        "dst": dst,
        "proto": proto,
        "dport": dport if direction == "outbound" else sport,
        "sport": sport if direction == "outbound" else dport,
        "midstream": midstream,
        "icmp_type": icmp_type,
        "iif": iif,
        "oif": oif,
        "ct_state": ct_state,
        "ct_direction": ct_direction,
        "orig_dport": orig_dport,
        "orig_src": orig_src,
        "direction": direction,
        "user": _owner(packet, "user", path),
        "group": _owner(packet, "group", path),
        "hoplimit": int(packet.get("hoplimit", 64)),
    }


_network = functools.lru_cache(maxsize=65536)(ipaddress.ip_network)


def _in_set(ir: Mapping, name: str, family: str, address) -> bool:
    for prefix in ir["sets"][name][family]:
        if address in _network(prefix):
            return True
    return False


PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


def _owned_by(ir: Mapping, kind: str, entries: list, value: str | int | None) -> bool:
    """Whether a packet's owner (a name or a number; None: no local socket) is one of a
    rule's users or groups. A name and a number are the same owner when the IR has the
    name's number (``local_ids``, filled in on the target)."""
    if value is None:
        return False
    ids = ir.get("local_ids", {}).get(kind, {})

    def number(item):
        return item if isinstance(item, int) else (ids.get(item) or {}).get("id")

    wanted = number(value)
    return any(item == value or (wanted is not None and number(item) == wanted) for item in entries)


def rule_matches(ir: Mapping, rule: Mapping, pkt: Mapping, in_set=_in_set) -> bool:
    """Whether one IR rule matches. A per-source meter is taken as not exceeded: the
    oracle judges a single flow, not a burst. ``in_set(ir, name, family, address)`` tests
    set membership (``Evaluator`` gives an indexed one)."""
    if rule["family"] != "any" and rule["family"] != pkt["family"]:
        return False
    if rule.get("iif") is not None and pkt["iif"] not in rule["iif"]:
        return False
    if rule.get("iif_not") is not None and pkt["iif"] in rule["iif_not"]:
        return False
    if rule["oif"] is not None and pkt["oif"] not in rule["oif"]:
        return False
    if rule.get("oif_not") is not None and pkt["oif"] in rule["oif_not"]:
        return False
    if rule["ct_state"] is not None and pkt["ct_state"] not in rule["ct_state"]:
        return False
    if rule["hoplimit"] is not None and rule["hoplimit"] != pkt["hoplimit"]:
        return False
    if rule["proto"] is not None and rule["proto"] != pkt["proto"]:
        return False
    if rule.get("l4proto") is not None and rule["l4proto"] != PROTO_NUMBERS.get(pkt["proto"], pkt["proto"]):
        return False
    if rule["dports"] is not None and not any(low <= (pkt["dport"] or 0) <= high for low, high in rule["dports"]):
        return False
    if rule.get("sports") is not None and not any(low <= (pkt.get("sport") or 0) <= high for low, high in rule["sports"]):
        return False
    if rule.get("midstream") and not pkt.get("midstream"):
        return False
    if rule["icmp_types"] is not None and pkt["icmp_type"] not in rule["icmp_types"]:
        return False
    if rule.get("saddr_in") is not None and not in_set(ir, rule["saddr_in"], pkt["family"], pkt["src"]):
        return False
    if rule["saddr_not_in"] is not None and in_set(ir, rule["saddr_not_in"], pkt["family"], pkt["src"]):
        return False
    if rule["daddr_in"] is not None and not in_set(ir, rule["daddr_in"], pkt["family"], pkt["dst"]):
        return False
    if rule.get("ct_direction") is not None and (pkt["ct_state"] == "invalid" or rule["ct_direction"] != pkt["ct_direction"]):
        return False
    if rule.get("ct_orig_dports") is not None and not any(low <= (pkt["orig_dport"] or 0) <= high for low, high in rule["ct_orig_dports"]):
        return False
    if rule.get("ct_orig_saddr_in") is not None and not in_set(ir, rule["ct_orig_saddr_in"], pkt["family"], pkt["orig_src"]):
        return False
    for kind, key in (("users", "user"), ("groups", "group")):
        if rule.get(kind) is not None and not _owned_by(ir, kind, rule[kind], pkt[key]):
            return False
    if rule.get("meter") is not None:
        return False
    return True


def _judged(ir: Mapping, pkt: Mapping, rules, in_set=_in_set) -> dict:
    """The verdict for the normalised ``pkt`` from ``rules`` (``(index, rule)`` in order)."""
    where = {"iif": pkt["iif"], "oif": pkt["oif"]}
    audit = ir["mode"] == "audit"
    for index, rule in rules:
        if rule_matches(ir, rule, pkt, in_set):
            denied = rule["action"] != "accept"
            return {
                "verdict": "accept" if (not denied or audit) else "drop",
                "denied": denied,
                "rule_index": index,
                "origin": rule["origin"],
                "reason": rule["comment"],
                **where,
            }
    return {
        "verdict": "accept" if audit else "drop",
        "denied": True,
        "rule_index": None,
        "origin": "default",
        "reason": "default deny: no rule allows this flow",
        **where,
    }


def evaluate(ir: Mapping, packet: Mapping) -> dict:
    """Return the verdict for ``packet`` under ``ir``, and the rule that decided it.

    ``verdict`` is what happens on the wire (``accept`` or ``drop``); ``denied`` says
    whether the policy denies the flow (in audit mode a denied flow is still accepted,
    and logged); ``iif`` and ``oif`` are the interfaces the flow was judged with.
    """
    return _judged(ir, normalise_packet(packet, ir=ir), enumerate(ir["rules"]))


class Evaluator:
    """``evaluate`` for many packets under one IR, at a cost that grows with the rules that
    could match a packet rather than with all of them, and with the logarithm of a set's
    size rather than its size. The rules are indexed by the set their sources must lie in
    (``saddr_in``); a packet is tried, in order, against the rules without one and those
    whose set holds its source. Every other rule fails its ``saddr_in`` test, so the first
    match, and with it the result, is ``evaluate``'s. A set's membership is a binary search
    over the union of its prefixes (``spans.Spans``), which holds an address exactly when
    one of the prefixes does."""

    def __init__(self, ir: Mapping) -> None:
        self.ir = ir
        self._open: list[int] = []
        self._by_set: dict[str, list[int]] = {}
        self._sources = PrefixIndex()
        self._members: dict[str, Spans] = {}
        for index, rule in enumerate(ir["rules"]):
            name = rule.get("saddr_in")
            if name is None:
                self._open.append(index)
            else:
                self._by_set.setdefault(name, []).append(index)
        for name in self._by_set:
            for family in ("ipv4", "ipv6"):
                for prefix in ir["sets"][name][family]:
                    self._sources.add(_network(prefix), name)

    def in_set(self, ir: Mapping, name: str, family: str, address) -> bool:
        """``_in_set`` by binary search (``family`` is the address's own: a set's members of
        the other family never hold it)."""
        spans = self._members.get(name)
        if spans is None:
            members = ir["sets"][name]
            spans = self._members[name] = Spans([_network(p) for f in ("ipv4", "ipv6") for p in members[f]])
        return spans.holds(address)

    def evaluate(self, packet: Mapping) -> dict:
        pkt = normalise_packet(packet, ir=self.ir)
        names = {name for name, dummy in self._sources.lookup(pkt["src"])}
        indices = sorted(self._open + [index for name in names for index in self._by_set[name]])
        return _judged(self.ir, pkt, ((index, self.ir["rules"][index]) for index in indices), self.in_set)
