"""warden.egress.network_acl_step: the network_acl role's controller-side steps, each the
render.acl function it names, behind one action. Its arguments are read against the module's
DOCUMENTATION (types, choices, what each step needs), an option of another step is refused,
and a step's refusal fails the task naming the step."""

from __future__ import annotations

import copy
import json
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from sample import edge_ir

from ansible_collections.warden.egress.plugins.action.network_acl_step import ActionModule, run_step
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.apply import acl_names
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import device_config
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import ios_sample

IOS_RENDERED = ["ip access-list extended WARDEN-EGRESS-V4", "10 deny ip any any log",
                "ipv6 access-list WARDEN-EGRESS-V6", "deny ipv6 any any log sequence 10"]
EOS_RENDERED = ["ip access-list WARDEN-EGRESS-V4", "10 deny ip any any log"]
IOS_TEXT = "ip access-list extended WARDEN-EGRESS-V4\n" + "".join(f" {n} permit tcp any host 203.0.113.{n % 250} eq 443\n" for n in range(10, 1010, 10))
IOS_TIMER = "Timer type: Rollback Confirmed Change\nTimer value: 1 min"
EOS_SESSIONS = json.dumps({"sessions": {"warden-egress-1": {"state": "pendingCommitTimer"}, "other": {"state": "completed"}}})
JUNOS_COMMITS = "0   2026-12-01 10:00:00 UTC by ops via netconf commit confirmed, rollback in 5mins\n1   2026-11-30 09:00:00 UTC by ops via cli\n"
G3 = acl_names(3)
GATHERED = [{"name": "Gi0/1", "access_groups": [{"afi": "ipv4", "acls": [{"name": G3["ipv4"], "direction": "out"}]},
                                                {"afi": "ipv6", "acls": [{"name": G3["ipv6"], "direction": "out"}]}]}]


def eos_check(**overrides) -> dict:
    ir = edge_ir(egress_platform="eos")
    return {"step": "check", "platform": "eos", "parsed": device_config(ir, "eos"), "policy": ir, "count": 300, **overrides}


@pytest.mark.parametrize(("args", "expected"), [
    ({"step": "device_form", "platform": "ios", "rendered": IOS_RENDERED},
     {"form": "ip access-list extended WARDEN-EGRESS-V4\n 10 deny ip any any log\nipv6 access-list WARDEN-EGRESS-V6\n sequence 10 deny ipv6 any any log"}),
    ({"step": "device_form", "platform": "eos", "rendered": EOS_RENDERED}, {"form": "\n".join(EOS_RENDERED)}),
    ({"step": "device_form", "platform": "eos", "rendered": EOS_RENDERED, "load": "yes", "session": "s1", "timer": "00:05:00"},
     {"form": ["configure session s1", *EOS_RENDERED, "end", "configure session s1 commit timer 00:05:00"]}),
    ({"step": "parse_sample", "text": IOS_TEXT, "sample_lines": "20"}, {"sample": ios_sample(IOS_TEXT, 20)}),
    ({"step": "parse_sample", "text": IOS_TEXT}, {"sample": ios_sample(IOS_TEXT, 200)}),
    ({"step": "pending", "platform": "ios", "output": IOS_TIMER}, {"pending": ["rollback timer"]}),
    ({"step": "pending", "platform": "ios", "output": "%No Rollback Confirmed Change pending"}, {"pending": []}),
    ({"step": "pending", "platform": "eos", "output": EOS_SESSIONS}, {"pending": ["warden-egress-1"]}),
    ({"step": "pending", "platform": "eos", "output": json.loads(EOS_SESSIONS)}, {"pending": ["warden-egress-1"]}),
    ({"step": "pending", "platform": "junos", "output": JUNOS_COMMITS}, {"pending": ["commit confirmed"]}),
    ({"step": "bound", "gathered": GATHERED, "interface": "Gi0/1"}, {"bound": G3}),
    ({"step": "bound", "gathered": GATHERED, "interface": "Gi0/2"}, {"bound": {}}),
    ({"step": "bound", "gathered": GATHERED}, {"bound": GATHERED}),
    ({"step": "bound", "gathered": "interface Ethernet2\n   ip access-group WARDEN-EGRESS-V4-3 out\n", "interface": "Ethernet2"},
     {"bound": {"ipv4": G3["ipv4"]}}),
], ids=["ios-form", "eos-form", "eos-session", "sample", "sample-default", "ios-pending", "ios-nothing-pending", "eos-pending",
        "eos-pending-json", "junos-pending", "bound", "bound-elsewhere", "bindings", "eos-text-bound"])
def test_each_step_returns_its_value_under_its_key(args, expected):
    assert run_step(args) == expected


