"""IOS apply mode reads the router's ACLs from its running configuration with the collection's
strict reader (``read_ios_running``, the role's ``read_acls`` step) instead of
``cisco.ios.ios_acls`` ``state: gathered``, whose parser takes minutes on thousands of
entries. What it returns is what the plan took before: the collection's ACLs as cisco.ios
returns them, read alike by the plan, so the plan is the same. Text it does not read is an
error naming the line, never an ACL left out; other people's ACLs are not read."""

from __future__ import annotations

import functools

import pytest
from test_render_acl import device_text, ir_for, read, roundtrip, trip_for

from ansible.errors import AnsibleActionFail
from ansible_collections.warden.egress.plugins.action.network_acl_step import run_step
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.apply import acl_names, plan
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import NAMES
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import read_ios, read_ios_object_groups, read_ios_running

OUTSIDE = "eth1"  # sample.EDGE
# Other ACLs a router may hold, in forms the strict reader does not read: passed over whole.
FOREIGN = "\n".join([
    "ip access-list standard MGMT",
    " 10 permit 192.0.2.0 0.0.0.255",
    "ip access-list extended EDGE-IN",
    " 10 permit tcp any eq 80 any log-input",
    " 20 deny ip any any time-range NIGHT",
    "ip access-list extended WARDEN-EGRESS-V4-3-old",
    " 10 permit tcp any eq 22 any",
    "access-list 101 permit tcp any eq 80 any",
    "ipv6 access-list EDGE6",
    " sequence 10 permit tcp any eq www any",
])


def binding(names: dict) -> list:
    """The outside interface as cisco.ios.ios_acl_interfaces gathers it, bound out to ``names``."""
    return [{"name": OUTSIDE, "access_groups": [{"afi": family, "acls": [{"name": name, "direction": "out"}]} for family, name in names.items()]}]


@functools.cache
def texts() -> dict:
    """Device texts of the collection's ACLs (the default case as cisco.ios rendered it), and
    cisco.ios' own parse of each, which is what ``state: gathered`` returns for that text."""
    held = device_text("ios", trip_for("ios")["rendered"]["default"])
    changed = held.replace(" any eq 443\n", " any eq 444\n", 1)  # one entry of the policy changed
    assert changed != held
    # generation 3 beside the plain names (their groups' names with it: a group is named after its ACL)
    older = held + "\n" + held.replace("WARDEN-EGRESS-V4", "WARDEN-EGRESS-V4-3").replace("WARDEN-EGRESS-V6", "WARDEN-EGRESS-V6-3")
    cases = {"held": held, "changed": changed, "older": older}
    return {"text": cases, "parsed": roundtrip("ios", parse=cases)["parsed"]}


def test_the_running_configuration_reads_as_cisco_ios_parses_it():
    trip = trip_for("ios")
    for name in ("default", "routes", "flat"):
        text = FOREIGN + "\n" + device_text("ios", trip["rendered"][name])
        read_back = read_ios_running(text)
        assert sum(len(acl["aces"]) for afi in read_back for acl in afi["acls"]) > 20, name
        # as the plan reads it (object groups by name), and with the groups' members, as the check reads it
        assert read_ios(read_back) == read_ios(trip["parsed"][name]), name
        groups = trip["groups"].get(name)
        assert read_ios(read_back, groups and read_ios_object_groups(groups)) == read(trip, name), name


@pytest.mark.parametrize("case, bound, load, deletes", [
    ("held", NAMES, False, set()),  # the live ACLs hold the policy: nothing is loaded
    ("changed", NAMES, True, set(NAMES.values())),  # they do not: the next generation, and the live ones go after it
    ("older", NAMES, False, set(acl_names(3).values())),  # an older generation bound nowhere goes
    ("older", acl_names(3), False, set(NAMES.values())),  # generation 3 live and holding the policy: the plain names go
])
def test_the_plan_from_the_running_configuration_is_the_plan_from_what_cisco_ios_gathers(case, bound, load, deletes):
    ir, data = ir_for("default"), texts()
    others = FOREIGN.replace("MGMT", "MGMT2").replace("EDGE", "EDGE2").replace(" 101 ", " 102 ")
    ours = read_ios_running(FOREIGN + "\n" + data["text"][case] + "\n" + others)
    assert read_ios(ours) == read_ios(data["parsed"][case])
    planned = plan(ir, "ios", ours, binding(bound))
    assert planned == plan(ir, "ios", data["parsed"][case], binding(bound))
    assert planned["load"] is load and {acl["name"] for afi in planned["delete"] for acl in afi["acls"]} == deletes
    assert bool(planned["delete_groups"]) is bool(deletes)  # the object groups of the ACLs that go


