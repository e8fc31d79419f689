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
module, ``bindings`` into the ``config`` of its ``*_acl_interfaces`` module.

Reading each module's ``state: parsed`` back into entries and holding them against the
oracle lives in ``render_acl_check``; the forms the device lists and loads in
``render_acl_forms``; generation names and the plan of a confirmed apply in
``render_acl_apply``.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import ipaddress
import itertools
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import DEVICE_PLATFORMS
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import FAMILIES
from ansible_collections.warden.egress.plugins.plugin_utils.render.common import specialise

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


class AddressGroup:
    """Prefixes of one family that an entry matches as one (an IOS object group, the address
    list of a Junos term). ``address in group`` costs one bisection."""

    def __init__(self, nets) -> None:
        self.nets = tuple(sorted(set(nets), key=lambda n: (int(n.network_address), -n.prefixlen)))
        if not self.nets:
            raise ValueError("an address group needs at least one prefix")
        self.version = self.nets[0].version
        self._starts = [int(n.network_address) for n in self.nets]
        self._ends = list(itertools.accumulate((int(n.broadcast_address) for n in self.nets), max))

    def __contains__(self, address) -> bool:
        number = int(address)
        index = bisect.bisect_right(self._starts, number) - 1
        return index >= 0 and self._ends[index] >= number and address.version == self.version

    def __iter__(self):
        return iter(self.nets)

    @functools.cached_property
    def text(self) -> tuple:
        """Each prefix as text, in order."""
        return tuple(str(net) for net in self.nets)

    def __len__(self) -> int:
        return len(self.nets)

    def __eq__(self, other) -> bool:
        return isinstance(other, AddressGroup) and self.nets == other.nets

    def __hash__(self) -> int:
        return hash(self.nets)

    def __repr__(self) -> str:
        return f"AddressGroup({', '.join(str(n) for n in self.nets)})"


def group(nets: list):
    """``nets`` as one match: None stays None (any), one prefix stays a prefix, more become an
    ``AddressGroup``."""
    if nets == [None]:
        return None
    return nets[0] if len(nets) == 1 else AddressGroup(nets)


def new_entry(action: str, remark: str, **match) -> dict:
    entry = {"action": action, "proto": None, "src": None, "dst": None, "ports": None, "established": False, "log": action == "deny", "remark": remark}
    entry.update(match)
    return entry


