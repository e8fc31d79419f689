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

A flow (``model.flow.Flow``, or a mapping of its fields) is outbound by default: a packet of
a connection the host opens (or, at an edge, forwards). ``direction: inbound`` describes a
connection opened from outside to the host (``src`` the client, ``dst`` the host, ``dport``
the port asked for); what is judged is the host's answer to it, a packet in the connection's
reply direction (to the client's ``sport``, if given). ``user`` and ``group`` name the local
owner of the socket that sends (a name or a number); a packet without them comes from no
local user's socket. Addresses and ports are taken as unchanged by NAT.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import covers
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import Flow
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import PrefixIndex, Spans

ECHO_REPLY = {"echo-request": "echo-reply"}


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


def normalise_packet(packet: Flow | Mapping, path: str = "flow", ir: Mapping | None = None) -> dict:
    """The packet the oracle judges for a flow (a ``Flow``, or a mapping ``Flow.from_mapping``
    checks, naming its fields under ``path``): its defaults filled in, the interfaces from
    ``ir`` when it is an edge policy, and for an inbound flow the host's answer."""
    flow = Flow.from_mapping(packet, path)
    edge = ir is not None and ir.get("kind") == "edge"
    family, src, dst = flow.family, flow.src, flow.dst
    proto = "icmpv6" if flow.proto == "icmp" and family == "ipv6" else flow.proto
    icmp_type = flow.icmp_type
    if icmp_type is None and proto in ("icmp", "icmpv6"):
        icmp_type = "echo-request"
    if flow.direction == "inbound":
        if edge:
            raise PolicyError(f"{path}.direction", flow.direction, "is for a host policy (an edge judges what it forwards as it comes)")
        # The packet judged is the host's answer: from the host back to the client.
        src, dst = dst, src
        ct_state, ct_direction = "established", "reply"
        dport, sport = flow.sport, flow.dport
        if proto in ("icmp", "icmpv6"):
            icmp_type = ECHO_REPLY.get(icmp_type, icmp_type)
    else:
        ct_state, ct_direction = flow.ct_state or "new", "original"
        dport, sport = flow.dport, flow.sport
    iif, oif = flow.iif, flow.oif
    if edge:
        iif, oif = edge_interfaces(ir["edge"], src, dst, iif, oif, path)
    elif oif is None:
        oif = "lo" if dst.is_loopback else "eth0"
    return {
        "family": family,
        "src": src,
        "dst": dst,
        "proto": proto,
        "dport": dport,
        "sport": sport,
        "midstream": flow.midstream,
        "icmp_type": icmp_type,
        "iif": iif,
        "oif": oif,
        "ct_state": ct_state,
        "ct_direction": ct_direction,
        "orig_dport": flow.dport,
        "orig_src": flow.src,
        "direction": flow.direction,
        "user": flow.user,
        "group": flow.group,
        "hoplimit": 64 if flow.hoplimit is None else flow.hoplimit,
        "dns_name": flow.dns_name,
    }


_network = functools.lru_cache(maxsize=65536)(ipaddress.ip_network)


def _in_set(ir: Mapping, name: str, family: str, address) -> bool:
    for prefix in ir["sets"][name][family]:
        if address in _network(prefix):
            return True
    return False


def named(ir: Mapping, set_name: str, name: str | None) -> str | None:
    """The entry of a set's DNS names that covers ``name`` (the name the flow's client
    resolved), None when none does: the resolver puts the addresses it answers for a covered
    name in the set before the client has them (docs/dns.md)."""
    if name is None:
        return None
    for pattern in ir["sets"][set_name].get("names", ()):
        if covers(pattern, name):
            return pattern
    return None


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
    if rule["daddr_in"] is not None and not (in_set(ir, rule["daddr_in"], pkt["family"], pkt["dst"])
                                             or named(ir, rule["daddr_in"], pkt.get("dns_name"))):
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
            by_name = {}
            if rule["daddr_in"] is not None and not in_set(ir, rule["daddr_in"], pkt["family"], pkt["dst"]):
                by_name = {"dns_name": pkt["dns_name"], "dns_entry": named(ir, rule["daddr_in"], pkt["dns_name"]),
                           "reason": f"{rule['comment']} (allowed while {pkt['dns_name']} resolves to {pkt['dst']})"}
            return {
                "verdict": "accept" if (not denied or audit) else "drop",
                "denied": denied,
                "rule_index": index,
                "origin": rule["origin"],
                "reason": rule["comment"],
                **where,
                **by_name,
            }
    return {
        "verdict": "accept" if audit else "drop",
        "denied": True,
        "rule_index": None,
        "origin": "default",
        "reason": "default deny: no rule allows this flow",
        **where,
    }


def evaluate(ir: Mapping, packet: Flow | Mapping) -> dict:
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

    def evaluate(self, packet: Flow | Mapping) -> dict:
        pkt = normalise_packet(packet, ir=self.ir)
        names = {name for name, dummy in self._sources.lookup(pkt["src"])}
        indices = sorted(self._open + [index for name in names for index in self._by_set[name]])
        return _judged(self.ir, pkt, ((index, self.ir["rules"][index]) for index in indices), self.in_set)
