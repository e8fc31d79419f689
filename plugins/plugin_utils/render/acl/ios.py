# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cisco IOS: the ACLs rendered for cisco.ios, read back, and in the device's forms (private
to the collection).

* render: ``ios_render`` (``ios_config``) is the ``config`` for ``cisco.ios.ios_acls`` and the
  object groups its entries name;
* read back: ``read_ios`` turns what ``cisco.ios.ios_acls`` returns in ``state: parsed`` into
  the platform-neutral entries of ``common``; ``read_ios_text`` reads the ACLs as the device
  lists them, strictly, for a rendering too large for the vendor's parser, which then reads
  an ``ios_sample`` of it held to the same reading (``held_to_text``);
  ``read_ios_object_groups`` reads the object groups; ``read_ios_running`` reads, with the
  same reader, the collection's ACLs on a router (apply mode) as ``state: gathered`` returns them;
* device forms: ``ios_device_form`` is the module's rendered output as the device lists it
  (what ``state: parsed`` reads); ``ios_load`` the ``src`` ``cisco.ios.ios_config`` sends in one
  change (after ``configure terminal revert timer``), with the object group lines
  (``ios_object_group_lines``, ``ios_delete_group_lines``), the only IOS configuration warden
  writes itself: cisco.ios has no resource module for object groups.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import read_number
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import address_text, network
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import text as network_text
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import (
    CAPABILITIES as ACL_CAPABILITIES, GENERATION, NAMES, STEP, AddressGroup, aces, command_lines, new_entry, no_template, once_each, remark_groups,
)


# What cisco.ios.ios_acls cannot express is what no device ACL can. Its limits: a remark's
# length; the longest revert timer.
CAPABILITIES = ACL_CAPABILITIES
LIMITS = {"remark": 100, "confirm_timer": (120 * 60, "configure terminal revert timer takes 1 to 120 minutes"),
          "entries": 4096}


# --------------------------------------------------------------------------- render

# The object-group kind of each family on IOS.
GROUP_KINDS = {"ipv4": "network", "ipv6": "v6-network"}


def _ios_address(net, family: str) -> dict:
    if net is None:
        return {"any": True}
    if net.num_addresses == 1:
        return {"host": str(net.network_address)}
    if family == "ipv4":
        return {"address": str(net.network_address), "wildcard_bits": str(net.hostmask)}
    return {"address": str(net)}


def group_name(acl: str, match: AddressGroup) -> str:
    """An object group's name: the ACL's, then a digest of its members. A group of other
    members has another name, so a group in use is never edited: a new generation of the ACLs
    comes with its own groups, and an ACL read back from the device names what it holds."""
    digest = hashlib.sha256(" ".join(match.text).encode()).hexdigest()[:10].upper()
    return f"{acl}-{digest}"


def ios_render(ir: Mapping, names: Mapping | None = None, object_groups: bool = True) -> dict:
    """``acls``: the ``config`` for cisco.ios.ios_acls (state rendered, replaced): one
    extended IPv4 ACL and one IPv6 ACL, sequence numbers spaced by 10, each block of entries
    of one origin headed by a remark naming it (the module has no IPv6 remarks).

    With ``object_groups``, each entry keeps its rule's sources and destinations together
    and names an object group (``object-group network``, ``object-group v6-network``) where
    it has more than one prefix; ``object_groups`` lists those groups (``afi``, ``name``,
    ``members``). cisco.ios has no resource module for object groups: their lines are
    written by ``ios_object_group_lines``."""
    config: list = []
    groups: dict = {}
    for family, entries in aces(ir, grouped=object_groups, capabilities=CAPABILITIES).items():
        out = []
        acl_name = (names or NAMES)[family]
        plain = once_each(lambda net, family=family: _ios_address(net, family))

        def address(match, family=family, acl_name=acl_name, plain=plain) -> dict:
            if isinstance(match, AddressGroup):
                name = group_name(acl_name, match)
                if name not in groups:
                    groups[name] = {"afi": family, "name": name, "members": list(match.text)}
                return {"object_group": name}
            return plain(match)

        for index, (remark, entry) in enumerate(remark_groups(entries), 1):
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
                ace["remarks"] = [remark[:LIMITS["remark"]]]
            out.append(ace)
        acl = {"name": acl_name, "aces": out}
        if family == "ipv4":
            acl["acl_type"] = "extended"
        config.append({"afi": family, "acls": [acl]})
    return {"acls": config, "object_groups": list(groups.values())}