def aces(ir: Mapping, grouped: bool = False) -> dict:
    """The entries of the IPv4 and IPv6 ACLs, in order; first match decides. Each entry's
    ``src`` and ``dst`` is a prefix, or None for any. With ``grouped``, a rule's sources and
    destinations stay together: one entry per rule, family and port range, whose ``src`` and
    ``dst`` may be an ``AddressGroup`` (a packet matches when its addresses lie in one member
    of each), so the ACL grows with the rules and the prefixes, not with their product."""
    if ir.get("kind") != "edge":
        raise ValueError("device ACLs are rendered from an edge policy (egress_edge)")
    for rule in ir["rules"]:
        if rule.get("users") is not None or rule.get("groups") is not None or rule.get("ct_direction") is not None \
                or rule.get("sports") is not None or rule.get("midstream"):
            raise ValueError(f"rule {rule['comment']!r}: a device ACL sees each packet alone, with no local user and no connection state: "
                             "it cannot match users, groups or what a host serves")
    edge = ir["edge"]
    if len(edge["inside"]) != 1 or len(edge["outside"]) != 1:
        raise ValueError("egress_edge: device ACLs are rendered for one inside and one outside interface")
    inside, outside = edge["inside"][0]["interface"], edge["outside"][0]
    trusted_set = next(r["saddr_not_in"] for r in ir["rules"] if r.get("iif") == [inside] and r["saddr_not_in"])
    out: dict = {family: [] for family in FAMILIES}
    trusted = {family: _nets(ir["sets"][trusted_set][family]) for family in FAMILIES}
    sides: dict = {}
    groups: dict = {}
    index = {family: _Prefixes(trusted[family]) for family in FAMILIES}
    for family in FAMILIES:
        for net in ([group(trusted[family])] if grouped and trusted[family] else trusted[family]):
            out[family].append(new_entry("permit", "baseline: replies (TCP with ACK or RST) from trusted sources",
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
            action = "permit" if rule["action"] == "accept" else "deny"
            # A set recurs in many rules: each side is worked out (and grouped) once per set.
            source_key = ("src", rule.get("saddr_in"), family, action == "permit")
            if source_key not in sides:
                sources = _intersect(_nets(ir["sets"][rule["saddr_in"]][family]), index[family]) if rule.get("saddr_in") else [None]
                sides[source_key] = trusted[family] if action == "permit" and sources == [None] else sources
            dest_key = ("dst", rule["daddr_in"], family, action == "permit")
            if dest_key not in sides:
                dests = _nets(ir["sets"][rule["daddr_in"]][family]) if rule["daddr_in"] else [None]
                # a permit to an inside destination: such a packet never leaves by the outside interface
                sides[dest_key] = [dst for dst in dests if dst is None or not index[family].covers(dst)] if action == "permit" else dests
            sources, dests = sides[source_key], sides[dest_key]
            ports = [tuple(r) for r in rule["dports"]] if rule["dports"] else [None]
            if grouped:
                if sources and dests:
                    for key, members in ((source_key, sources), (dest_key, dests)):
                        if key not in groups:
                            groups[key] = group(members)
                    out[family].extend(new_entry(action, rule["comment"], proto=proto, src=groups[source_key], dst=groups[dest_key], ports=port)
                                       for port in ports)
                continue
            for src in sources:
                for dst in dests:
                    for port in ports:
                        out[family].append(new_entry(action, rule["comment"], proto=proto, src=src, dst=dst, ports=port))
    for family in FAMILIES:
        out[family].append(new_entry("deny", "default deny"))
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


# The object-group kind of each family on IOS.
GROUP_KINDS = {"ipv4": "network", "ipv6": "v6-network"}


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
    written by ``render_acl_forms.ios_object_group_lines``."""
    config: list = []
    groups: dict = {}
    for family, entries in aces(ir, grouped=object_groups).items():
        out = []
        acl_name = (names or NAMES)[family]
        plain = _once_each(lambda net, family=family: _ios_address(net, family))

        def address(match, family=family, acl_name=acl_name, plain=plain) -> dict:
            if isinstance(match, AddressGroup):
                name = group_name(acl_name, match)
                if name not in groups:
                    groups[name] = {"afi": family, "name": name, "members": list(match.text)}
                return {"object_group": name}
            return plain(match)

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
        acl = {"name": acl_name, "aces": out}
        if family == "ipv4":
            acl["acl_type"] = "extended"
        config.append({"afi": family, "acls": [acl]})
    return {"acls": config, "object_groups": list(groups.values())}


def ios_config(ir: Mapping, names: Mapping | None = None, object_groups: bool = True) -> list:
    """The ``acls`` of ``ios_render``."""
    return ios_render(ir, names, object_groups)["acls"]


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


# --------------------------------------------------------------------------- Juniper Junos

def _term_name(index: int, remark: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", remark).strip("-").lower()
    return f"t{index * STEP:04d}-{slug}"[:60].rstrip("-")


def _junos_address(match):
    return list(match.text) if isinstance(match, AddressGroup) else str(match)


def junos_config(ir: Mapping, names: Mapping | None = None) -> list:
    """``config`` for junipernetworks.junos.junos_acls: one term per entry, named by its
    position (spaced by 10, for ``insert term ... before``) and its origin.

    A rule's sources and destinations stay in one term (a term matches when the source is
    one of its source addresses and the destination one of its destination addresses), so
    the filter grows with the rules and the prefixes, not with their product.

    What the module cannot express is left out, not approximated: it has no TCP flag match,
    so the replies entry (established) is not rendered; it has no log action. Port ranges
    are given as ``eq: "LOW-HIGH"``: its ``range`` form renders an empty port match."""
    config = []
    for family, entries in aces(ir, grouped=True).items():
        out = []
        for index, entry in enumerate(entries, 1):
            if entry["established"]:
                continue
            ace = {"name": _term_name(index, entry["remark"]), "grant": entry["action"]}
            proto = entry["proto"]
            if proto is not None:
                ace["protocol"] = str(proto) if isinstance(proto, int) else ("icmp6" if proto == "icmp" and family == "ipv6" else proto)
            if entry["src"] is not None:
                ace["source"] = {"address": _junos_address(entry["src"])}
            if entry["dst"] is not None or entry["ports"] is not None:
                ace["destination"] = {}
                if entry["dst"] is not None:
                    ace["destination"]["address"] = _junos_address(entry["dst"])
                if entry["ports"] is not None:
                    low, high = entry["ports"]
                    ace["destination"]["port_protocol"] = {"eq": str(low) if low == high else f"{low}-{high}"}
            out.append(ace)
        config.append({"afi": family, "acls": [{"name": (names or NAMES)[family], "aces": out}]})
    return config


# --------------------------------------------------------------------------- all three

def device_config(ir: Mapping, platform: str, names: Mapping | None = None, object_groups: bool = True) -> list:
    """The ``*_acls`` config of ``ir`` for ``platform`` (ios, eos, junos), the ACLs named
    ``names`` per family (``NAMES`` by default). ``object_groups`` (IOS) names object groups
    rather than writing every pairing of a rule's sources and destinations; EOS's module has
    no object groups, and a Junos term holds all of a rule's addresses."""
    if platform == "ios":
        return ios_config(ir, names, object_groups)
    renderers = {"eos": eos_config, "junos": junos_config}
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
