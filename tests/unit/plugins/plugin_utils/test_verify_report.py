"""expect_flows passes inconclusive_ok on (and refuses a value Ansible does not take as a boolean); the
flow table tells an inconclusive flow from a mismatch and from an accepted one."""

from __future__ import annotations

import pytest
from sample import ADDRESSES, compile_for

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.report import flow_table, result
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.verify import expect_flows


def test_inconclusive_ok_is_passed_on_and_defaults_to_false():
    flows = expect_flows(compile_for("mail1"), [
        {"name": "a", "dst": "203.0.113.80", "port": 80},
        {"name": "b", "dst": "203.0.113.80", "port": 80, "inconclusive_ok": True},
    ], ADDRESSES["mail1"])
    assert [(f["expect"], f["inconclusive_ok"]) for f in flows] == [("denied", False), ("denied", True)]


@pytest.mark.parametrize("value", ["maybe", 2, None, ""])
def test_inconclusive_ok_must_be_a_boolean(value):
    with pytest.raises(PolicyError) as error:
        expect_flows(compile_for("mail1"), [{"dst": "203.0.113.80", "port": 80, "inconclusive_ok": value}], ADDRESSES["mail1"])
    assert str(error.value).startswith(f"egress_verify_flows[0].inconclusive_ok: {value!r} must be true or false")


ROW = {"host": "mail1", "dst": "203.0.113.80", "port": 80, "proto": "tcp", "expect": "denied"}


@pytest.mark.parametrize(("observed", "outcome", "ok", "verdict"), [
    ("denied", "timeout", True, "ok"),
    ("allowed", "connected", False, "MISMATCH"),
    ("inconclusive", "unreachable", False, "INCONCLUSIVE"),
    ("inconclusive", "unreachable", True, "accepted"),
])
def test_result_column(observed, outcome, ok, verdict):
    assert result({**ROW, "observed": observed, "outcome": outcome, "ok": ok}) == verdict


def test_summary_counts_inconclusive_apart():
    rows = [
        {**ROW, "name": "drop", "observed": "denied", "outcome": "timeout", "ok": True},
        {**ROW, "name": "open", "observed": "allowed", "outcome": "connected", "ok": False},
        {**ROW, "name": "no route", "observed": "inconclusive", "outcome": "unreachable", "ok": False},
        {**ROW, "name": "no route, accepted", "observed": "inconclusive", "outcome": "unreachable", "ok": True},
    ]
    lines = flow_table(rows).splitlines()
    assert lines[-1] == "4 flows: 1 as expected, 1 mismatched, 2 inconclusive (1 accepted by inconclusive_ok, 1 failing)"
    assert "inconclusive (unreachable)  INCONCLUSIVE" in lines[4]
    assert "inconclusive (unreachable)  accepted" in lines[5]
    # Without inconclusive rows the summary reads as it always did.
    assert flow_table(rows[:2]).splitlines()[-1] == "2 flows: 1 as expected, 1 mismatched"


@pytest.mark.parametrize(("flow", "path", "value"), [
    ({"dst": "203.0.113.25", "port": "https"}, "egress_verify_flows[0].port", "https"),
    ({"dst": "203.0.113.25", "port": "²5"}, "egress_verify_flows[0].port", "²5"),
    ({"dst": "203.0.113.25"}, "egress_verify_flows[0].port", None),
    ({"dst": "203.0.113.25", "port": 25, "src": "198.51.100.300"}, "egress_verify_flows[0].src", "198.51.100.300"),
    ({"dst": "203.0.113.25", "port": 25, "user": "post fix"}, "egress_verify_flows[0].user", "post fix"),
    ({"dst": "203.0.113.25", "port": 25, "user": "postfix", "group": ["mail"]}, "egress_verify_flows[0].group", ["mail"]),
    ({"direction": "inbound", "from_host": "ws1", "port": 0}, "egress_verify_flows[0].port", 0),
], ids=["port-name", "port-other-digits", "no-port", "bad-src", "bad-user", "bad-group", "inbound-port"])
def test_a_bad_flow_is_named_by_its_place_in_egress_verify_flows(flow, path, value):
    """The flow's checks are the one Flow's, under the variable the flow was written in."""
    peers = {"ws1": {"addresses": ADDRESSES["ws1"], "policy": None}}
    with pytest.raises(PolicyError) as err:
        expect_flows(compile_for("mail1"), [flow], ADDRESSES["mail1"], peers=peers)
    assert (err.value.path, err.value.value) == (path, value)


def test_a_flow_row_keeps_the_keys_and_values_it_was_written_with():
    rows = expect_flows(compile_for("mail1"), [{"dst": "203.0.113.25", "port": "25", "user": 0, "group": "0"}], ADDRESSES["mail1"])
    assert rows == [{"name": "tcp/25 to 203.0.113.25", "dst": "203.0.113.25", "port": 25, "proto": "tcp", "src": None, "expect": "allowed",
                     "reason": rows[0]["reason"], "inconclusive_ok": False, "user": "0", "group": "0"}]