def ios_config(ir: Mapping, names: Mapping | None = None, object_groups: bool = True) -> list:
    """The ``acls`` of ``ios_render``."""
    return ios_render(ir, names, object_groups)["acls"]


# --------------------------------------------------------------------------- read back

# The port keywords IOS (and cisco.ios rendered output) writes instead of numbers.
IOS_PORT_NAMES = {
    "bgp": 179, "chargen": 19, "cmd": 514, "daytime": 13, "discard": 9, "domain": 53, "echo": 7, "exec": 512,
    "finger": 79, "ftp": 21, "ftp-data": 20, "gopher": 70, "hostname": 101, "ident": 113, "irc": 194,
    "klogin": 543, "kshell": 544, "login": 513, "lpd": 515, "msrpc": 135, "nntp": 119, "onep-plain": 5001,
    "onep-tls": 5002, "pim-auto-rp": 496, "pop2": 109, "pop3": 110, "smtp": 25, "sunrpc": 111, "tacacs": 49,
    "talk": 517, "telnet": 23, "time": 37, "uucp": 540, "whois": 43, "www": 80,
}


def _port(value) -> int:
    text = str(value)
    number = read_number(text)
    return number if number is not None else IOS_PORT_NAMES[text]


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
        net = ipaddress.ip_network(spec["host"])
    elif "wildcard_bits" in spec:
        net = ipaddress.ip_network(f"{spec['address']}/{spec['wildcard_bits']}")
    else:
        net = ipaddress.ip_network(spec["address"])
    if net.version != (4 if family == "ipv4" else 6):
        raise ValueError(f"{net} in an {family} ACL")
    return net


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


def _ace_entry(ace: Mapping, family: str, groups: Mapping | None) -> dict:
    """One entry as ``cisco.ios.ios_acls`` returns it (parsed, gathered), as a platform-neutral entry."""
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
    return new_entry(
        ace["grant"], "", proto=proto, src=_parsed_address(ace.get("source", {}), family, groups),
        dst=_parsed_address(dst, family, groups), ports=ports,
        established=bool(options.get("tcp", {}).get("established")), log=bool(ace.get("log")),
    ) | {"sequence": ace.get("sequence")}


def read_ios(parsed: list, groups: Mapping | None = None) -> dict:
    """What ``cisco.ios.ios_acls`` state parsed returned, as platform-neutral entries. An
    entry naming an object group matches its members in ``groups`` (``read_ios_object_groups``);
    without ``groups`` it holds a ``GroupRef``, which compares by name and decides nothing."""
    return {(afi["afi"], acl["name"]): [_ace_entry(ace, afi["afi"], groups) for ace in acl.get("aces", [])]
            for afi in parsed for acl in afi["acls"]}


# The lines of an IOS ACL as the device lists them (the device_form step): a header, then
# numbered entries (IPv6: ``sequence N`` first). ``read_ios_text`` reads every line of a large
# rendering; the vendor's parser, which takes seconds per hundred lines, reads ``ios_sample``.
IOS_HEADER = re.compile(r"(?:ip access-list extended|(ipv6) access-list) (\S+)")
IOS_ENTRY = {"ipv4": re.compile(r" (\d+) (.*)"), "ipv6": re.compile(r" sequence (\d+) (.*)")}
IOS_PROTOCOLS = {"ipv4": {"ip": None, "tcp": "tcp", "udp": "udp", "icmp": "icmp"}, "ipv6": {"ipv6": None, "tcp": "tcp", "udp": "udp", "icmp": "icmp"}}
IOS_REMARK = re.compile(r" (?:sequence )?\d+ remark\b.*")
IOS_SHAPE = re.compile(r"\b(?:\d+\.\d+\.\d+\.\d+|[0-9a-fA-F]*:[0-9a-fA-F:.]*(?:/\d+)?|\d+|[A-Z0-9-]+-[0-9A-F]{10})\b|(?<=eq )\S+|(?<=remark ).*")


