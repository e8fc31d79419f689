"""The oracle: first match, baseline, anti-spoofing, audit mode, exceptions, bad flows."""

from __future__ import annotations

import pytest
from sample import compile_for

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate

CASES = [
    # host, flow, verdict, origin
    ("mail1", {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "tcp", "dport": 25}, "accept", "role:mail_server"),
    ("mail1", {"src": "2001:db8:10::11", "dst": "2001:db8:5100::25", "proto": "tcp", "dport": 25}, "accept", "role:mail_server"),
    ("mail1", {"src": "198.51.100.11", "dst": "203.0.113.99", "proto": "tcp", "dport": 25}, "drop", "alert"),
    ("proxy1", {"src": "198.51.100.13", "dst": "203.0.113.99", "proto": "tcp", "dport": 6667}, "drop", "alert"),
    ("mail1", {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "udp", "dport": 25}, "drop", "default"),
    ("mail1", {"src": "198.51.100.200", "dst": "203.0.113.25", "proto": "tcp", "dport": 25}, "drop", "baseline"),
    ("mail1", {"src": "2001:db8:10::1:200", "dst": "2001:db8:5100::25", "proto": "tcp", "dport": 25}, "drop", "baseline"),
    ("mail1", {"src": "198.51.100.200", "dst": "203.0.113.25", "proto": "tcp", "dport": 25, "ct_state": "established"}, "accept", "baseline"),
    ("mail1", {"src": "127.0.0.1", "dst": "127.0.0.1", "proto": "tcp", "dport": 5}, "accept", "baseline"),
    ("mail1", {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "tcp", "dport": 25, "ct_state": "invalid"}, "drop", "baseline"),
    ("mail1", {"src": "fe80::1", "dst": "ff02::1:ff00:25", "proto": "icmp", "icmp_type": "nd-neighbor-solicit", "hoplimit": 255}, "accept", "baseline"),
    ("mail1", {"src": "fe80::1", "dst": "ff02::1:ff00:25", "proto": "icmp", "icmp_type": "nd-neighbor-solicit", "hoplimit": 64}, "drop", "baseline"),
    ("mail1", {"src": "2001:db8:10::11", "dst": "2001:db8:5100::25", "proto": "icmp", "icmp_type": "packet-too-big"}, "accept", "baseline"),
    ("mail1", {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "icmp"}, "drop", "default"),
    ("proxy1", {"src": "198.51.100.13", "dst": "203.0.113.1", "proto": "tcp", "dport": 443}, "accept", "role:web_proxy"),
    ("proxy1", {"src": "2001:db8:10::13", "dst": "2001:db8:ffff::1", "proto": "tcp", "dport": 80}, "accept", "role:web_proxy"),
    ("ws1", {"src": "198.51.100.14", "dst": "203.0.113.80", "proto": "tcp", "dport": 443}, "accept", "exception:0"),
    ("ws1", {"src": "198.51.100.14", "dst": "203.0.113.81", "proto": "tcp", "dport": 443}, "drop", "default"),
    ("intranet1", {"src": "198.51.100.15", "dst": "198.51.100.12", "proto": "udp", "dport": 53}, "drop", "default"),
]


@pytest.mark.parametrize(("host", "flow", "verdict", "origin"), CASES)
def test_cases(host, flow, verdict, origin):
    decision = evaluate(compile_for(host), flow)
    assert (decision["verdict"], decision["origin"]) == (verdict, origin), decision


def test_audit_mode_accepts_but_says_denied():
    decision = evaluate(compile_for("mail1", egress_mode="audit"), {"src": "198.51.100.11", "dst": "203.0.113.99", "dport": 25})
    assert decision["verdict"] == "accept" and decision["denied"] is True


@pytest.mark.parametrize(("flow", "path"), [
    ({"src": "198.51.100.11", "dst": "203.0.113.300", "dport": 25}, "flow.dst"),
    ({"src": "198.51.100.11", "dst": "2001:db8::1", "dport": 25}, "flow.dst"),
    ({"src": "198.51.100.11", "dst": "203.0.113.3", "dport": 0}, "flow.dport"),
    ({"src": "198.51.100.11", "dst": "203.0.113.3", "proto": "sctp", "dport": 1}, "flow.proto"),
    ({"src": "198.51.100.11", "dst": "203.0.113.3", "dport": 1, "colour": "red"}, "flow.colour"),
    ({"dst": "203.0.113.3", "dport": 1}, "flow.src"),
])
def test_bad_flows(flow, path):
    with pytest.raises(PolicyError) as info:
        evaluate(compile_for("mail1"), flow)
    assert info.value.path == path
