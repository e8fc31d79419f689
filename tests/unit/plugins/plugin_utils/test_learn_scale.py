"""The replay and what-if judge learned flows through indexed oracles: the same decisions as the
linear scan (``evaluate``), and a set of the policy is read once, however many flows are judged
(a suggestion of many exceptions no longer makes each flow's cost grow with them)."""

from __future__ import annotations

import datetime
import ipaddress
import types

from hypothesis import given, settings
from hypothesis import strategies as st
from sample import ADDRESSES, GROUPS, ROLES, site

from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import Evaluator, _in_set, evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import learned_flow
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import judge, replay
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.whatif import what_if
from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import compile_site
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import Spans

TODAY = datetime.date(2026, 12, 2)


def compiled(mode: str = "audit") -> dict:
    host_vars = {h: dict(site(), egress_role=r, egress_mode=mode) for h, r in ROLES.items()}
    return {host: {ir["kind"]: ir for ir in irs} for host, irs in compile_site(host_vars, ADDRESSES, GROUPS, today=TODAY)}


POLICIES = compiled()
HOSTS = sorted(h for h in POLICIES if "host" in POLICIES[h])


def own(host: str, version: int) -> str:
    return next(a for a in ADDRESSES[host] if ipaddress.ip_address(a).version == version)


def learned(host: str, version: int, offset: int, proto: str, port: int, uid: int | None) -> dict:
    base = "203.0.113.0" if version == 4 else "2001:db8:5100::"
    return {"reporter": host, "iif": None, "oif": "eth0", "src": own(host, version), "dst": str(ipaddress.ip_address(base) + offset),
            "proto": proto, "dport": port if proto in ("tcp", "udp") else None, "icmp_type": None, "uid": uid, "gid": uid, "findings": [], "service": None}


FLOWS = st.lists(st.builds(learned, st.sampled_from(HOSTS), st.sampled_from([4, 6]), st.integers(0, 255),
                           st.sampled_from(["tcp", "udp", "icmp"]), st.sampled_from([22, 25, 53, 123, 443, 3128, 8443]),
                           st.sampled_from([None, 0, 33, 1000])), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(FLOWS)
def test_the_indexed_replay_decides_as_the_linear_scan(flows):
    state = types.SimpleNamespace(policies=POLICIES)
    oracles: dict = {}
    for flow in flows:
        assert judge(state, flow, oracles) == judge(state, flow) == evaluate(POLICIES[flow["reporter"]]["host"], learned_flow(flow))


NETS = st.lists(st.builds(lambda version, offset, length: ipaddress.ip_network(
    ((int(ipaddress.ip_address("198.51.100.0" if version == 4 else "2001:db8::")) + offset), length if version == 4 else length + 96),
    strict=False), st.sampled_from([4, 6]), st.integers(0, 1023), st.integers(22, 32)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(NETS, st.lists(st.integers(0, 1100), min_size=1, max_size=20))
def test_a_sets_membership_by_binary_search_is_the_scans(nets, offsets):
    members = {"ipv4": [str(n) for n in nets if n.version == 4], "ipv6": [str(n) for n in nets if n.version == 6]}
    ir = {"sets": {"s": members}, "rules": []}
    spans = Spans(nets)
    oracle = Evaluator(ir)
    for offset in offsets:
        for base, family in (("198.51.100.0", "ipv4"), ("2001:db8::", "ipv6")):
            address = ipaddress.ip_address(base) + offset
            assert oracle.in_set(ir, "s", family, address) == _in_set(ir, "s", family, address) == spans.holds(address)


class Counted(list):
    """A set's member list that counts how often it is read whole."""

    reads = 0

    def __iter__(self):
        Counted.reads += 1
        return super().__iter__()


def counted_policies() -> dict:
    """The example site's policies, each set's members a ``Counted`` list padded with 2,000
    prefixes no flow goes to (what a suggestion of many learned destinations adds)."""
    out = compiled()
    padding = [f"2001:db8:7{i // 256:03x}:{i % 256:x}00::/56" for i in range(2000)]
    for irs in out.values():
        for ir in irs.values():
            for members in ir["sets"].values():
                members["ipv4"], members["ipv6"] = Counted(members["ipv4"]), Counted(list(members["ipv6"]) + padding)
    return out


def test_replay_reads_each_set_once_however_many_flows():
    policies = counted_policies()
    state = types.SimpleNamespace(policies=policies)
    flows = [learned(HOSTS[i % len(HOSTS)], 4 + 2 * (i % 2), i % 250, "tcp", 443, None) for i in range(400)]
    Counted.reads = 0
    result = replay(state, state, flows)
    assert result["flows"] == 400 and not result["not_replayed"]
    sets = sum(len(ir["sets"]) for irs in policies.values() for ir in irs.values())
    assert Counted.reads <= 2 * sets, f"{Counted.reads} reads of member lists for 400 flows and {sets} sets"


def test_what_if_reads_sets_as_often_for_many_flows_as_for_few():
    """What-if reads sets to draw a packet from each rule (once per rule and family), and
    no more for each flow it judges."""
    policies = counted_policies()
    reads = []
    for count in (10, 200):
        flows = [{"host": h, "kind": "host", "packet": learned_flow(learned(h, 6, i, "tcp", 8443, None))} for i in range(count) for h in HOSTS]
        Counted.reads = 0
        result = what_if(policies, policies, flows)
        assert result["flows"] >= count * len(HOSTS) and not result["changed"]
        reads.append(Counted.reads)
    assert reads[0] == reads[1], f"member lists read {reads[0]} times for 10 flows per host, {reads[1]} for 200"