def _ios_text_address(words: list, family: str) -> dict:
    """One address match taken off the front of ``words`` (any, host A, object-group N,
    A WILDCARD on IPv4, X::/N on IPv6), as ``cisco.ios.ios_acls`` returns it."""
    word = words.pop(0)
    if word in ("any", "host", "object-group"):
        return {"any": True} if word == "any" else {word.replace("-", "_"): words.pop(0)}
    return {"address": word, "wildcard_bits": words.pop(0)} if family == "ipv4" else {"address": word}


def _ios_text_ace(body: str, family: str) -> dict | None:
    """One entry's text after its number, as ``cisco.ios.ios_acls`` returns the entry (None
    for a remark). Strict: a word it does not read is an error."""
    words = body.split()
    if words[0] == "remark":
        return None
    action, proto = words.pop(0), words.pop(0) if len(words) > 1 else ""
    number = read_number(proto)
    if action not in ("permit", "deny") or not (number is not None or proto in IOS_PROTOCOLS[family]):
        raise ValueError("not an entry this check reads")
    ace: dict = {"grant": action, **({"protocol_options": {"protocol_number": number}} if number is not None else {"protocol": proto})}
    ace["source"] = _ios_text_address(words, family)
    ace["destination"] = _ios_text_address(words, family)
    if words and words[0] == "eq":
        ace["destination"]["port_protocol"] = {"eq": words[1]}
        del words[:2]
    elif words and words[0] == "range":
        ace["destination"]["port_protocol"] = {"range": {"start": words[1], "end": words[2]}}
        del words[:3]
    if words and words[0] == "established":
        ace.setdefault("protocol_options", {})["tcp"] = {"established": True}
        del words[:1]
    if words == ["log"]:
        ace["log"] = {"set": True}
    elif words:
        raise ValueError(f"{' '.join(words)!r} is not read by this check")
    return ace


def _read_ios_lines(numbered, groups: Mapping | None, where: str) -> dict:
    """``(number, line)`` pairs of IOS ACLs as the device lists them: ``{(family, name): [(ace, entry)]}``,
    each entry as ``cisco.ios.ios_acls`` returns it and as ``read_ios`` reads that. A line it does
    not read whole is an error naming it (its ``number`` in ``where``)."""
    out: dict = {}
    key = None
    for number, line in numbered:
        if not line.strip():
            continue
        header = IOS_HEADER.fullmatch(line.rstrip())
        if header:
            key = ("ipv6" if header.group(1) else "ipv4", header.group(2))
            if key in out:
                raise ValueError(f"line {number} of {where}: ACL {key[1]} listed twice")
            out[key] = []
            continue
        found = IOS_ENTRY[key[0]].fullmatch(line.rstrip()) if key else None
        try:
            if found is None:
                raise ValueError("not a line of an ACL this check reads")
            ace = _ios_text_ace(found.group(2), key[0])
            if ace is not None:
                ace = {"sequence": int(found.group(1)), **ace}
                out[key].append((ace, _ace_entry(ace, key[0], groups)))
        except (ValueError, IndexError, KeyError) as error:
            raise ValueError(f"line {number} of {where} ({line.strip()!r}): {error}") from None
    return out


def read_ios_text(text: str, groups: Mapping | None = None) -> dict:
    """IOS ACLs as the device lists them, as ``read_ios`` reads the vendor's parse of them.
    Strict: a line it does not read whole (a source port, an option, another header) is an
    error naming the line."""
    return {key: [entry for dummy, entry in pairs] for key, pairs in _read_ios_lines(enumerate(text.splitlines(), 1), groups, "the ACLs").items()}


RUNNING = "show running-config | section access-list"


