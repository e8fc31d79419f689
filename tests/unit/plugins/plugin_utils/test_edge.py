"""Edge (gateway) policy: compiled from the whole inventory, rendered on the forward hook,
and held against the kernel: real packets forwarded through a gateway namespace."""

from __future__ import annotations

import itertools
import random
import time

import pytest
from golden_files import golden
from netns import BACKENDS, Routed
from sample import ADDRESSES, EDGE, GROUPS, ROLES, edge_ir, site

from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.render.nftables import render


def decide(ir, src, dst, dport, proto="tcp", iif="eth0", oif="eth1"):
    return evaluate(ir, {"src": src, "dst": dst, "dport": dport, "proto": proto, "iif": iif, "oif": oif})


CASES = [
    # (src, dst, port, proto, verdict, reason fragment)
    ("198.51.100.11", "203.0.113.25", 25, "tcp", "accept", "role mail_server: smtp to smtp_relays"),
    ("2001:db8:10::11", "2001:db8:5100::25", 25, "tcp", "accept", "role mail_server"),
    ("198.51.100.13", "203.0.113.25", 25, "tcp", "drop", "alert: smtp"),
    ("198.51.100.11", "203.0.113.99", 25, "tcp", "drop", "alert: smtp"),
    ("198.51.100.13", "203.0.113.9", 443, "tcp", "accept", "role web_proxy: https to any"),
    ("198.51.100.13", "10.1.2.3", 443, "tcp", "drop", "special-purpose"),
    ("198.51.100.13", "192.168.1.1", 80, "tcp", "drop", "special-purpose"),
    ("198.51.100.13", "255.255.255.255", 80, "udp", "drop", "special-purpose"),
    ("198.51.100.13", "224.0.0.251", 80, "udp", "drop", "special-purpose"),
    ("2001:db8:10::13", "fd00::1", 443, "tcp", "drop", "special-purpose"),
    ("2001:db8:10::13", "ff02::1", 443, "udp", "drop", "special-purpose"),
    ("198.51.100.13", "203.0.113.200", 443, "tcp", "drop", "special-purpose"),
    ("198.51.100.200", "203.0.113.25", 25, "tcp", "drop", "anti-spoofing on eth0"),
    ("2001:db8:10::1:200", "2001:db8:5100::25", 25, "tcp", "drop", "anti-spoofing on eth0"),
    ("198.51.100.13", "203.0.113.9", 179, "tcp", "drop", "routing protocol BGP"),
    ("198.51.100.13", "203.0.113.9", 520, "udp", "drop", "routing protocol RIP"),
    ("2001:db8:10::13", "2001:db8:5100::9", 521, "udp", "drop", "routing protocol RIPng"),
    ("198.51.100.13", "203.0.113.9", 6667, "tcp", "drop", "alert: irc"),
    ("198.51.100.14", "203.0.113.80", 443, "tcp", "accept", "exception 0: https"),
    ("198.51.100.15", "203.0.113.80", 443, "tcp", "drop", "default deny"),
    ("198.51.100.65", "198.51.100.13", 3128, "tcp", "accept", "not leaving by the outside"),
    ("198.51.100.65", "203.0.113.9", 80, "tcp", "drop", "default deny"),
    ("198.51.100.65", "203.0.113.9", 31337, "tcp", "drop", "alert: backdoor"),
]


@pytest.mark.parametrize(("src", "dst", "port", "proto", "verdict", "reason"), CASES)
def test_edge_decisions(src, dst, port, proto, verdict, reason):
    oif = "eth0" if dst == "198.51.100.13" else "eth1"
    decision = decide(edge_ir(), src, dst, port, proto, oif=oif)
    assert decision["verdict"] == verdict and reason in decision["reason"], decision


def test_segment_uses_its_role():
    ir = edge_ir()
    assert ir["sets"]["src_client"] == {"ipv4": ["198.51.100.14/32", "198.51.100.64/28"], "ipv6": ["2001:db8:10::14/128", "2001:db8:10::40/124"]}
    assert decide(ir, "198.51.100.70", "198.51.100.12", 53, "udp", oif="eth1")["verdict"] == "accept"


def test_transit_and_undeclared_interfaces_are_denied_and_inbound_is_left_alone():
    ir = edge_ir()
    assert "no transit" in decide(ir, "203.0.113.9", "203.0.113.10", 80, iif="eth1", oif="eth1")["reason"]
    assert "declared neither" in decide(ir, "198.51.100.11", "203.0.113.25", 25, iif="eth7", oif="eth1")["reason"]
    assert decide(ir, "203.0.113.9", "198.51.100.13", 80, iif="eth1", oif="eth0")["verdict"] == "accept"


def test_routing_box_lets_routing_protocols_through_to_the_roles():
    ir = edge_ir(edge={**EDGE, "routes": True})
    assert not [r for r in ir["rules"] if "routing protocol" in r["comment"]]
    assert decide(ir, "198.51.100.13", "203.0.113.9", 179)["reason"] == "default deny: no rule allows this flow"


