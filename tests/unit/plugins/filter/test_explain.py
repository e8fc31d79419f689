"""warden.egress.explain on edge policies: the interfaces a forwarded flow meets, given or
defaulted, and the answer held against the oracle and against a gateway's kernel with the
edge policy loaded (nftables and iptables)."""

from __future__ import annotations

import itertools
import random

import pytest
from ansible.errors import AnsibleFilterError
from netns import BACKENDS, Routed
from sample import ADDRESSES, EDGE, compile_for, edge_ir

from ansible_collections.warden.egress.plugins.filter.explain import explain
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate

# Two inside interfaces: the role hosts behind eth0, the workstation segment behind eth2.
TWO_INSIDE = {
    **EDGE,
    "inside": [
        {"interface": "eth0", "prefixes": ["198.51.100.0/26", "2001:db8:10::/123"]},
        {"interface": "eth2", "prefixes": ["198.51.100.64/26", "2001:db8:10::40/123"]},
    ],
}


def flow(src, dst, dport=443, proto="tcp", **more):
    return {"src": src, "dst": dst, "dport": dport, "proto": proto, **more}


DEFAULTS = [
    # (edge, flow, iif, oif, reason fragment)
    (EDGE, flow("198.51.100.15", "203.0.113.80"), "eth0", "eth1", "default deny"),
    (EDGE, flow("198.51.100.13", "203.0.113.9"), "eth0", "eth1", "role web_proxy: https to any"),
    (EDGE, flow("198.51.100.13", "203.0.113.9", 6667), "eth0", "eth1", "alert: irc"),
    (EDGE, flow("2001:db8:10::11", "2001:db8:5100::25", 25), "eth0", "eth1", "role mail_server: smtp to smtp_relays"),
    # A forged source comes in by the only inside interface.
    (EDGE, flow("198.51.100.200", "203.0.113.25", 25), "eth0", "eth1", "anti-spoofing on eth0"),
    # Between inside hosts: not leaving by the outside.
    (EDGE, flow("198.51.100.65", "198.51.100.13", 3128), "eth0", "eth0", "not leaving by the outside"),
    # Inbound: from the Internet to an inside host.
    (EDGE, flow("203.0.113.9", "198.51.100.13", 80), "eth1", "eth0", "not leaving by the outside"),
    # Two inside interfaces: each source comes in by its own (by eth0, the segment's
    # source would be forged).
    (TWO_INSIDE, flow("198.51.100.70", "203.0.113.80", 80), "eth2", "eth1", "default deny"),
    (TWO_INSIDE, flow("2001:db8:10::44", "2001:db8:5100::80", 80), "eth2", "eth1", "default deny"),
    (TWO_INSIDE, flow("198.51.100.13", "203.0.113.9"), "eth0", "eth1", "role web_proxy: https to any"),
]


@pytest.mark.parametrize(("edge", "packet", "iif", "oif", "reason"), DEFAULTS)
def test_edge_interfaces_default_as_the_gateway_meets_them(edge, packet, iif, oif, reason):
    ir = edge_ir(edge=edge)
    decision = explain(ir, packet)
    assert (decision["iif"], decision["oif"]) == (iif, oif)
    assert reason in decision["reason"], decision
    assert decision == evaluate(ir, {**packet, "iif": iif, "oif": oif})


def test_edge_interfaces_can_be_given():
    ir = edge_ir(edge=TWO_INSIDE)
    segment_host = flow("198.51.100.70", "203.0.113.80", 80)
    assert "anti-spoofing on eth0" in explain(ir, {**segment_host, "iif": "eth0"})["reason"]
    assert "no transit" in explain(ir, flow("203.0.113.9", "203.0.113.10", iif="eth1", oif="eth1"))["reason"]
    assert "declared neither" in explain(ir, {**segment_host, "iif": "eth7"})["reason"]
    assert "not leaving by the outside" in explain(ir, {**segment_host, "oif": "eth0"})["reason"]


def test_edge_source_in_no_inside_prefix_needs_its_interface_when_there_are_several():
    ir = edge_ir(edge=TWO_INSIDE)
    with pytest.raises(AnsibleFilterError, match=r"flow.iif: None is required: source 198.51.100.200 is in no inside prefix .*inside: eth0, eth2"):
        explain(ir, flow("198.51.100.200", "203.0.113.80"))
    assert "anti-spoofing on eth2" in explain(ir, flow("198.51.100.200", "203.0.113.80", iif="eth2"))["reason"]


@pytest.mark.parametrize("bad", ["eth0\n", "", "eth 0", "eth0;"])
def test_bad_interface_is_refused(bad):
    assert explain(edge_ir(), flow("198.51.100.13", "203.0.113.9", iif="eth0"))["iif"] == "eth0"
    with pytest.raises(AnsibleFilterError, match=r"flow.iif"):
        explain(edge_ir(), flow("198.51.100.13", "203.0.113.9", iif=bad))


