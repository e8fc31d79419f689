# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Device ACLs held against the oracle (private to the collection).

``decide`` evaluates ACL entries (``render.acl``'s platform-neutral entries, as each vendor's
reader returns them) first-match for a new connection; ``FirstMatch`` does the same indexed
for many flows; ``sample_flows`` draws new flows from the policy itself and ``disagreements``
lists the flows on which the ACLs read back and the oracle (``evaluate``'s ``Evaluator``)
decide differently.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import FAMILIES
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import PrefixIndex
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import Evaluator
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import NAMES, AddressGroup

PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58}


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