def test_connection_limit_defaults_and_can_be_turned_off():
    meters = [r for r in edge_ir()["rules"] if r["meter"]]
    assert [r["meter"] for r in meters] == [{"rate": "100/second", "burst": 200}]
    assert not [r for r in edge_ir(edge={**EDGE, "conn_limit": False})["rules"] if r["meter"]]


def test_wide_inside_prefix_warns():
    # Hosts .11-.15 and the segment .64/28 fit in a /25: a /16 is far wider, a /24 is not.
    ir = edge_ir(edge={**EDGE, "inside": [{"interface": "eth0", "prefixes": ["198.51.0.0/16", "2001:db8:10::/64"]}]},
                 egress_trusted_prefixes=["198.51.0.0/16", "2001:db8:10::/64"])
    assert any("198.51.0.0/16 is far wider" in w and "(they fit in 198.51.100.0/25)" in w for w in ir["warnings"])
    assert any("2001:db8:10::/64 is far wider" in w for w in ir["warnings"])
    near = edge_ir(edge={**EDGE, "inside": [{"interface": "eth0", "prefixes": ["198.51.100.0/24"]}]},
                   egress_trusted_prefixes=["198.51.100.0/24", "2001:db8:10::/120"])
    assert not [w for w in near["warnings"] if "198.51.100.0/24" in w]


BAD = [
    ({"edge": {"outside": "eth1"}}, "egress_edge.inside", "is required"),
    ({"edge": {**EDGE, "outside": "eth 1"}}, "egress_edge.outside", "is not an interface name"),
    ({"edge": {**EDGE, "outside": ["eth1", 'x";']}}, "egress_edge.outside[1]", "is not an interface name"),
    ({"edge": {**EDGE, "inside": [{"interface": "eth1", "prefixes": ["198.51.100.0/25"]}]}},
     "egress_edge.inside[0].interface", "is also an outside"),
    ({"edge": {**EDGE, "inside": [{"interface": "eth0", "prefixes": ["203.0.113.0/24"]}]}},
     "egress_edge.inside[0].prefixes[0]", "is not within egress_trusted_prefixes"),
    ({"edge": {**EDGE, "inside": [{"interface": "eth0", "prefixes": ["198.51.100.1/25"]}]}},
     "egress_edge.inside[0].prefixes[0]", "has host bits set"),
    ({"edge": {**EDGE, "inside": [{"interface": "eth0"}]}}, "egress_edge.inside[0].prefixes", "is required"),
    ({"edge": {**EDGE, "routes": "maybe"}}, "egress_edge.routes", "must be true or false"),
    ({"edge": {**EDGE, "conn_limit": {"rate": "fast"}}}, "egress_edge.conn_limit.rate", "is not a rate"),
    ({"edge": {**EDGE, "conn_limit": {"burst": 0}}}, "egress_edge.conn_limit.burst", "is not a number"),
    ({"edge": {**EDGE, "colour": 1}}, "egress_edge.colour", "is not a known key"),
    ({"edge": {**EDGE, "never_leave": ["10.0.0.300"]}}, "egress_edge.never_leave[0]", "is not an IP address"),
    ({"segments": {"ws": {"prefixes": ["203.0.113.0/24"], "role": "client"}}}, "egress_segments.ws.prefixes[0]", "is not within egress_trusted_prefixes"),
    ({"segments": {"ws": {"prefixes": ["198.51.100.64/28"], "role": "clerk"}}}, "egress_segments.ws.role", "is not a known role"),
    ({"segments": {"ws": {"prefixes": ["198.51.100.64/28"]}}}, "egress_segments.ws.role", "is required"),
    ({"segments": {"w s": {"prefixes": ["198.51.100.64/28"], "role": "client"}}}, "egress_segments.w s", "is not a valid segment name"),
]


@pytest.mark.parametrize(("kwargs", "path", "problem"), BAD, ids=[b[1] for b in BAD])
def test_bad_edge_input(kwargs, path, problem):
    with pytest.raises(PolicyError) as info:
        edge_ir(**kwargs)
    assert info.value.path == path and problem in str(info.value)


def test_host_role_without_address_is_an_error():
    variables = site(egress_edge=EDGE)
    with pytest.raises(PolicyError, match=r"^hostvars\[mail1\]\.egress_addresses: \[\] is unset or empty, .*: host mail1 has no address, "
                                          r"which hostvars\[mail1\]\.egress_role needs"):
        compile_edge(variables, "gw1", {**ADDRESSES, "mail1": []}, GROUPS, dict(ROLES))


def test_golden():
    text = render(edge_ir())
    assert text == golden("gw1-edge.nft", text)


def test_host_and_edge_share_one_table():
    from sample import compile_for

    host = compile_for("proxy1")
    text = render([host, edge_ir()])
    assert text.count("\tchain output {") == 1 and text.count("\tchain forward {") == 1
    assert text.count("\tset up_internal_resolvers_v4 {") == 1
    with pytest.raises(ValueError, match="same hook"):
        render([host, host])