def read_ios_running(text: str) -> list:
    """The collection's ACLs in the router's ``show running-config | section access-list``
    (``RUNNING``), as ``cisco.ios.ios_acls`` ``state: gathered`` returns them (``afi``, then
    ``acls`` by name, each with its ``aces``; remarks left out), for ``apply.plan``; read by
    the reader of ``read_ios_text``, where the vendor's parser takes minutes on thousands of
    entries.

    Each section of the output is one top-level line and the indented lines under it. A
    section headed ``ip access-list extended NAME`` or ``ipv6 access-list NAME`` with NAME one
    of the collection's (``GENERATION``) is read strictly: a line it does not read whole is an
    error naming it. Another section that names one of the collection's ACLs in its top-level
    line (``ip access-list standard WARDEN-EGRESS-V4-3``) is an error, as is an indented line
    with no section; the sections of other ACLs are not read (the plan leaves them alone).
    So no ACL of the collection on the router goes unread."""
    numbered, section, ours = [], False, False
    where = f"the router's '{RUNNING}'"
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line[:1].isspace():
            if not section:
                raise ValueError(f"line {number} of {where} ({line.strip()!r}) belongs to no section")
        else:
            section, header = True, IOS_HEADER.fullmatch(line.rstrip())
            ours = bool(header and GENERATION.fullmatch(header.group(2)))
            if not ours and any(GENERATION.fullmatch(word) for word in line.split()):
                raise ValueError(f"line {number} of {where} ({line.strip()!r}) names one of the collection's ACLs in a form this reader does not read")
        if ours:
            numbered.append((number, line))
    out: dict = {}
    for (family, name), pairs in sorted(_read_ios_lines(numbered, None, where).items()):
        acl = {"name": name, **({"acl_type": "extended"} if family == "ipv4" else {}), "aces": [ace for ace, dummy in pairs]}
        out.setdefault(family, []).append(acl)
    return [{"afi": family, "acls": out[family]} for family in ("ipv4", "ipv6") if family in out]


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


# --------------------------------------------------------------------------- device forms

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


def ios_object_group_lines(groups) -> list:
    """The lines that define ``groups`` (``ios_render``'s ``object_groups``) as the
    device lists them: ``object-group network NAME`` with ``host A.B.C.D`` or ``A.B.C.D MASK``
    members, ``object-group v6-network NAME`` with ``host X:X::X`` or ``X:X::/N`` members.
    cisco.ios has no resource module for object groups; these lines and those of
    ``ios_delete_group_lines`` are the only IOS configuration warden writes itself."""
    out = []
    for group in groups or []:
        out.append(f"object-group {GROUP_KINDS[group['afi']]} {group['name']}")
        for member in group["members"]:
            net = network(member)
            if net.prefixlen == net.max_prefixlen:
                out.append(f" host {address_text(net.network_address)}")
            elif net.version == 4:
                out.append(f" {address_text(net.network_address)} {net.netmask}")
            else:
                out.append(f" {network_text(net)}")
    return out


def ios_delete_group_lines(groups) -> list:
    """The lines that delete ``groups`` (each with ``afi`` and ``name``)."""
    return [f"no object-group {GROUP_KINDS[group['afi']]} {group['name']}" for group in groups or []]


def ios_load(acls, bindings=None, groups=None) -> str:
    """The ``src`` ``cisco.ios.ios_config`` sends (``match: none``) in one configuration
    change: the object groups the new generation's ACLs name (``ios_object_group_lines``;
    IOS needs a group defined before an entry names it), the ACLs as ``cisco.ios.ios_acls``
    rendered them, then the interface lines ``cisco.ios.ios_acl_interfaces`` rendered, where
    each ``ip access-group NAME out`` (``ipv6 traffic-filter NAME out``) replaces the ACL
    bound in that direction in one command. No line removes a binding: the interface is
    never left without an ACL. (A ``src`` file, because ``ios_config`` given ``lines`` sends
    them all once per line.)"""
    acl_lines, bind_lines = command_lines(acls), command_lines(bindings)
    if not any(line.startswith("ip access-list ") for line in acl_lines) or not any(line.startswith("ipv6 access-list ") for line in acl_lines):
        raise ValueError("the rendered IOS configuration lacks the IPv4 or the IPv6 access list")
    if any(line.split()[:1] == ["no"] for line in bind_lines):
        raise ValueError(f"the rendered IOS bindings remove a binding: {bind_lines}")
    named = {word for line in acl_lines for before, word in zip(line.split(), line.split()[1:]) if before == "object-group"}
    defined = {group["name"] for group in groups or []}
    if named - defined:
        raise ValueError(f"the rendered IOS ACLs name object groups the change does not define: {sorted(named - defined)}")
    return no_template("\n".join(ios_object_group_lines(groups) + acl_lines + bind_lines) + "\n", "IOS load")
