# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Device ACLs read back and held against the oracle (private to the collection).

``read_ios``, ``read_eos`` and ``read_junos`` turn what each vendor's ``*_acls`` module
returns in ``state: parsed`` back into the platform-neutral entries of ``render_acl``;
``read_ios_text`` reads IOS ACLs as the device lists them, strictly, for a rendering too
large for the vendor's parser, which then reads an ``ios_sample`` of it held to the same
reading (``held_to_text``). ``decide`` evaluates entries first-match (``FirstMatch``, the
same indexed for many flows); ``sample_flows`` draws new flows from the policy itself and
``disagreements`` lists the flows on which the ACLs read and the oracle (``evaluate``'s
``Evaluator``) decide differently.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import Evaluator
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.base import (
    EOS_PROTOCOL_NAMES, FAMILIES, GROUP_KINDS, NAMES, AddressGroup, group, new_entry,
)
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import PrefixIndex

# --------------------------------------------------------------------------- Cisco IOS

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


def _parsed_address(spec: Mapping, family: str, groups: Mapping | None = None):
    if spec.get("any"):
        return None
    if spec.get("object_group"):
        name = spec["object_group"]
        if groups is None:
            return GroupRef(name)
        if name not in groups or groups[name].version != (4 if family == "ipv4" else 6):
            raise ValueError(f"an {family} entry names object group {name!r}, which the change does not define for {family}")
        return groups[name]
    if spec.get("host"):
        return ipaddress.ip_network(spec["host"])
    if "wildcard_bits" in spec:
        return ipaddress.ip_network(f"{spec['address']}/{spec['wildcard_bits']}")
    return ipaddress.ip_network(spec["address"])


class GroupRef:
    """An object group known by name only (an ACL gathered from a device, whose groups were
    not read): equal to a reference of the same name; it cannot decide a packet."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other) -> bool:
        return isinstance(other, GroupRef) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __contains__(self, address) -> bool:
        raise ValueError(f"object group {self.name!r} was not read: its members are unknown")

    def __repr__(self) -> str:
        return f"GroupRef({self.name!r})"


GROUP_HEADER = re.compile(rf"object-group ({'|'.join(GROUP_KINDS.values())}) (\S+)")
GROUP_MEMBER = {
    GROUP_KINDS["ipv4"]: re.compile(r" (?:host (?P<host>[0-9.]+)|(?P<address>[0-9.]+) (?P<mask>[0-9.]+))"),
    GROUP_KINDS["ipv6"]: re.compile(r" (?:host (?P<host>[0-9A-Fa-f:.]+)|(?P<prefix>[0-9A-Fa-f:.]+/[0-9]{1,3}))"),
}


def read_ios_object_groups(lines) -> dict:
    """IOS object groups as the device lists them (``object-group network NAME``, then one
    member a line: ``host A.B.C.D`` or ``A.B.C.D MASK``; ``object-group v6-network NAME``,
    then ``host X:X::X`` or ``X:X::/N``), as ``{name: AddressGroup}``. Any other line is an
    error: a member this reader skipped would be an address the check never saw."""
    groups: dict = {}
    kind = name = None
    for number, line in enumerate(lines.splitlines() if isinstance(lines, str) else lines, 1):
        if not line.strip():
            continue
        header = GROUP_HEADER.fullmatch(line.rstrip())
        if header:
            kind, name = header.groups()
            if name in groups:
                raise ValueError(f"object group {name!r} is defined twice (line {number})")
            groups[name] = []
            continue
        member = GROUP_MEMBER[kind].fullmatch(line.rstrip()) if kind else None
        if member is None:
            raise ValueError(f"line {number} of the object groups is not a member this check reads: {line!r}")
        found = member.groupdict()
        try:
            if found.get("host"):
                net = ipaddress.ip_network(found["host"])
            elif found.get("prefix"):
                net = ipaddress.ip_network(found["prefix"])
            else:
                net = ipaddress.ip_network(f"{found['address']}/{found['mask']}")
                if str(net.netmask) != found["mask"]:
                    raise ValueError(f"{found['mask']} is not a network mask")
        except ValueError as error:
            raise ValueError(f"line {number} of the object groups: {error}") from None
        if net.version != (4 if kind == GROUP_KINDS["ipv4"] else 6):
            raise ValueError(f"line {number} of the object groups puts {net} in an object-group {kind}")
        groups[name].append(net)
    empty = sorted(n for n, nets in groups.items() if not nets)
    if empty:
        raise ValueError(f"object groups with no member (IOS deletes them): {empty}")
    return {n: AddressGroup(nets) for n, nets in groups.items()}


def read_ios(parsed: list, groups: Mapping | None = None) -> dict:
    """What ``cisco.ios.ios_acls`` state parsed returned, as platform-neutral entries. An
    entry naming an object group matches its members in ``groups`` (``read_ios_object_groups``);
    without ``groups`` it holds a ``GroupRef``, which compares by name and decides nothing."""
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
                entries.append(new_entry(
                    ace["grant"], "", proto=proto, src=_parsed_address(ace.get("source", {}), family, groups),
                    dst=_parsed_address(dst, family, groups), ports=ports,
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


# The lines of an IOS ACL as the device lists them (``acl_device_form``): a header, then
# numbered entries (IPv6: ``sequence N`` first). ``read_ios_text`` reads every line of a large
# rendering; the vendor's parser, which takes seconds per hundred lines, reads ``ios_sample``.
IOS_HEADER = re.compile(r"(?:ip access-list extended|(ipv6) access-list) (\S+)")
IOS_ENTRY = {"ipv4": re.compile(r" (\d+) (.*)"), "ipv6": re.compile(r" sequence (\d+) (.*)")}
IOS_PROTOCOLS = {"ipv4": {"ip": None, "tcp": "tcp", "udp": "udp", "icmp": "icmp"}, "ipv6": {"ipv6": None, "tcp": "tcp", "udp": "udp", "icmp": "icmp"}}
IOS_REMARK = re.compile(r" (?:sequence )?\d+ remark\b.*")
IOS_SHAPE = re.compile(r"\b(?:\d+\.\d+\.\d+\.\d+|[0-9a-fA-F]*:[0-9a-fA-F:.]*(?:/\d+)?|\d+|[A-Z0-9-]+-[0-9A-F]{10})\b|(?<=eq )\S+|(?<=remark ).*")


def _ios_text_address(words: list, family: str, groups: Mapping | None):
    """One address match taken off the front of ``words`` (any, host A, object-group N,
    A WILDCARD on IPv4, X::/N on IPv6), read as ``read_ios`` reads the vendor's parse of it."""
    word = words.pop(0)
    if word in ("any", "host", "object-group"):
        spec = {"any": True} if word == "any" else {word.replace("-", "_"): words.pop(0)}
    else:
        spec = {"address": word, "wildcard_bits": words.pop(0)} if family == "ipv4" else {"address": word}
    found = _parsed_address(spec, family, groups)
    if isinstance(found, (ipaddress.IPv4Network, ipaddress.IPv6Network)) and found.version != (4 if family == "ipv4" else 6):
        raise ValueError(f"{found} in an {family} ACL")
    return found


