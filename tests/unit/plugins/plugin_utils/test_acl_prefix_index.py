"""The device ACL renderer's prefix index answers exactly what the pairwise tests it replaces
answered: which sources intersect the trusted prefixes, and which destinations are inside."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import _intersect, _Prefixes


def prefixes(version: int):
    bits = 32 if version == 4 else 128
    base = int(ipaddress.ip_address("198.51.100.0" if version == 4 else "2001:db8::"))
    return st.builds(lambda offset, length: ipaddress.ip_network((base + offset, length), strict=False),
                     st.integers(0, 1023), st.integers(bits - 12, bits))


def pairwise_intersect(sources, trusted):
    out = {src if src.subnet_of(net) else net for src in sources for net in trusted if src.version == net.version and src.overlaps(net)}
    return sorted(out, key=lambda n: (n.version, n.network_address, n.prefixlen))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([4, 6]).flatmap(lambda v: st.tuples(st.lists(prefixes(v), max_size=12), st.lists(prefixes(v), max_size=12))))
def test_index_matches_pairwise_tests(pair):
    sources, trusted = pair
    index = _Prefixes(trusted)
    assert _intersect(sources, index) == pairwise_intersect(sources, trusted)
    for net in sources:
        assert index.covers(net) == any(net.subnet_of(t) for t in trusted)


def test_a_source_wider_than_the_trusted_prefixes_keeps_the_trusted_ones_inside_it():
    index = _Prefixes([ipaddress.ip_network("198.51.100.0/26"), ipaddress.ip_network("198.51.100.128/27"), ipaddress.ip_network("203.0.113.0/24")])
    assert [str(n) for n in _intersect([ipaddress.ip_network("198.51.100.0/24")], index)] == ["198.51.100.0/26", "198.51.100.128/27"]
    assert index.covers(ipaddress.ip_network("203.0.113.7/32")) and not index.covers(ipaddress.ip_network("198.51.100.0/24"))


def test_check_flows_are_drawn_not_enumerated_when_the_pairings_are_many():
    """The pairings of a policy's addresses grow with the square of its prefixes: all of them
    when they are few, else the count asked for, distinct, never to an inside destination."""
    import random

    from ansible_collections.warden.egress.plugins.plugin_utils.oracle.acl_check import _pairings

    inside = [ipaddress.ip_network("198.51.100.0/25")]
    small = {"ipv4": {"198.51.100.1", "203.0.113.1", "203.0.113.2"}, "ipv6": set()}
    flows = _pairings(small, inside, ["tcp", "icmp"], [443], 100, random.Random(5))
    assert sorted((f["src"], f["dst"], f["proto"]) for f in flows) == sorted(
        (s, d, p) for s in small["ipv4"] for d in ("203.0.113.1", "203.0.113.2") if s != d for p in ("tcp", "icmp"))
    large = {"ipv4": {f"203.0.113.{n}" for n in range(200)} | {f"198.51.100.{n}" for n in range(100)},
             "ipv6": {f"2001:db8::{n:x}" for n in range(300)}}
    flows = _pairings(large, inside, ["tcp", "udp", "icmp"], list(range(1, 40)), 1000, random.Random(5))
    keys = {(f["src"], f["dst"], f["proto"], f["dport"]) for f in flows}
    assert len(flows) == len(keys) == 1000
    assert not any(ipaddress.ip_address(f["dst"]) in inside[0] for f in flows if ":" not in f["dst"])
    assert {":" in f["src"] for f in flows} == {True, False}