def test_an_empty_section_is_a_router_with_no_acls_and_an_empty_acl_is_read_as_one():
    assert read_ios_running("") == [] and read_ios_running(FOREIGN) == []
    assert read_ios_running("ip access-list extended WARDEN-EGRESS-V4-2\nipv6 access-list WARDEN-EGRESS-V6-2") == [
        {"afi": "ipv4", "acls": [{"name": "WARDEN-EGRESS-V4-2", "acl_type": "extended", "aces": []}]},
        {"afi": "ipv6", "acls": [{"name": "WARDEN-EGRESS-V6-2", "aces": []}]}]


V4 = "ip access-list extended WARDEN-EGRESS-V4-2\n 10 permit tcp 198.51.100.0 0.0.0.127 any established\n"


@pytest.mark.parametrize("text, message", [
    (V4 + " 20 permit tcp any eq 80 any", r"line 3 of the router's 'show running-config \| section access-list' \('20 permit tcp any eq 80 any'\)"),
    (V4 + " 20 permit tcp any any eq 443 dscp ef", r"line 3 .*'dscp ef' is not read"),
    (V4 + " 20 permit tcp any any eq nosuchport", r"line 3 .*nosuchport"),
    (V4 + " 20 permit ip any 2001:db8::/32", r"line 3 "),
    (V4 + " permit ip any any", r"line 3 .*not a line of an ACL"),
    ("ipv6 access-list WARDEN-EGRESS-V6-2\n sequence 10 permit ip any any", r"line 2 .*not an entry this check reads"),
    ("ipv6 access-list WARDEN-EGRESS-V6-2\n sequence 10 permit tcp 198.51.100.0/25 any", r"line 2 .*198.51.100.0/25 in an ipv6 ACL"),
    (FOREIGN + "\nip access-list standard WARDEN-EGRESS-V4-3\n 10 permit any", r"line 11 .*names one of the collection's ACLs in a form this reader does not"),
    ("ip access-list role-based WARDEN-EGRESS-V6", r"line 1 .*names one of the collection's ACLs"),
    (" 10 permit ip any any\n" + V4, r"line 1 .*belongs to no section"),
    (V4 + V4, r"line 3 .*ACL WARDEN-EGRESS-V4-2 listed twice"),
], ids=["source port", "option", "port name", "family", "no number", "ip in ipv6", "ipv4 in ipv6", "standard", "role-based", "no section", "twice"])
def test_text_it_does_not_read_stops_the_read_naming_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        read_ios_running(text)


def test_the_roles_step_reads_the_router_and_refuses_what_it_cannot_read():
    assert run_step({"step": "read_acls", "text": V4}) == {"gathered": read_ios_running(V4)}
    assert read_ios_running(V4)[0]["acls"][0]["aces"][0]["protocol_options"] == {"tcp": {"established": True}}
    with pytest.raises(AnsibleActionFail, match=r"network_acl_step: read_acls: line 3 of the router's .*dscp ef"):
        run_step({"step": "read_acls", "text": V4 + " 20 permit tcp any any eq 443 dscp ef"})
    with pytest.raises(AnsibleActionFail, match="step read_acls takes no platform"):
        run_step({"step": "read_acls", "text": V4, "platform": "ios"})
    with pytest.raises(AnsibleActionFail, match="step read_acls needs text"):
        run_step({"step": "read_acls", "text": None})