def test_host_policy_is_unchanged():
    decision = explain(compile_for("mail1"), flow("198.51.100.11", "203.0.113.25", 25))
    assert (decision["verdict"], decision["iif"], decision["oif"]) == ("accept", None, "eth0")
    assert explain(compile_for("mail1"), flow("127.0.0.1", "127.0.0.1", 5))["oif"] == "lo"


def test_port_is_dport_as_a_person_writes_it_and_a_user_is_asked_about():
    """mail1's role lets only postfix send mail: the filter answers for the user named."""
    ir = compile_for("mail1", egress_roles={"web_mail": {"allow": [{"service": "smtp", "to": "smtp_relays", "users": ["postfix"]}]}},
                     egress_role="web_mail")
    mail = {"src": "198.51.100.11", "dst": "203.0.113.25", "port": 25}
    assert explain(ir, {**mail, "user": "postfix"})["verdict"] == "accept"
    assert explain(ir, {**mail, "user": "www-data"})["verdict"] == "drop"
    assert explain(ir, mail)["verdict"] == "drop"
    assert explain(ir, {**mail, "user": "postfix"}) == explain(ir, {"src": "198.51.100.11", "dst": "203.0.113.25", "dport": 25, "user": "postfix"})
    with pytest.raises(AnsibleFilterError, match=r"flow.port: 70000 is not a port \(1-65535\)"):
        explain(ir, {**mail, "port": 70000})
    with pytest.raises(AnsibleFilterError, match=r"flow.user: 'post fix' is not a local user name or number"):
        explain(ir, {**mail, "user": "post fix"})
    with pytest.raises(AnsibleFilterError, match=r"is another name for"):
        explain(ir, {**mail, "dport": 25})


# --------------------------------------------------------------------------- the kernel

SEGMENT_V4, SEGMENT_V6 = "198.51.100.70", "2001:db8:10::44"
SPOOF_V4, SPOOF_V6 = "198.51.100.200", "2001:db8:10::1:200"
CLIENT_V4 = [a[0] for a in ADDRESSES.values()] + [SEGMENT_V4, SPOOF_V4]
CLIENT_V6 = [a[1] for a in ADDRESSES.values()] + [SEGMENT_V6, SPOOF_V6]
# Behind the world namespace; 203.0.113.200 is in the sample edge's never_leave.
DESTS = ["203.0.113.9", "203.0.113.25", "203.0.113.53", "203.0.113.80", "203.0.113.200",
         "2001:db8:5100::9", "2001:db8:5100::25", "2001:db8:5100::53", "2001:db8:5100::80"]
PORTS = [22, 25, 53, 80, 179, 443, 6667, 31337]


def sample_flows(count: int, seed: int) -> list[dict]:
    every = [
        flow(src, dst, port, proto)
        for dst, port, proto in itertools.product(DESTS, PORTS, ("tcp", "udp"))
        for src in (CLIENT_V6 if ":" in dst else CLIENT_V4)
    ]
    return random.Random(seed).sample(every, count)


@pytest.fixture(scope="module")
def routed():
    with Routed(CLIENT_V4, CLIENT_V6) as topology:
        yield topology


@pytest.mark.parametrize("backend", BACKENDS)
def test_explain_agrees_with_the_gateway_kernel(routed, backend):
    """Flows sent from inside hosts through a gateway that loads the edge policy: explain,
    given only addresses, port and protocol, answers what the kernel does, and what the
    oracle says for the interfaces the packets really used (in eth0, out eth1)."""
    ir = edge_ir()
    flows = sample_flows(200, seed=10) + [
        flow("198.51.100.11", "203.0.113.25", 25), flow("2001:db8:10::11", "2001:db8:5100::25", 25),
        flow("198.51.100.13", "203.0.113.9", 443), flow("2001:db8:10::13", "2001:db8:5100::9", 80),
        flow("198.51.100.14", "203.0.113.80", 443), flow(SEGMENT_V4, "203.0.113.9", 80), flow(SEGMENT_V6, "2001:db8:5100::80", 443),
        flow("198.51.100.12", "203.0.113.53", 53, "udp"), flow("2001:db8:10::12", "2001:db8:5100::53", 53, "udp"),
    ]
    answers = [explain(ir, f) for f in flows]
    routed.load(ir, backend)
    try:
        observed = routed.probe([{"src": f["src"], "dst": f["dst"], "port": f["dport"], "proto": f["proto"]} for f in flows],
                                timeout=0.7, workers=32)
    finally:
        routed.unload()
    disagreements = [(f, a["verdict"], a["reason"], o["outcome"]) for f, a, o in zip(flows, answers, observed)
                     if (a["verdict"] == "accept") != o["passed"]]
    assert not disagreements
    assert answers == [evaluate(ir, {**f, "iif": "eth0", "oif": "eth1"}) for f in flows]
    # Both verdicts, and the kinds of rule an edge decides by, are in the sample.
    assert sum(a["verdict"] == "accept" for a in answers) >= 10
    reasons = {a["reason"].split(":")[0] for a in answers}
    assert {"baseline", "role mail_server", "role web_proxy", "role dns_resolver", "exception 0", "alert", "default deny"} <= reasons
