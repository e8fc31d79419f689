# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Edge Policy IR -> stateless egress ACLs (private to the collection).

The ACL is bound ``out`` on the outside interface, so it sees every packet leaving the site
there and nothing else. It is stateless:

* replies are let out by ``established`` (TCP with ACK or RST), from trusted sources only;
* "source not trusted" cannot be one entry, so every permit's sources are intersected with
  the inside interface's trusted prefixes, and what no permit allows meets the final deny;
* the per-source connection limit has no ACL equivalent and is left out.

``aces(ir)`` returns the platform-neutral entries per family; ``ios_config`` turns them into
the ``config`` of ``cisco.ios.ios_acls``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.render_pf import _specialise

FAMILIES = ("ipv4", "ipv6")
NAMES = {"ipv4": "WARDEN-EGRESS-V4", "ipv6": "WARDEN-EGRESS-V6"}
STEP = 10


def _nets(prefixes: list) -> list:
    return [ipaddress.ip_network(p) for p in prefixes]


def _intersect(sources: list, trusted: list) -> list:
    """Prefixes in both lists (each result is the smaller of two overlapping prefixes)."""
    out = []
    for src in sources:
        for net in trusted:
            if src.version != net.version or not src.overlaps(net):
                continue
            out.append(src if src.subnet_of(net) else net)
    return sorted(set(out), key=lambda n: (n.version, n.network_address, n.prefixlen))


def _entry(action: str, remark: str, **match) -> dict:
    entry = {"action": action, "proto": None, "src": None, "dst": None, "ports": None, "established": False, "log": action == "deny", "remark": remark}
    entry.update(match)
    return entry


def aces(ir: Mapping) -> dict:
    """The entries of the IPv4 and IPv6 ACLs, in order; first match decides."""
    if ir.get("kind") != "edge":
        raise ValueError("device ACLs are rendered from an edge policy (egress_edge)")
    edge = ir["edge"]
    if len(edge["inside"]) != 1 or len(edge["outside"]) != 1:
        raise ValueError("egress_edge: device ACLs are rendered for one inside and one outside interface")
    inside, outside = edge["inside"][0]["interface"], edge["outside"][0]
    trusted_set = next(r["saddr_not_in"] for r in ir["rules"] if r.get("iif") == [inside] and r["saddr_not_in"])
    out: dict = {family: [] for family in FAMILIES}
    for family in FAMILIES:
        trusted = _nets(ir["sets"][trusted_set][family])
        for net in trusted:
            out[family].append(_entry("permit", "baseline: replies (TCP with ACK or RST) from trusted sources",
                                      proto="tcp", src=net, established=True, log=False))
    for rule in ir["rules"]:
        rule = _specialise(rule, inside, outside)
        if rule is None or rule.get("meter") is not None or rule["saddr_not_in"] == trusted_set:
            continue
        for family in FAMILIES:
            if rule["family"] not in ("any", family):
                continue
            proto = rule["proto"]
            if proto in ("icmp", "icmpv6"):
                if (proto == "icmp") != (family == "ipv4"):
                    continue
                proto = "icmp"
            if rule.get("l4proto") is not None:
                proto = int(rule["l4proto"])
            trusted = _nets(ir["sets"][trusted_set][family])
            sources = _intersect(_nets(ir["sets"][rule["saddr_in"]][family]), trusted) if rule.get("saddr_in") else [None]
            if rule["action"] == "accept" and sources == [None]:
                sources = trusted
            dests = _nets(ir["sets"][rule["daddr_in"]][family]) if rule["daddr_in"] else [None]
            ports = [tuple(r) for r in rule["dports"]] if rule["dports"] else [None]
            action = "permit" if rule["action"] == "accept" else "deny"
            for src in sources:
                for dst in dests:
                    for port in ports:
                        out[family].append(_entry(action, rule["comment"], proto=proto, src=src, dst=dst, ports=port))
    for family in FAMILIES:
        out[family].append(_entry("deny", "default deny"))
    return out


def _ios_address(net, family: str) -> dict:
    if net is None:
        return {"any": True}
    if net.num_addresses == 1:
        return {"host": str(net.network_address)}
    if family == "ipv4":
        return {"address": str(net.network_address), "wildcard_bits": str(net.hostmask)}
    return {"address": str(net)}


def ios_config(ir: Mapping) -> list:
    """``config`` for cisco.ios.ios_acls (state rendered, replaced): one extended IPv4 ACL
    and one IPv6 ACL, sequence numbers spaced by 10, a remark naming each entry's origin."""
    config = []
    for family, entries in aces(ir).items():
        out = []
        for index, entry in enumerate(entries, 1):
            ace = {"sequence": index * STEP, "grant": entry["action"]}
            if isinstance(entry["proto"], int):
                ace["protocol_options"] = {"protocol_number": entry["proto"]}
            else:
                ace["protocol"] = entry["proto"] or ("ip" if family == "ipv4" else "ipv6")
            ace["source"] = _ios_address(entry["src"], family)
            ace["destination"] = _ios_address(entry["dst"], family)
            if entry["ports"] is not None:
                low, high = entry["ports"]
                ace["destination"]["port_protocol"] = {"eq": str(low)} if low == high else {"range": {"start": low, "end": high}}
            if entry["established"]:
                ace["protocol_options"] = {"tcp": {"established": True}}
            if entry["log"]:
                ace["log"] = {"set": True}
            if family == "ipv4":
                ace["remarks"] = [entry["remark"][:100]]
            out.append(ace)
        acl = {"name": NAMES[family], "aces": out}
        if family == "ipv4":
            acl["acl_type"] = "extended"
        config.append({"afi": family, "acls": [acl]})
    return config


