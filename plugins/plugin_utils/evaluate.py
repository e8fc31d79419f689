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
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.errors import PolicyError

IFNAME_RE = re.compile(r"[A-Za-z0-9_.@:/-]{1,64}")
PACKET_KEYS = {"src", "dst", "proto", "dport", "icmp_type", "iif", "oif", "ct_state", "hoplimit"}
CT_STATES = ("new", "established", "related", "invalid")


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
        if dport is None and isinstance(raw, str) and raw.isdigit():
            dport = int(raw)
        if dport is None or not 1 <= dport <= 65535:
            raise PolicyError(f"{path}.dport", raw, "is not a port (1-65535)")
    ct_state = packet.get("ct_state", "new")
    if ct_state not in CT_STATES:
        raise PolicyError(f"{path}.ct_state", ct_state, f"is not one of {', '.join(CT_STATES)}")
    iif, oif = _interface(packet, "iif", path), _interface(packet, "oif", path)
    if ir is not None and ir.get("kind") == "edge":
        iif, oif = edge_interfaces(ir["edge"], out["src"], out["dst"], iif, oif, path)
    elif oif is None:
        oif = "lo" if out["dst"].is_loopback else "eth0"
    return {
        "family": family,
        "src": out["src"],
        "dst": out["dst"],
        "proto": proto,
        "dport": dport,
        "icmp_type": packet.get("icmp_type", "echo-request" if proto in ("icmp", "icmpv6") else None),
        "iif": iif,
        "oif": oif,
        "ct_state": ct_state,
        "hoplimit": int(packet.get("hoplimit", 64)),
    }


def _in_set(ir: Mapping, name: str, family: str, address) -> bool:
    for prefix in ir["sets"][name][family]:
        if address in ipaddress.ip_network(prefix):
            return True
    return False


PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


def rule_matches(ir: Mapping, rule: Mapping, pkt: Mapping) -> bool:
    """Whether one IR rule matches. A per-source meter is taken as not exceeded: the
    oracle judges a single flow, not a burst."""
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
    if rule["icmp_types"] is not None and pkt["icmp_type"] not in rule["icmp_types"]:
        return False
    if rule.get("saddr_in") is not None and not _in_set(ir, rule["saddr_in"], pkt["family"], pkt["src"]):
        return False
    if rule["saddr_not_in"] is not None and _in_set(ir, rule["saddr_not_in"], pkt["family"], pkt["src"]):
        return False
    if rule["daddr_in"] is not None and not _in_set(ir, rule["daddr_in"], pkt["family"], pkt["dst"]):
        return False
    if rule.get("meter") is not None:
        return False
    return True


def evaluate(ir: Mapping, packet: Mapping) -> dict:
    """Return the verdict for ``packet`` under ``ir``, and the rule that decided it.

    ``verdict`` is what happens on the wire (``accept`` or ``drop``); ``denied`` says
    whether the policy denies the flow (in audit mode a denied flow is still accepted,
    and logged); ``iif`` and ``oif`` are the interfaces the flow was judged with.
    """
    pkt = normalise_packet(packet, ir=ir)
    where = {"iif": pkt["iif"], "oif": pkt["oif"]}
    audit = ir["mode"] == "audit"
    for index, rule in enumerate(ir["rules"]):
        if rule_matches(ir, rule, pkt):
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