def _ios_text_entry(body: str, family: str, groups: Mapping | None) -> dict | None:
    words = body.split()
    if words[0] == "remark":
        return None
    action, proto = words.pop(0), words.pop(0) if len(words) > 1 else ""
    if action not in ("permit", "deny") or not (proto.isdigit() or proto in IOS_PROTOCOLS[family]):
        raise ValueError("not an entry this check reads")
    src = _ios_text_address(words, family, groups)
    dst = _ios_text_address(words, family, groups)
    ports = None
    if words and words[0] == "eq":
        ports = (_port(words[1]),) * 2
        del words[:2]
    elif words and words[0] == "range":
        ports = (_port(words[1]), _port(words[2]))
        del words[:3]
    established = bool(words) and words[0] == "established"
    del words[:int(established)]
    log = words == ["log"]
    if words and not log:
        raise ValueError(f"{' '.join(words)!r} is not read by this check")
    return new_entry(action, "", proto=int(proto) if proto.isdigit() else IOS_PROTOCOLS[family][proto], src=src, dst=dst, ports=ports,
                     established=established, log=log)


def read_ios_text(text: str, groups: Mapping | None = None) -> dict:
    """IOS ACLs as the device lists them, as ``read_ios`` reads the vendor's parse of them.
    Strict: a line it does not read whole (a source port, an option, another header) is an
    error naming the line."""
    out: dict = {}
    key = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        header = IOS_HEADER.fullmatch(line.rstrip())
        if header:
            key = ("ipv6" if header.group(1) else "ipv4", header.group(2))
            if key in out:
                raise ValueError(f"line {number}: ACL {key[1]} listed twice")
            out[key] = []
            continue
        found = IOS_ENTRY[key[0]].fullmatch(line.rstrip()) if key else None
        try:
            if found is None:
                raise ValueError("not a line of an ACL this check reads")
            entry = _ios_text_entry(found.group(2), key[0], groups)
        except (ValueError, IndexError, KeyError) as error:
            raise ValueError(f"line {number} of the ACLs ({line.strip()!r}): {error}") from None
        if entry is not None:
            out[key].append(entry | {"sequence": int(found.group(1))})
    return out


def ios_sample(text: str, lines: int) -> str:
    """The ACLs of ``text`` cut to about ``lines`` entries for the vendor's parser: every
    header, the first entry of each shape (addresses, numbers, names and remarks aside),
    then entries spread evenly over all the ACLs' entries; each with the remark before it. All of
    ``text`` when it has no more entries than ``lines``."""
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 1:
        raise ValueError(f"lines {lines!r} is not a positive number")
    units: list = []
    pending: list = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if IOS_HEADER.fullmatch(line.rstrip()):
            units.append((line, None))
        elif IOS_REMARK.fullmatch(line.rstrip()):
            pending.append(line)
        else:
            units.append(("\n".join(pending + [line]), IOS_SHAPE.sub("_", line)))
            pending = []
    entries = [index for index, (dummy, shape) in enumerate(units) if shape is not None]
    if len(entries) <= lines:
        return text
    keep = {index for index, (dummy, shape) in enumerate(units) if shape is None}
    seen: set = set()
    for index in entries:
        if units[index][1] not in seen:
            seen.add(units[index][1])
            keep.add(index)
    spare = max(lines - len(seen), 0)
    keep.update(entries[round(k * (len(entries) - 1) / max(spare - 1, 1))] for k in range(spare))
    return "\n".join(units[index][0] for index in sorted(keep))