# --------------------------------------------------------------------------- reading back

# The port keywords IOS (and cisco.ios rendered output) writes instead of numbers.
IOS_PORT_NAMES = {
    "bgp": 179, "chargen": 19, "cmd": 514, "daytime": 13, "discard": 9, "domain": 53, "echo": 7, "exec": 512,
    "finger": 79, "ftp": 21, "ftp-data": 20, "gopher": 70, "hostname": 101, "ident": 113, "irc": 194,
    "klogin": 543, "kshell": 544, "login": 513, "lpd": 515, "msrpc": 135, "nntp": 119, "onep-plain": 5001,
    "onep-tls": 5002, "pim-auto-rp": 496, "pop2": 109, "pop3": 110, "smtp": 25, "sunrpc": 111, "tacacs": 49,
    "talk": 517, "telnet": 23, "time": 37, "uucp": 540, "whois": 43, "www": 80,
}
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58}


def _port(value) -> int:
    text = str(value)
    return int(text) if text.isdigit() else IOS_PORT_NAMES[text]


def _parsed_address(spec: Mapping, family: str):
    if spec.get("any"):
        return None
    if spec.get("host"):
        return ipaddress.ip_network(spec["host"])
    if "wildcard_bits" in spec:
        return ipaddress.ip_network(f"{spec['address']}/{spec['wildcard_bits']}")
    return ipaddress.ip_network(spec["address"])


def read_ios(parsed: list) -> dict:
    """What ``cisco.ios.ios_acls`` state parsed returned, as platform-neutral entries."""
    out: dict = {}
    for afi in parsed:
        family = afi["afi"]
        for acl in afi["acls"]:
            entries = []
            for ace in acl.get("aces", []):
                options = ace.get("protocol_options") or {}
                proto = ace.get("protocol")
                if "protocol_number" in options:
                    proto = int(options["protocol_number"])
                elif proto in ("ip", "ipv6"):
                    proto = None
                dst = ace.get("destination", {})
                ports = None
                port_spec = dst.get("port_protocol")
                if port_spec:
                    if "eq" in port_spec:
                        ports = (_port(port_spec["eq"]),) * 2
                    elif "range" in port_spec:
                        ports = (_port(port_spec["range"]["start"]), _port(port_spec["range"]["end"]))
                    else:
                        raise ValueError(f"unexpected port match {port_spec}")
                entries.append(_entry(
                    ace["grant"], "", proto=proto, src=_parsed_address(ace.get("source", {}), family),
                    dst=_parsed_address(dst, family), ports=ports,
                    established=bool(options.get("tcp", {}).get("established")), log=bool(ace.get("log")),
                ) | {"sequence": ace.get("sequence")})
            out[(family, acl["name"])] = entries
    return out


def decide(entries: list, flow: Mapping) -> str:
    """First match over ACL entries for a new connection (TCP SYN: ``established`` does not
    match). An empty or exhausted list denies (the implicit deny)."""
    src, dst = ipaddress.ip_address(flow["src"]), ipaddress.ip_address(flow["dst"])
    proto = flow.get("proto", "tcp")
    number = proto if isinstance(proto, int) else PROTOCOLS.get(proto, 1 if proto in ("icmp", "icmpv6") else None)
    for entry in entries:
        want = entry["proto"]
        if want is not None:
            want_number = want if isinstance(want, int) else PROTOCOLS.get(want)
            if want == "icmp" and proto in ("icmp", "icmpv6"):
                want_number = number
            if want_number != number:
                continue
        if entry["src"] is not None and src not in entry["src"]:
            continue
        if entry["dst"] is not None and dst not in entry["dst"]:
            continue
        if entry["ports"] is not None and not entry["ports"][0] <= (flow.get("dport") or -1) <= entry["ports"][1]:
            continue
        if entry["established"]:
            continue
        return entry["action"]
    return "deny"


def ios_device_form(lines: list) -> list:
    """cisco.ios rendered output as the device lists it: its IPv6 entries end in
    ``sequence N`` (``permit tcp any any eq smtp sequence 10 log``), a form its own parsed
    state reads as an ACL with no entries at all; the device shows ``sequence N`` first."""
    out, in_v6 = [], False
    for line in lines:
        if line.startswith("ipv6 access-list ") or line.startswith("ip access-list "):
            in_v6 = line.startswith("ipv6 ")
            out.append(line)
            continue
        words = line.split()
        if in_v6 and "sequence" in words and words.index("sequence") + 1 < len(words):
            at = words.index("sequence")
            number = words[at + 1]
            rest = words[:at] + words[at + 2:]
            out.append(" sequence " + number + " " + " ".join(rest))
        else:
            out.append(" " + line if in_v6 or not line.startswith("ip") else line)
    return out
