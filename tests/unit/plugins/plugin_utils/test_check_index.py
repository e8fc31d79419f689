"""The ACL check's indexes decide exactly what the linear scans they stand in for decide:
``FirstMatch`` is ``decide`` over an ACL's entries, ``Evaluator`` is ``evaluate`` over an IR's
rules, on generated entries, generated sites and flows aimed at their edges."""

from __future__ import annotations

import ipaddress
import os
import random
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from sample import edge_ir

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import Evaluator, evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import AddressGroup, aces, new_entry
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.acl_check import FirstMatch, decide, sample_flows
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import GroupRef

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "benchmarks"))
from sitegen import generate  # noqa: E402

BASES = {4: int(ipaddress.ip_address("198.51.100.0")), 6: int(ipaddress.ip_address("2001:db8::"))}


def network(version: int):
    bits = 32 if version == 4 else 128
    return st.builds(lambda offset, length: ipaddress.ip_network((BASES[version] + offset, length), strict=False),
                     st.integers(0, 255), st.integers(bits - 9, bits))


def address(version: int):
    return st.builds(lambda offset: str(ipaddress.ip_address(BASES[version] + offset)), st.integers(0, 300))


def side(version: int):
    """None (any), a prefix, a group, or (rarely) a prefix of the other family."""
    return st.one_of(st.none(), network(version), st.lists(network(version), min_size=2, max_size=5).map(AddressGroup), network(10 - version))


def entry(version: int):
    return st.builds(
        lambda action, proto, src, dst, ports, established: new_entry(action, "", proto=proto, src=src, dst=dst, ports=ports, established=established),
        st.sampled_from(["permit", "deny"]), st.sampled_from([None, "tcp", "udp", "icmp", 89]), side(version), side(version),
        st.one_of(st.none(), st.tuples(st.integers(1, 40), st.integers(40, 80))), st.booleans())


def flow(version: int):
    return st.builds(lambda src, dst, proto, port: {"src": src, "dst": dst, "proto": proto, "dport": port if proto in ("tcp", "udp") else None},
                     address(version), address(version), st.sampled_from(["tcp", "udp", "icmp", 89, 50]), st.integers(1, 90))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([4, 6]).flatmap(lambda v: st.tuples(st.lists(entry(v), max_size=25), st.lists(flow(v), min_size=1, max_size=30))))
def test_first_match_decides_as_the_linear_scan(case):
    entries, flows = case
    index = FirstMatch(entries)
    for one in flows:
        assert index.decide(one) == decide(entries, one), one


def test_an_unread_group_still_stops_the_indexed_check():
    """An entry naming a group nobody read is tried for every source, and raises as in the scan."""
    entries = [new_entry("permit", "", proto="tcp", src=ipaddress.ip_network("198.51.100.0/30")),
               new_entry("permit", "", src=GroupRef("WARDEN-EGRESS-V4-0123456789"))]
    index = FirstMatch(entries)
    assert index.decide({"src": "198.51.100.1", "dst": "203.0.113.5", "proto": "tcp", "dport": 443}) == "permit"
    for one in ({"src": "198.51.100.1", "dst": "203.0.113.5", "proto": "udp", "dport": 53}, {"src": "198.51.100.9", "dst": "203.0.113.5"}):
        try:
            index.decide(one)
        except ValueError as exc:
            assert "was not read" in str(exc)
        else:
            raise AssertionError(f"{one}: decided without the group")


def site_irs(hosts: int, roles: int, prefixes: int, seed: int) -> list:
    """A generated site's edge IR and the IRs of its first hosts."""
    site = generate(hosts, roles, prefixes, seed=seed, segments=2, exceptions=3)
    edge = {**site["edge"], "outside": "eth1", "conn_limit": False}
    out = [compile_edge({**site["variables"], "egress_edge": edge}, "gw", site["addresses"], site["groups"], site["host_roles"])]
    for host in sorted(site["host_roles"])[:3]:
        out.append(compile_policy({**site["variables"], "egress_role": site["host_roles"][host]}, host, site["addresses"], site["groups"]))
    return out


def packets(ir: dict, rng) -> list:
    """Flows drawn from the IR's own sets and rules, each family, several protocols and ports."""
    pools: dict = {4: {"203.0.113.1", "10.1.2.3"}, 6: {"2001:db8:ffff::1", "fd00::1"}}
    for members in ir["sets"].values():
        for prefix in members["ipv4"] + members["ipv6"]:
            net = ipaddress.ip_network(prefix)
            pools[net.version].update({str(net.network_address), str(net.broadcast_address)})
    ports = sorted({p for rule in ir["rules"] for low, high in rule.get("dports") or [] for p in (low - 1, low, high) if 1 <= p <= 65535} | {443})
    out = []
    for dummy in range(300):
        version = rng.choice([4, 6])
        proto = rng.choice(["tcp", "udp", "icmp", 89])
        one = {"src": rng.choice(sorted(pools[version])), "dst": rng.choice(sorted(pools[version])), "proto": proto}
        if proto in ("tcp", "udp"):
            one["dport"] = rng.choice(ports)
        if ir["kind"] == "edge":
            one.update(rng.choice([{}, {"iif": "eth0", "oif": "eth1"}, {"iif": "eth1", "oif": "eth0"}]))
        else:
            one.update(rng.choice([{}, {"ct_state": "established"}, {"direction": "inbound"} if proto != 89 else {}]))
        out.append(one)
    return out


@settings(max_examples=12, deadline=None)
@given(st.integers(4, 40), st.integers(1, 8), st.integers(5, 120), st.integers(0, 10_000))
def test_the_evaluator_gives_evaluates_verdicts(hosts, roles, prefixes, seed):
    rng = random.Random(seed)
    for ir in site_irs(hosts, roles, prefixes, seed):
        oracle = Evaluator(ir)
        for one in packets(ir, rng):
            assert oracle.evaluate(one) == evaluate(ir, one), one


def test_the_index_meets_every_rule_of_the_example_edge():
    """On the example edge, every rule decides some sampled flow, and the indexed check agrees
    with the scans on each: the index is not answering from a few open rules."""
    ir = edge_ir()
    oracle = Evaluator(ir)
    entries = aces(ir, grouped=True)
    decided = set()
    for one in sample_flows(ir, 3000):
        packet = {key: value for key, value in one.items() if value is not None} | {"iif": "eth0", "oif": "eth1"}
        result = oracle.evaluate(packet)
        assert result == evaluate(ir, packet)
        decided.add(result["rule_index"])
        family = "ipv4" if ":" not in one["src"] else "ipv6"
        assert FirstMatch(entries[family]).decide(one) == decide(entries[family], one)
    inside = [ipaddress.ip_network(p) for p in ir["edge"]["inside"][0]["prefixes"]]

    def leaves(name):  # some destination of the set is not inside, so a flow to it goes out
        return name is None or any(not any(net.version == i.version and net.subnet_of(i) for i in inside)
                                   for net in map(ipaddress.ip_network, ir["sets"][name]["ipv4"] + ir["sets"][name]["ipv6"]))

    role_rules = {index for index, rule in enumerate(ir["rules"]) if rule.get("saddr_in") and rule["action"] == "accept" and leaves(rule["daddr_in"])}
    assert len(role_rules) >= 8 and role_rules <= decided