def held_to_text(parsed: Mapping, sample: Mapping, text: Mapping) -> None:
    """The vendor's parse of a sample (``read_ios``) against ``read_ios_text`` of the sample
    (``sample``: the same ACLs, the same entries) and of the whole (``text``: every sampled
    entry read alike, with its sequence number). An error otherwise."""
    for key in sorted(set(parsed) | set(sample)):
        got, want = [e["sequence"] for e in parsed.get(key, [])], [e["sequence"] for e in sample.get(key, [])]
        if got != want:
            raise ValueError(f"ACL {key[1]}: cisco.ios read the entries {got[:10]}..., the sample holds {want[:10]}...")
    for key, entries in parsed.items():
        ours = {entry["sequence"]: entry for entry in text.get(key, [])}
        for entry in entries:
            if ours.get(entry["sequence"]) != entry:
                raise ValueError(f"{key[1]} sequence {entry['sequence']}: cisco.ios reads {entry}, the check's reader {ours.get(entry['sequence'])}")


class FirstMatch:
    """``decide`` over one ACL for many flows, at a cost that grows with the entries that
    could match a flow's source rather than with all of them. The entries are indexed by
    their source prefixes (each member of a group); a flow is tried, in order, against the
    entries its source lies in and those with any other source (any, a group nobody read),
    so the first match is ``decide``'s."""

    def __init__(self, entries: list) -> None:
        self.entries = list(entries)
        self._open: set[int] = set()
        self._sources = PrefixIndex()
        for index, entry in enumerate(self.entries):
            src = entry["src"]
            if isinstance(src, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                self._sources.add(src, index)
            elif isinstance(src, AddressGroup):
                for net in src:
                    self._sources.add(net, index)
            else:
                self._open.add(index)

    def decide(self, flow: Mapping) -> str:
        found = self._open.union(index for index, dummy in self._sources.lookup(ipaddress.ip_address(flow["src"])))
        return decide([self.entries[index] for index in sorted(found)], flow)


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
                entries.append(new_entry(
                    ace["grant"], "", proto=proto, src=_eos_parsed_address(ace.get("source")), dst=_eos_parsed_address(dst),
                    ports=_eos_ports(dst.get("port_protocol")), established=bool(flags.get("established")), log=bool(ace.get("log")),
                ) | {"sequence": int(ace["sequence"])})
            out[(afi["afi"], acl["name"])] = entries
    return out


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
    with several source (destination) addresses matches a packet from (to) any of them, so
    its addresses become one ``AddressGroup``. A prefix-list match, which warden never
    renders and this reader cannot see into, is an error rather than read as any address."""
    out: dict = {}
    for afi in parsed:
        for acl in afi["acls"]:
            entries = []
            for ace in acl.get("aces", []):
                proto = ace.get("protocol")
                if proto is not None:
                    proto = int(proto) if str(proto).isdigit() else ("icmp" if proto in ("icmp", "icmp6", "icmpv6") else proto)
                for side in ("source", "destination"):
                    if (ace.get(side) or {}).get("prefix_list"):
                        raise ValueError(f"term {ace.get('name')!r} matches a {side} prefix-list, which this check cannot read")
                entries.append(new_entry(ace.get("grant", "permit"), ace.get("name", ""), proto=proto,
                                         src=group(_junos_addresses(ace.get("source"))), dst=group(_junos_addresses(ace.get("destination"))),
                                         ports=_junos_ports(ace.get("destination")), log=False))
            out[(afi["afi"], acl["name"])] = entries
    return out


def read_parsed(parsed, platform: str, object_groups=None) -> dict:
    """``parsed`` read by the platform's reader; on IOS, ``object_groups`` (the groups' lines
    as the device lists them) give the members of the groups the entries name."""
    if platform == "ios":
        return read_ios(parsed, None if object_groups is None else read_ios_object_groups(object_groups))
    return {"eos": read_eos, "junos": read_junos}[platform](parsed)


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
    oracle = Evaluator(ir)
    first_match = {family: FirstMatch(acls.get((family, (names or NAMES)[family]), [])) for family in FAMILIES}
    out = []
    for flow in flows:
        if _inside(flow["dst"], inside_nets):
            continue
        family = "ipv4" if ipaddress.ip_address(flow["src"]).version == 4 else "ipv6"
        packet = {key: value for key, value in flow.items() if value is not None}
        expected = oracle.evaluate({**packet, "iif": inside, "oif": outside})["verdict"]
        got = first_match[family].decide(flow)
        if (expected == "accept") != (got == "permit"):
            out.append({"flow": flow, "oracle": expected, "acl": got})
    return out
