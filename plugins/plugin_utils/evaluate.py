# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reference semantics of a Policy IR (private to the collection).

``evaluate(ir, packet)`` walks the rules first-match, as every renderer must behave.
Renderers are tested against it; the verify role derives its expected matrix from it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.errors import PolicyError

PACKET_KEYS = {"src", "dst", "proto", "dport", "icmp_type", "iif", "oif", "ct_state", "hoplimit"}
CT_STATES = ("new", "established", "related", "invalid")


def normalise_packet(packet: Mapping, path: str = "flow") -> dict:
    """Validate a packet description and fill in defaults."""
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
    default_oif = "lo" if out["dst"].is_loopback else "eth0"
    return {
        "family": family,
        "src": out["src"],
        "dst": out["dst"],
        "proto": proto,
        "dport": dport,
        "icmp_type": packet.get("icmp_type", "echo-request" if proto in ("icmp", "icmpv6") else None),
        "iif": packet.get("iif"),
        "oif": packet.get("oif", default_oif),
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
    and logged).
    """
    pkt = normalise_packet(packet)
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
            }
    return {
        "verdict": "accept" if audit else "drop",
        "denied": True,
        "rule_index": None,
        "origin": "default",
        "reason": "default deny: no rule allows this flow",
    }
