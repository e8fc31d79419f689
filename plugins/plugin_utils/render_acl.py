# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Edge Policy IR -> stateless egress ACLs (private to the collection).

The ACL is bound ``out`` on the outside interface, so it sees every packet leaving the site
there and nothing else. It is stateless:

* replies are let out by ``established`` (TCP with ACK or RST), from trusted sources only;
* "source not trusted" cannot be one entry, so every permit's sources are intersected with
  the inside interface's trusted prefixes, and what no permit allows meets the final deny;
* the per-source connection limit has no ACL equivalent and is left out;
* permits to destinations inside (the inside interface's prefixes) are left out: such a
  packet never leaves by the outside interface, so they would only be noise to a reviewer.

``aces(ir)`` returns the platform-neutral entries per family; ``ios_config``, ``eos_config``
and ``junos_config`` turn them into the ``config`` of each vendor's ``*_acls`` resource
module, ``bindings`` into the ``config`` of its ``*_acl_interfaces`` module. ``read_*`` turn
what each module's ``state: parsed`` returns back into entries, and ``decide`` evaluates
entries first-match, so the vendor modules' round trip can be held against the oracle.

The forms the device lists and loads live in ``render_acl_forms``; generation names and the
plan of a confirmed apply in ``render_acl_apply``.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import random
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.compiler import DEVICE_PLATFORMS
from ansible_collections.warden.egress.plugins.plugin_utils.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.render_common import specialise

FAMILIES = ("ipv4", "ipv6")
NAMES = {"ipv4": "WARDEN-EGRESS-V4", "ipv6": "WARDEN-EGRESS-V6"}
STEP = 10


def _nets(prefixes: list) -> list:
    return [ipaddress.ip_network(p) for p in prefixes]


class _Prefixes:
    """Prefixes of one family, indexed so that "is this prefix inside one of them" costs one
    set look-up per prefix length and "which of them lie inside this prefix" one bisection:
    an edge may trust ten thousand prefixes, and pairwise tests grow with their square."""

    def __init__(self, nets: list) -> None:
        self.keys = {(n.prefixlen, int(n.network_address)) for n in nets}
        self.lengths = sorted({n.prefixlen for n in nets})
        self.nets = sorted(set(nets), key=lambda n: (int(n.network_address), n.prefixlen))
        self.starts = [int(n.network_address) for n in self.nets]

    def covers(self, net) -> bool:
        """Whether ``net`` is one of the prefixes or inside one."""
        address, bits = int(net.network_address), net.max_prefixlen
        for length in self.lengths:
            if length > net.prefixlen:
                break
            if (length, address >> (bits - length) << (bits - length)) in self.keys:
                return True
        return False

    def within(self, net) -> list:
        """The prefixes inside ``net`` (``net`` itself included)."""
        first, last = int(net.network_address), int(net.broadcast_address)
        index = bisect.bisect_left(self.starts, first)
        out = []
        while index < len(self.starts) and self.starts[index] <= last:
            if self.nets[index].prefixlen >= net.prefixlen:
                out.append(self.nets[index])
            index += 1
        return out


def _intersect(sources: list, trusted: _Prefixes) -> list:
    """Prefixes in both lists (each result is the smaller of two overlapping prefixes)."""
    out = set()
    for src in sources:
        if trusted.covers(src):
            out.add(src)
        out.update(trusted.within(src))
    return sorted(out, key=lambda n: (n.version, n.network_address, n.prefixlen))


def _entry(action: str, remark: str, **match) -> dict:
    entry = {"action": action, "proto": None, "src": None, "dst": None, "ports": None, "established": False, "log": action == "deny", "remark": remark}
    entry.update(match)
    return entry


def aces(ir: Mapping) -> dict:
    """The entries of the IPv4 and IPv6 ACLs, in order; first match decides."""
    if ir.get("kind") != "edge":
        raise ValueError("device ACLs are rendered from an edge policy (egress_edge)")
    for rule in ir["rules"]:
        if rule.get("users") is not None or rule.get("groups") is not None or rule.get("ct_direction") is not None:
            raise ValueError(f"rule {rule['comment']!r}: a device ACL sees each packet alone, with no local user and no connection state: "
                             "it cannot match users, groups or what a host serves")
    edge = ir["edge"]
    if len(edge["inside"]) != 1 or len(edge["outside"]) != 1:
        raise ValueError("egress_edge: device ACLs are rendered for one inside and one outside interface")
    inside, outside = edge["inside"][0]["interface"], edge["outside"][0]
    trusted_set = next(r["saddr_not_in"] for r in ir["rules"] if r.get("iif") == [inside] and r["saddr_not_in"])
    out: dict = {family: [] for family in FAMILIES}
    trusted = {family: _nets(ir["sets"][trusted_set][family]) for family in FAMILIES}
    index = {family: _Prefixes(trusted[family]) for family in FAMILIES}
    for family in FAMILIES:
        for net in trusted[family]:
            out[family].append(_entry("permit", "baseline: replies (TCP with ACK or RST) from trusted sources",
                                      proto="tcp", src=net, established=True, log=False))
    for rule in ir["rules"]:
        rule = specialise(rule, inside, outside)
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
            sources = _intersect(_nets(ir["sets"][rule["saddr_in"]][family]), index[family]) if rule.get("saddr_in") else [None]
            if rule["action"] == "accept" and sources == [None]:
                sources = trusted[family]
            dests = _nets(ir["sets"][rule["daddr_in"]][family]) if rule["daddr_in"] else [None]
            ports = [tuple(r) for r in rule["dports"]] if rule["dports"] else [None]
            action = "permit" if rule["action"] == "accept" else "deny"
            if action == "permit":
                # an inside destination: such a packet never leaves by the outside interface
                dests = [dst for dst in dests if dst is None or not index[family].covers(dst)]
            for src in sources:
                for dst in dests:
                    for port in ports:
                        out[family].append(_entry(action, rule["comment"], proto=proto, src=src, dst=dst, ports=port))
    for family in FAMILIES:
        out[family].append(_entry("deny", "default deny"))
    if ir["mode"] == "audit":
        # Audit mode: what the policy denies is let out and logged.
        for entries in out.values():
            for entry in entries:
                if entry["action"] == "deny":
                    entry.update(action="permit", log=True, remark=("audit: " + entry["remark"]))
    return out


def _remark_groups(entries: list):
    """(remark or None, entry) pairs: a remark where an entry's origin differs from the one
    before it, so each block of entries of one origin is headed by one remark."""
    previous = None
    for entry in entries:
        yield (entry["remark"] if entry["remark"] != previous else None), entry
        previous = entry["remark"]


def _ios_address(net, family: str) -> dict:
    if net is None:
        return {"any": True}
    if net.num_addresses == 1:
        return {"host": str(net.network_address)}
    if family == "ipv4":
        return {"address": str(net.network_address), "wildcard_bits": str(net.hostmask)}
    return {"address": str(net)}


def _once_each(write):
    """``write`` (a prefix -> address dict) run once per prefix: a prefix recurs in many
    entries. Each call returns a copy the caller may extend."""
    written: dict = {}

    def address(net) -> dict:
        if net not in written:
            written[net] = write(net)
        return dict(written[net])
    return address


def ios_config(ir: Mapping, names: Mapping | None = None) -> list:
    """``config`` for cisco.ios.ios_acls (state rendered, replaced): one extended IPv4 ACL
    and one IPv6 ACL, sequence numbers spaced by 10, each block of entries of one origin
    headed by a remark naming it (the module has no IPv6 remarks)."""
    config = []
    for family, entries in aces(ir).items():
        out = []
        address = _once_each(lambda net, family=family: _ios_address(net, family))
        for index, (remark, entry) in enumerate(_remark_groups(entries), 1):
            ace = {"sequence": index * STEP, "grant": entry["action"]}
            if isinstance(entry["proto"], int):
                ace["protocol_options"] = {"protocol_number": entry["proto"]}
            else:
                ace["protocol"] = entry["proto"] or ("ip" if family == "ipv4" else "ipv6")
            ace["source"] = address(entry["src"])
            ace["destination"] = address(entry["dst"])
            if entry["ports"] is not None:
                low, high = entry["ports"]
                ace["destination"]["port_protocol"] = {"eq": str(low)} if low == high else {"range": {"start": low, "end": high}}
            if entry["established"]:
                ace["protocol_options"] = {"tcp": {"established": True}}
            if entry["log"]:
                ace["log"] = {"set": True}
            if family == "ipv4" and remark is not None:
                ace["remarks"] = [remark[:100]]
            out.append(ace)
        acl = {"name": (names or NAMES)[family], "aces": out}
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


# --------------------------------------------------------------------------- Arista EOS

# Protocol numbers arista.eos.eos_acls renders as names. It renders 4 (IP-in-IP) as "ip",
# which on the device matches every protocol, so 4 is refused rather than rendered.
EOS_PROTOCOL_NAMES = {"ahp": 51, "gre": 47, "icmp": 1, "igmp": 2, "ospf": 89, "pim": 103, "tcp": 6, "udp": 17, "vrrp": 112, "icmpv6": 58}


def _eos_address(net) -> dict:
    if net is None:
        return {"any": True}
    if net.num_addresses == 1:
        return {"host": str(net.network_address)}
    return {"subnet_address": str(net)}


def eos_config(ir: Mapping, names: Mapping | None = None) -> list:
    """``config`` for arista.eos.eos_acls: entries at 10, 20, ...; each block of entries of one
    origin headed by a remark 5 before its first entry."""
    config = []
    for family, entries in aces(ir).items():
        out = []
        address = _once_each(_eos_address)
        for index, (remark, entry) in enumerate(_remark_groups(entries), 1):
            sequence = index * STEP
            if remark is not None:
                out.append({"sequence": sequence - STEP // 2, "remark": remark[:100]})
            ace = {"sequence": sequence, "grant": entry["action"]}
            proto = entry["proto"]
            if isinstance(proto, int):
                if proto == 4:
                    raise ValueError("IP protocol 4 cannot be rendered for arista.eos.eos_acls (it renders it as 'ip', every protocol)")
                ace["protocol"] = str(proto)
            elif proto == "icmp" and family == "ipv6":
                ace["protocol"] = "icmpv6"
            else:
                ace["protocol"] = proto or ("ip" if family == "ipv4" else "ipv6")
            ace["source"] = address(entry["src"])
            ace["destination"] = address(entry["dst"])
            if entry["ports"] is not None:
                low, high = entry["ports"]
                ace["destination"]["port_protocol"] = {"eq": str(low)} if low == high else {"range": f"{low} {high}"}
            if entry["established"]:
                ace["protocol_options"] = {"tcp": {"flags": {"established": True}}}
            if entry["log"]:
                ace["log"] = True  # the module writes 'log' whenever the key is present, even false
            out.append(ace)
        config.append({"afi": family, "acls": [{"name": (names or NAMES)[family], "aces": out}]})
    return config


def _eos_parsed_address(spec: Mapping):
    if not spec or spec.get("any"):
        return None
    if spec.get("host"):
        return ipaddress.ip_network(spec["host"])
    if spec.get("subnet_address"):
        return ipaddress.ip_network(spec["subnet_address"])
    return ipaddress.ip_network(f"{spec['address']}/{spec['wildcard_bits']}")


def _eos_ports(spec: Mapping):
    if not spec:
        return None
    if "eq" in spec:
        return (int(spec["eq"]),) * 2
    if "range" in spec:
        low, high = spec["range"].split()
        return int(low), int(high)
    raise ValueError(f"unexpected port match {spec}")


def read_eos(parsed: list) -> dict:
    """What ``arista.eos.eos_acls`` state parsed returned, as entries (remarks dropped)."""
    out: dict = {}
    for afi in parsed:
        for acl in afi["acls"]:
            entries = []
            for ace in acl.get("aces", []):
                if "grant" not in ace:
                    continue  # a remark
                proto = str(ace.get("protocol"))
                if proto in ("ip", "ipv6"):
                    proto = None
                elif proto.isdigit():
                    proto = int(proto)
                elif proto in ("icmp", "icmpv6"):
                    proto = "icmp"
                elif proto not in ("tcp", "udp"):
                    proto = EOS_PROTOCOL_NAMES[proto]
                flags = (ace.get("protocol_options") or {}).get("tcp", {}).get("flags", {})
                dst = ace.get("destination") or {}
                entries.append(_entry(
                    ace["grant"], "", proto=proto, src=_eos_parsed_address(ace.get("source")), dst=_eos_parsed_address(dst),
                    ports=_eos_ports(dst.get("port_protocol")), established=bool(flags.get("established")), log=bool(ace.get("log")),
                ) | {"sequence": int(ace["sequence"])})
            out[(afi["afi"], acl["name"])] = entries
    return out


# --------------------------------------------------------------------------- Juniper Junos

def _term_name(index: int, remark: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", remark).strip("-").lower()
    return f"t{index * STEP:04d}-{slug}"[:60].rstrip("-")


def junos_config(ir: Mapping, names: Mapping | None = None) -> list:
    """``config`` for junipernetworks.junos.junos_acls: one term per entry, named by its
    position (spaced by 10, for ``insert term ... before``) and its origin.

    What the module cannot express is left out, not approximated: it has no TCP flag match,
    so the replies entry (established) is not rendered; it has no log action. Port ranges
    are given as ``eq: "LOW-HIGH"``: its ``range`` form renders an empty port match."""
    config = []
    for family, entries in aces(ir).items():
        out = []
        for index, entry in enumerate(entries, 1):
            if entry["established"]:
                continue
            ace = {"name": _term_name(index, entry["remark"]), "grant": entry["action"]}
            proto = entry["proto"]
            if proto is not None:
                ace["protocol"] = str(proto) if isinstance(proto, int) else ("icmp6" if proto == "icmp" and family == "ipv6" else proto)
            if entry["src"] is not None:
                ace["source"] = {"address": str(entry["src"])}
            if entry["dst"] is not None or entry["ports"] is not None:
                ace["destination"] = {}
                if entry["dst"] is not None:
                    ace["destination"]["address"] = str(entry["dst"])
                if entry["ports"] is not None:
                    low, high = entry["ports"]
                    ace["destination"]["port_protocol"] = {"eq": str(low) if low == high else f"{low}-{high}"}
            out.append(ace)
        config.append({"afi": family, "acls": [{"name": (names or NAMES)[family], "aces": out}]})
    return config


def _junos_addresses(spec: Mapping) -> list:
    value = (spec or {}).get("address")
    if not value:
        return [None]
    return [ipaddress.ip_network(v) for v in (value if isinstance(value, list) else [value])]


def _junos_ports(spec: Mapping):
    value = ((spec or {}).get("port_protocol") or {}).get("eq")
    if value is None:
        return None
    low, high = (str(value).split("-") + [str(value)])[:2]
    return int(low), int(high)


def read_junos(parsed: list) -> dict:
    """What ``junipernetworks.junos.junos_acls`` state parsed returned, as entries; a term
    with several addresses becomes one entry per address (same action, same first match)."""
    out: dict = {}
    for afi in parsed:
        for acl in afi["acls"]:
            entries = []
            for ace in acl.get("aces", []):
                proto = ace.get("protocol")
                if proto is not None:
                    proto = int(proto) if str(proto).isdigit() else ("icmp" if proto in ("icmp", "icmp6", "icmpv6") else proto)
                for src in _junos_addresses(ace.get("source")):
                    for dst in _junos_addresses(ace.get("destination")):
                        entries.append(_entry(ace.get("grant", "permit"), ace.get("name", ""), proto=proto, src=src, dst=dst,
                                              ports=_junos_ports(ace.get("destination")), log=False))
            out[(afi["afi"], acl["name"])] = entries
    return out


# --------------------------------------------------------------------------- all three

def device_config(ir: Mapping, platform: str, names: Mapping | None = None) -> list:
    """The ``*_acls`` config of ``ir`` for ``platform`` (ios, eos, junos), the ACLs named
    ``names`` per family (``NAMES`` by default)."""
    renderers = {"ios": ios_config, "eos": eos_config, "junos": junos_config}
    if platform not in renderers:
        raise ValueError(f"egress_platform: '{platform}' has no device ACL renderer (one of: {', '.join(DEVICE_PLATFORMS)})")
    return renderers[platform](ir, names)


def bindings(ir: Mapping, names: Mapping | None = None) -> list:
    """``config`` for the ``*_acl_interfaces`` modules (the same shape on all three): both
    ACLs bound ``out`` on the outside interface."""
    outside = ir["edge"]["outside"]
    if len(outside) != 1:
        raise ValueError("egress_edge: device ACLs are rendered for one inside and one outside interface")
    return [{"name": outside[0], "access_groups": [{"afi": family, "acls": [{"name": (names or NAMES)[family], "direction": "out"}]} for family in FAMILIES]}]


def read_parsed(parsed, platform: str) -> dict:
    return {"ios": read_ios, "eos": read_eos, "junos": read_junos}[platform](parsed)


def _representatives(prefix: str) -> list:
    net = ipaddress.ip_network(prefix)
    points = {net.network_address, net.broadcast_address, net.network_address + net.num_addresses // 2}
    return sorted(str(a) for a in points)


def _inside_nets(ir: Mapping) -> list:
    return [ipaddress.ip_network(p) for e in ir["edge"]["inside"] for p in e["prefixes"]]


def _inside(address: str, nets: list) -> bool:
    """Whether ``address`` lies in one of the inside prefixes ``nets`` (``_inside_nets``)."""
    address = ipaddress.ip_address(address)
    return any(address in net for net in nets if net.version == address.version)


OUTSIDE_PROBES = {"ipv4": ["203.0.113.1", "198.51.100.255", "10.1.2.3", "224.0.0.5"], "ipv6": ["2001:db8:ffff::1", "fd00::1", "ff02::5"]}


def sample_flows(ir: Mapping, count: int = 1500, seed: int = 5) -> list:
    """New flows leaving by the outside interface (so none to an inside destination), built
    from the policy itself. Half are
    aimed at the rules: each rule's sources, destinations and ports (and the ports either
    side), so every permit and deny is met; half are drawn from every pairing of the sets'
    first, middle and last addresses, addresses outside every set, the rules' ports and
    TCP, UDP, ICMP and each raw protocol."""
    rng = random.Random(seed)
    inside = _inside_nets(ir)
    trusted = {family: [a for e in ir["edge"]["inside"] for p in e["prefixes"] if (":" in p) == (family == "ipv6") for a in _representatives(p)]
               for family in FAMILIES}
    pools: dict = {family: set(OUTSIDE_PROBES[family]) | set(trusted[family]) for family in FAMILIES}
    for members in ir["sets"].values():
        for family in FAMILIES:
            for prefix in members.get(family, []):
                pools[family].update(_representatives(prefix))
    ports, protos = {22, 443, 31337}, {"tcp", "udp", "icmp"}
    aimed: dict = {"accept": [], "deny": []}
    for rule in ir["rules"]:
        rule_ports = {p for low, high in rule.get("dports") or [] for p in (low - 1, low, high, high + 1) if 1 <= p <= 65535}
        ports.update(rule_ports)
        if rule.get("l4proto") is not None:
            protos.add(int(rule["l4proto"]))
        proto = int(rule["l4proto"]) if rule.get("l4proto") is not None else (rule.get("proto") or "tcp")
        proto = "icmp" if proto == "icmpv6" else proto
        for family in FAMILIES:
            if rule.get("family", "any") not in ("any", family):
                continue
            sources = [a for p in ir["sets"][rule["saddr_in"]][family] for a in _representatives(p)] if rule.get("saddr_in") else trusted[family]
            dests = [a for p in ir["sets"][rule["daddr_in"]][family] for a in _representatives(p)] if rule.get("daddr_in") else OUTSIDE_PROBES[family]
            for src, dst in itertools.product(sources[:6], [d for d in dests if not _inside(d, inside)][:6]):
                for port in sorted(rule_ports or {443}) if proto in ("tcp", "udp") else [None]:
                    aimed["accept" if rule["action"] == "accept" else "deny"].append({"src": src, "dst": dst, "proto": proto, "dport": port})
    every = _pairings(pools, inside, sorted(protos, key=str), sorted(ports), count, rng)
    half = count // 2
    permits = aimed["accept"] if len(aimed["accept"]) <= half // 2 else rng.sample(aimed["accept"], half // 2)
    denials = aimed["deny"] if len(aimed["deny"]) <= half - len(permits) else rng.sample(aimed["deny"], half - len(permits))
    aimed = permits + denials
    return aimed + (every if len(every) <= count - len(aimed) else rng.sample(every, count - len(aimed)))


def _pairings(pools: Mapping, inside: list, protos: list, ports: list, count: int, rng: random.Random) -> list:
    """Flows pairing the pools' addresses (a destination never inside) with each protocol
    and, for TCP and UDP, each port: all of them when they are few, else ``count`` of them
    drawn at random (the pairings of a large policy number millions)."""
    shapes = [(proto, port) for proto in protos for port in (ports if proto in ("tcp", "udp") else [None])]
    pairs = {family: (sorted(pool), [d for d in sorted(pool) if not _inside(d, inside)]) for family, pool in pools.items()}
    total = sum(len(sources) * len(dests) for sources, dests in pairs.values()) * len(shapes)
    if total <= 4 * count:
        return [{"src": src, "dst": dst, "proto": proto, "dport": port}
                for family in FAMILIES for src in pairs[family][0] for dst in pairs[family][1] if src != dst for proto, port in shapes]
    weights = [len(pairs[family][0]) * len(pairs[family][1]) for family in FAMILIES]
    drawn: dict = {}
    for dummy in range(20 * count):
        if len(drawn) >= count:
            break
        sources, dests = pairs[rng.choices(FAMILIES, weights)[0]]
        src, dst = rng.choice(sources), rng.choice(dests)
        if src != dst:
            proto, port = rng.choice(shapes)
            drawn[(src, dst, proto, port)] = {"src": src, "dst": dst, "proto": proto, "dport": port}
    return list(drawn.values())


def disagreements(ir: Mapping, acls: Mapping, flows: list, names: Mapping | None = None) -> list:
    """Flows on which the parsed ACLs (``read_*`` output) and the oracle disagree. A flow to
    an inside destination is not compared: it never leaves by the outside interface."""
    inside, outside = ir["edge"]["inside"][0]["interface"], ir["edge"]["outside"][0]
    inside_nets = _inside_nets(ir)
    out = []
    for flow in flows:
        if _inside(flow["dst"], inside_nets):
            continue
        family = "ipv4" if ipaddress.ip_address(flow["src"]).version == 4 else "ipv6"
        packet = {key: value for key, value in flow.items() if value is not None}
        expected = evaluate(ir, {**packet, "iif": inside, "oif": outside})["verdict"]
        got = decide(acls.get((family, (names or NAMES)[family]), []), flow)
        if (expected == "accept") != (got == "permit"):
            out.append({"flow": flow, "oracle": expected, "acl": got})
    return out