def test_check_holds_the_acls_to_the_policy():
    assert run_step(eos_check()) == {"disagree": []}
    args = eos_check()
    broken = copy.deepcopy(args["parsed"])
    aces = broken[0]["acls"][0]["aces"]
    permit = next(i for i, ace in enumerate(aces) if ace.get("grant") == "permit" and "port_protocol" in ace.get("destination", {}))
    aces[permit]["grant"] = "deny"
    found = run_step({**args, "parsed": broken})["disagree"]
    assert found and {(item["oracle"], item["acl"]) for item in found} == {("accept", "deny")}


@pytest.mark.parametrize(("args", "message"), [
    ({"platform": "ios"}, "missing required arguments: step"),
    ({"step": "render", "platform": "ios"}, "value of step must be one of: device_form, parse_sample, check, pending, bound, read_acls, got: render"),
    ({"step": "check", "platform": "eos", "parsed": []}, "step is check but all of the following are missing: policy"),
    ({"step": "device_form", "platform": "eos"}, "step is device_form but all of the following are missing: rendered"),
    ({"step": "pending", "output": IOS_TIMER}, "step is pending but all of the following are missing: platform"),
    ({"step": "pending", "platform": "nxos", "output": IOS_TIMER}, "value of platform must be one of: ios, eos, junos, got: nxos"),
    ({"step": "pending", "platform": "ios", "output": IOS_TIMER, "load": True},
     "warden.egress.network_acl_step: step pending takes no load (its options: platform, output)"),
    ({"step": "check", "platform": "ios", "parsed": [], "policy": {}, "object_groups": []}, "step check takes no object_groups"),
    ({"step": "device_form", "platform": "eos", "rendered": EOS_RENDERED, "load": "maybe"}, "load"),
    ({"step": "check", "platform": "eos", "parsed": [], "policy": edge_ir(egress_platform="eos"), "count": "many"}, "count"),
    ({"step": "device_form", "platform": "eos", "rendered": None}, "step device_form needs rendered, given as null"),
    ({"step": "parse_sample", "text": None}, "step parse_sample needs text, given as null"),
    ({"step": ["pending"], "platform": "ios", "output": IOS_TIMER}, "value of step must be one of"),
], ids=["no-step", "unknown-step", "check-without-policy", "form-without-rendered", "pending-without-platform", "unknown-platform",
        "option-of-another-step", "device-form-option-in-check", "bad-bool", "bad-int", "null-rendered", "null-text", "step-a-list"])
def test_arguments_are_read_against_the_documentation(args, message):
    with pytest.raises(AnsibleActionFail, match="^warden.egress.network_acl_step: ") as raised:
        run_step(args)
    assert message in str(raised.value)


@pytest.mark.parametrize(("args", "message"), [
    ({"step": "device_form", "platform": "junos", "rendered": "<nc:firewall/>", "load": True},
     "device_form: the rendered Junos configuration has no inet6 filter"),
    ({"step": "check", "platform": "ios", "parsed": [], "policy": edge_ir()},
     "check: the parsed configuration has no entries in WARDEN-EGRESS-V4, WARDEN-EGRESS-V6"),
    ({"step": "check", "platform": "eos", "parsed": [], "policy": {"kind": "edge"}},
     "check: policy is not a Policy IR from warden.egress.edge_policy: it has no schema"),
    ({"step": "check", "platform": "eos", "parsed": [], "policy": edge_ir(), "text": "x"}, "check: text is read on ios only, not on eos"),
    ({"step": "pending", "platform": "ios", "output": "% Invalid input"}, "pending: cannot tell from the IOS output whether a rollback timer is running"),
    ({"step": "pending", "platform": "eos", "output": "not json"}, "pending: the EOS session list is not JSON"),
    ({"step": "bound", "gathered": {"Gi0/1": G3}, "interface": "Gi0/1"}, "bound: gathered is not the gathered list of an *_acl_interfaces module"),
    ({"step": "parse_sample", "text": IOS_TEXT, "sample_lines": 0}, "parse_sample: lines 0 is not a positive number"),
], ids=["junos-load", "check-empty", "check-not-an-ir", "check-text-not-ios", "ios-unreadable", "eos-not-json", "bound-not-a-list", "sample-zero"])
def test_a_step_that_refuses_names_itself(args, message):
    with pytest.raises(AnsibleActionFail) as raised:
        run_step(args)
    assert str(raised.value).startswith(f"warden.egress.network_acl_step: {message}"), str(raised.value)


def test_the_action_runs_the_step_on_the_controller_and_changes_nothing():
    task = MagicMock(args={"step": "pending", "platform": "ios", "output": IOS_TIMER}, async_val=0, check_mode=True, diff=False)
    action = ActionModule(task, MagicMock(), MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    assert ActionModule._requires_connection is False
    result = action.run(task_vars={})
    assert result["pending"] == ["rollback timer"] and result["changed"] is False and not result.get("failed")
    task.args = {"step": "pending", "platform": "ios", "output": IOS_TIMER, "extra": 1}
    with pytest.raises(AnsibleActionFail, match="extra"):
        action.run(task_vars={})
