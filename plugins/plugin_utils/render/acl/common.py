# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the device ACLs of every vendor share (private to the collection).

The ACL is bound ``out`` on the outside interface, so it sees every packet leaving the site
there and nothing else. It is stateless:

* replies are let out by ``established`` (TCP with ACK or RST), from trusted sources only;
* "source not trusted" cannot be one entry, so every permit's sources are intersected with
  the inside interface's trusted prefixes, and what no permit allows meets the final deny;
* the per-source connection limit has no ACL equivalent and is left out;
* permits to destinations inside (the inside interface's prefixes) are left out: such a
  packet never leaves by the outside interface, so they would only be noise to a reviewer.

``aces(ir)`` returns the platform-neutral entries per family, which each vendor's module
(``ios``, ``eos``, ``junos``) renders for its ``*_acls`` resource module and reads back from
its ``state: parsed``; ``bindings`` is the ``config`` of the ``*_acl_interfaces`` modules (the
same shape on all three).

The entries read back are held against the oracle by ``oracle.acl_check``.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import FAMILIES
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import network
from ansible_collections.warden.egress.plugins.plugin_utils.render.common import CAPABLE, check_rules, specialise

NAMES = {"ipv4": "WARDEN-EGRESS-V4", "ipv6": "WARDEN-EGRESS-V6"}
# The collection's ACL names: ``NAMES``, or a generation of them (``WARDEN-EGRESS-V4-7``; apply.acl_names).
GENERATION = re.compile(r"WARDEN-EGRESS-V(?P<version>[46])(?:-(?P<generation>[1-9][0-9]{0,5}))?")
STEP = 10
# What a router's or switch's interface names look like: GigabitEthernet0/0/1, Ethernet1/1,
# ge-0/0/1, Port-Channel10.
DEVICE_IFNAME = (re.compile(r"[A-Za-z][A-Za-z0-9_./:-]{0,63}"), "a letter, then at most 63 of letters, digits, '_./:-'")
# What a device ACL cannot express (each vendor's CAPABILITIES start from these): it sees
# each packet alone, out on the one outside interface, so an edge only, with no local user,
# no connection state and no per-source meter.
CAPABILITIES = {
    **CAPABLE, "name": "a device ACL", "kinds": ("edge",), "owners": (), "connection_state": False, "one_inside_one_outside": True,
    "cannot": "a device ACL sees each packet alone, with no local user and no connection state: it cannot match users, groups or what a host serves",
    "interface": DEVICE_IFNAME,
    "dns_refusal": "an ACL holds addresses only, and the device's own lookups (if any) are not the answers the site's clients get; "
                   "list the upstream's addresses instead",
}


def _nets(prefixes: list) -> list:
    return [network(p) for p in prefixes]


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


def aces(ir: Mapping, grouped: bool = False, capabilities: Mapping | None = None) -> dict:
    """The entries of the IPv4 and IPv6 ACLs, in order; first match decides. Each entry's
    ``src`` and ``dst`` is a prefix, or None for any. With ``grouped``, a rule's sources and
    destinations stay together: one entry per rule, family and port range, whose ``src`` and
    ``dst`` may be an ``AddressGroup`` (a packet matches when its addresses lie in one member
    of each), so the ACL grows with the rules and the prefixes, not with their product.
    A rule the vendor cannot express (its ``capabilities``) is refused."""
    capabilities = CAPABILITIES if capabilities is None else capabilities
    if ir.get("kind") not in capabilities["kinds"]:
        raise ValueError("device ACLs are rendered from an edge policy (egress_edge)")
    check_rules(capabilities, [ir])
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


def remark_groups(entries: list):
    """(remark or None, entry) pairs: a remark where an entry's origin differs from the one
    before it, so each block of entries of one origin is headed by one remark."""
    previous = None
    for entry in entries:
        yield (entry["remark"] if entry["remark"] != previous else None), entry
        previous = entry["remark"]


def once_each(write):
    """``write`` (a prefix -> address dict) run once per prefix: a prefix recurs in many
    entries. Each call returns a copy the caller may extend."""
    written: dict = {}

    def address(net) -> dict:
        if net not in written:
            written[net] = write(net)
        return dict(written[net])
    return address


def bindings(ir: Mapping, names: Mapping | None = None) -> list:
    """``config`` for the ``*_acl_interfaces`` modules (the same shape on all three): both
    ACLs bound ``out`` on the outside interface."""
    outside = ir["edge"]["outside"]
    if len(outside) != 1:
        raise ValueError("egress_edge: device ACLs are rendered for one inside and one outside interface")
    return [{"name": outside[0], "access_groups": [{"afi": family, "acls": [{"name": (names or NAMES)[family], "direction": "out"}]} for family in FAMILIES]}]


# --------------------------------------------------------------------------- device forms

def command_lines(rendered) -> list:
    """A module's rendered commands as a list of lines (the modules return a list; a
    single string is split)."""
    if rendered is None:
        return []
    if isinstance(rendered, str):
        return [line for line in rendered.splitlines() if line.strip()]
    return [str(line) for line in rendered]


def no_template(text: str, what: str) -> str:
    """The vendor's config action plugins template a ``src`` file before they send it: a
    Jinja delimiter in it would change what reaches the device, so it is refused."""
    found = re.search(r"\{\{|\{%|\{#", text)
    if found:
        raise ValueError(f"the {what} holds {found.group(0)!r}, which the module would read as a template")
    return text