# --------------------------------------------------------------------------- the kernel

ROLE_V4 = [a[0] for a in ADDRESSES.values()]
ROLE_V6 = [a[1] for a in ADDRESSES.values()]
SEGMENT_V4, SEGMENT_V6 = "198.51.100.70", "2001:db8:10::44"
SPOOF_V4, SPOOF_V6 = "198.51.100.200", "2001:db8:10::1:200"
CLIENT_V4 = ROLE_V4 + [SEGMENT_V4, SPOOF_V4]
CLIENT_V6 = ROLE_V6 + [SEGMENT_V6, SPOOF_V6]
# Upstreams behind the world namespace; dns1 and proxy1 are inside, so "to dns1" flows
# stay inside and are not the edge's business. 203.0.113.200 is in never_leave.
DESTS = ["203.0.113.25", "203.0.113.53", "203.0.113.80", "203.0.113.99", "203.0.113.200",
         "2001:db8:5100::25", "2001:db8:5100::53", "2001:db8:5100::80", "2001:db8:5100::99"]
PORTS = [22, 25, 53, 80, 179, 443, 520, 3128, 6667, 31337]


# What each role may send out, v4 and v6, so that both verdicts are well sampled.
ALLOWED = [
    {"src": src, "dst": dst, "port": port, "proto": proto}
    for host, dsts, port, protos in [
        ("mail1", ("203.0.113.25", "2001:db8:5100::25"), 25, ("tcp",)),
        ("dns1", ("203.0.113.53", "2001:db8:5100::53"), 53, ("tcp", "udp")),
        ("proxy1", ("203.0.113.9", "2001:db8:5100::9", "203.0.113.99"), 80, ("tcp",)),
        ("proxy1", ("203.0.113.10", "2001:db8:5100::10"), 443, ("tcp",)),
        ("ws1", ("203.0.113.80", "2001:db8:5100::80"), 443, ("tcp",)),
    ]
    for dst in dsts
    for proto in protos
    for src in ADDRESSES[host]
    if (":" in src) == (":" in dst)
]


@pytest.fixture(scope="module")
def routed():
    with Routed(CLIENT_V4, CLIENT_V6) as topology:
        yield topology


def sample_flows(count, seed):
    rng = random.Random(seed)
    every = [
        {"src": src, "dst": dst, "port": port, "proto": proto}
        for dst, port, proto in itertools.product(DESTS, PORTS, ("tcp", "udp"))
        for src in (CLIENT_V6 if ":" in dst else CLIENT_V4)
    ]
    return rng.sample(every, count)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_agrees_with_oracle_through_the_gateway(routed, backend):
    ir = edge_ir()
    routed.load(ir, backend)
    try:
        flows = sample_flows(400, seed=7) + ALLOWED
        observed = routed.probe(flows, timeout=0.7, workers=32)
        expected = [decide(ir, f["src"], f["dst"], f["port"], f["proto"]) for f in flows]
        disagreements = [(f, e["verdict"], e["reason"], o["outcome"]) for f, e, o in zip(flows, expected, observed)
                         if (e["verdict"] == "accept") != o["passed"]]
        assert not disagreements
        reasons = {e["reason"].split(":")[0] for e in expected}
        assert {"baseline", "role mail_server", "role web_proxy", "alert", "default deny"} <= reasons
        assert sum(e["verdict"] == "accept" for e in expected) >= 20
    finally:
        routed.unload()


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_comparison_can_fail(routed, backend):
    """Without the never-leave rule, the gateway forwards to 203.0.113.200 and the kernel
    disagrees with the oracle: the comparison above is not vacuous."""
    ir = edge_ir()
    routed.load(ir, backend, without="special-purpose")
    try:
        flow = {"src": "198.51.100.13", "dst": "203.0.113.200", "port": 443, "proto": "tcp"}
        assert decide(ir, "198.51.100.13", "203.0.113.200", 443)["verdict"] == "drop"
        assert routed.probe([flow])[0]["passed"] is True
    finally:
        routed.unload()


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_source_connection_limit_engages(routed, backend):
    """A burst of new connections from one source: about burst + rate x time get out,
    the rest are dropped; another source is not affected."""
    ir = edge_ir(edge={**EDGE, "conn_limit": {"rate": "10/second", "burst": 20}})
    routed.load(ir, backend)
    try:
        burst = [{"src": "198.51.100.13", "dst": f"203.0.113.{1 + i % 120}", "port": 443, "proto": "tcp"} for i in range(150)]
        start = time.monotonic()
        results = routed.probe(burst, timeout=0.7, workers=150)
        elapsed = time.monotonic() - start
        passed = sum(r["passed"] for r in results)
        assert 20 <= passed <= 20 + 10 * elapsed + 5, (passed, elapsed)
        assert passed < 150
        other = routed.probe([{"src": "198.51.100.11", "dst": "203.0.113.25", "port": 25, "proto": "tcp"}])
        assert other[0]["passed"] is True
    finally:
        routed.unload()
