"""The confirmed, atomic apply of device ACLs, offline: generation names, the plan made from
what the vendor modules gather on a device (which generation is live, whether it already
holds the policy, which old ACLs may go), each device's confirmation timer, what a show
command says is waiting for confirmation, and the command sequence of each step as the
vendors' own modules render it, read back by the same modules and held against the oracle."""

from __future__ import annotations

import functools
import json
import xml.dom.minidom

import pytest
from sample import edge_ir
from test_render_acl import roundtrip

from ansible.errors import AnsibleActionFail, AnsibleFilterError
from ansible_collections.warden.egress.plugins.filter.to_device_acls import to_device_acls
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.apply import acl_names, confirm_timer, name_generation, pending, plan
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import NAMES, bindings
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.acl_check import disagreements, sample_flows
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import device_config, read_parsed
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.eos import eos_bindings, eos_session
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import ios_device_form, ios_load, ios_object_group_lines, ios_render
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.junos import junos_load
from ansible_collections.warden.egress.plugins.action.network_acl_step import run_step

# One worker runs this module's tests (make unit: --dist loadgroup): steps() runs its round trips
# once, and no worker waits for another to finish one.
pytestmark = pytest.mark.xdist_group("test_render_acl_apply")

G2, G3 = acl_names(2), acl_names(3)


def binding(interface: str, names: dict, direction: str = "out") -> dict:
    """One interface's entry as *_acl_interfaces gathers it."""
    return {"name": interface, "access_groups": [{"afi": family, "acls": [{"name": name, "direction": direction}]} for family, name in names.items()]}


def deleted(config: list) -> set:
    return {(afi["afi"], acl["name"]) for afi in config for acl in afi["acls"]}


# ----------------------------------------------------------------------------- generation names

def test_generation_names():
    assert acl_names() == NAMES
    assert acl_names(7) == {"ipv4": "WARDEN-EGRESS-V4-7", "ipv6": "WARDEN-EGRESS-V6-7"}
    for bad in (0, -1, True, "3", 1000000, 2.0):
        with pytest.raises(ValueError, match="ACL generation"):
            acl_names(bad)
    assert name_generation("WARDEN-EGRESS-V4") == ("ipv4", 0)
    assert name_generation("WARDEN-EGRESS-V6-12") == ("ipv6", 12)
    # Only the collection's own names, whole: never a name that merely starts like one.
    for other in ("WARDEN-EGRESS-V4-0", "WARDEN-EGRESS-V4-01", "WARDEN-EGRESS-V4-3\n", "WARDEN-EGRESS-V4-3-old", "WARDEN-EGRESS-V5",
                  "warden-egress-v4-3", "EDGE-OUT", "", None, 4):
        assert name_generation(other) is None, other


# ----------------------------------------------------------------------------- the plan

@pytest.mark.parametrize("platform", ["ios", "eos"])
def test_a_fresh_device_gets_generation_one_and_nothing_is_deleted(platform):
    ir = edge_ir()
    planned = plan(ir, platform, [], [])
    assert planned["generation"] == 1 and planned["load"] and planned["names"] == acl_names(1)
    assert planned["delete"] == [] and planned["current"] == {}


@pytest.mark.parametrize("platform", ["ios", "eos"])
def test_a_changed_policy_gets_the_next_generation_and_old_unbound_ones_are_deleted(platform):
    ir = edge_ir()
    live = device_config(ir, platform, G2)
    for afi in live:
        afi["acls"][0]["aces"] = afi["acls"][0]["aces"][:-2]  # the device holds an older policy
    on_device = live + device_config(ir, platform) + device_config(ir, platform, acl_names(1))
    other_in = binding("eth0", acl_names(1), "in")  # generation 1 bound by hand, inbound elsewhere
    planned = plan(ir, platform, on_device + [{"afi": "ipv4", "acls": [{"name": "EDGE-IN", "aces": []}]}], [binding("eth1", G2), other_in])
    assert planned["load"] and planned["generation"] == 3 and planned["names"] == G3
    assert planned["current"] == G2
    # The live generation (rebound away from) and the plain names from 0.4 go; generation 1
    # is still bound, so it stays, and says so; another name is never touched.
    assert deleted(planned["delete"]) == {("ipv4", G2["ipv4"]), ("ipv6", G2["ipv6"]), ("ipv4", NAMES["ipv4"]), ("ipv6", NAMES["ipv6"])}
    assert planned["kept"] == [{"afi": "ipv4", "name": "WARDEN-EGRESS-V4-1"}, {"afi": "ipv6", "name": "WARDEN-EGRESS-V6-1"}]
    assert any("WARDEN-EGRESS-V4-1 is not deleted: it is still bound (eth0 in)" in w for w in planned["warnings"])


@pytest.mark.parametrize("platform", ["ios", "eos"])
def test_the_live_generation_holding_the_policy_is_not_loaded_again(platform):
    ir = edge_ir()
    planned = plan(ir, platform, device_config(ir, platform, G2) + device_config(ir, platform, G3), [binding("eth1", G2)])
    assert not planned["load"] and planned["generation"] == 2 and planned["names"] == G2
    assert deleted(planned["delete"]) == {("ipv4", G3["ipv4"]), ("ipv6", G3["ipv6"])}
    # A device upgraded from 0.4 (plain names bound) keeps them while they hold the policy.
    upgraded = plan(ir, platform, device_config(ir, platform), [binding("eth1", NAMES)])
    assert not upgraded["load"] and upgraded["generation"] is None and upgraded["names"] == NAMES and upgraded["delete"] == []


def test_one_entry_changed_or_families_on_different_generations_load_a_new_generation():
    ir = edge_ir()
    live = device_config(ir, "ios", G2)
    live[1]["acls"][0]["aces"][3]["grant"] = "permit" if live[1]["acls"][0]["aces"][3]["grant"] == "deny" else "deny"
    assert plan(ir, "ios", live, [binding("eth1", G2)])["generation"] == 3
    split = device_config(ir, "ios", G2) + device_config(ir, "ios", G3)
    mixed = plan(ir, "ios", split, [binding("eth1", {"ipv4": G2["ipv4"], "ipv6": G3["ipv6"]})])
    assert mixed["load"] and mixed["generation"] == 4
    assert deleted(mixed["delete"]) == {(f, n) for names in (G2, G3) for f, n in names.items()}


def test_another_acl_bound_out_on_the_outside_interface_is_an_error():
    with pytest.raises(ValueError, match=r"egress_edge.outside: 'eth1' has another ACL bound out \(ipv4 'EDGE-OUT'\).*network_acl_bind: false"):
        plan(edge_ir(), "eos", [], [binding("eth1", {"ipv4": "EDGE-OUT"})])
    # Bound elsewhere or inbound, it is left alone.
    assert plan(edge_ir(), "eos", [], [binding("eth1", {"ipv4": "EDGE-IN"}, "in"), binding("eth0", {"ipv4": "EDGE-OUT"})])["load"]


def test_without_bind_the_plain_names_are_replaced_in_place():
    ir = edge_ir()
    held = plan(ir, "eos", device_config(ir, "eos"), [], bind=False)
    assert not held["load"] and held["names"] == NAMES and held["replace"] == []
    older = device_config(ir, "eos")
    older[0]["acls"][0]["aces"].pop()
    changed = plan(ir, "eos", older + device_config(ir, "eos", G2), [binding("eth1", G2)], bind=False)
    assert changed["load"] and changed["names"] == NAMES and changed["replace"] == [["ipv4", NAMES["ipv4"]], ["ipv6", NAMES["ipv6"]]]
    # A generation a former run bound stays while it is bound: the role does not bind here.
    assert changed["delete"] == [] and len(changed["kept"]) == 2
    assert plan(ir, "eos", [], [], bind=False)["replace"] == []


def test_an_acl_of_the_wrong_family_is_not_taken_for_the_collections():
    ir = edge_ir()
    stray = [{"afi": "ipv6", "acls": [{"name": "WARDEN-EGRESS-V4-9", "aces": []}]}]
    planned = plan(ir, "ios", stray, [])
    assert planned["generation"] == 1 and planned["delete"] == []


def test_the_filter_plans_and_names_the_rendered_data():
    ir = edge_ir(egress_platform="ios")
    data = to_device_acls(ir, on_device=device_config(ir, "ios", G2), bound_on_device=[binding("eth1", G2)], confirm_timeout=90)
    assert not data["load"] and data["names"] == G2
    assert {afi["acls"][0]["name"] for afi in data["acls"]} == set(G2.values())
    assert data["interfaces"] == bindings(ir, G2)
    assert data["confirm"] == {"seconds": 120, "minutes": 2, "timer": None}
    assert to_device_acls(ir)["names"] == NAMES and to_device_acls(ir)["delete"] == []
    assert to_device_acls(ir, confirm_timeout="300")["confirm"]["minutes"] == 5
    with pytest.raises(AnsibleFilterError, match=r"to_device_acls: network_acl_confirm_timeout: 'soon' is not a whole number of seconds"):
        to_device_acls(ir, confirm_timeout="soon")
    with pytest.raises(AnsibleFilterError, match=r"to_device_acls: network_acl_confirm_timeout: 9000 is above the 7200 seconds ios allows"):
        to_device_acls(ir, confirm_timeout=9000)
    with pytest.raises(AnsibleFilterError, match=r"to_device_acls: egress_edge.outside: 'eth1' has another ACL bound out"):
        to_device_acls(ir, on_device=[], bound_on_device=[binding("eth1", {"ipv6": "V6-OUT"})])


# ----------------------------------------------------------------------------- confirmation timers

@pytest.mark.parametrize(("platform", "seconds", "expected"), [
    ("ios", 300, {"seconds": 300, "minutes": 5, "timer": None}),
    ("ios", 90, {"seconds": 120, "minutes": 2, "timer": None}),  # IOS counts whole minutes: rounded up
    ("ios", 7200, {"seconds": 7200, "minutes": 120, "timer": None}),
    ("junos", 61, {"seconds": 120, "minutes": 2, "timer": None}),
    ("eos", 300, {"seconds": 300, "minutes": 0, "timer": "00:05:00"}),
    ("eos", 3725, {"seconds": 3725, "minutes": 0, "timer": "01:02:05"}),
    ("eos", 0, {"seconds": 0, "minutes": 0, "timer": None}),
])
def test_confirm_timers(platform, seconds, expected):
    timer = confirm_timer(platform, seconds)
    assert timer.pop("warnings") == [] and timer == expected


@pytest.mark.parametrize(("platform", "seconds", "message"), [
    ("ios", 7201, "7201 is above the 7200 seconds ios allows"),
    ("eos", 86400, "86400 is above the 86399 seconds eos allows"),
    ("junos", 65535 * 60 + 1, "3932101 is above the 3932100 seconds junos allows"),
    ("ios", -5, "-5 is not a whole number of seconds"),
    ("eos", True, "True is not a whole number of seconds"),
    ("junos", 1.5, "1.5 is not a whole number of seconds"),
])
def test_bad_confirm_timeouts_name_the_variable(platform, seconds, message):
    with pytest.raises(ValueError, match=r"network_acl_confirm_timeout: " + message.replace("(", r"\(")):
        confirm_timer(platform, seconds)


def test_a_timeout_shorter_than_a_reconnection_warns():
    assert "may roll back before it is confirmed" in confirm_timer("eos", 45, reconnect=60)["warnings"][0]
    assert confirm_timer("eos", 60, reconnect=60)["warnings"] == []
    assert confirm_timer("ios", 30, reconnect=60)["warnings"] == []  # rounded up to one minute


# ----------------------------------------------------------------------------- what is pending

IOS_PENDING = """Time configured(or Reset): 10:02:11 UTC Mon Mar 2 2026
Timer type: Rollback Confirmed Change
Timer value: 5 min
User: netops
"""
JUNOS_PENDING = """0   2026-03-02 10:02:11 UTC by netops via netconf commit confirmed, rollback in 5mins
    warden.egress egress filters
1   2026-03-01 09:00:00 UTC by netops via cli
"""
JUNOS_CONFIRMED = """0   2026-03-02 10:03:40 UTC by netops via netconf
1   2026-03-02 10:02:11 UTC by netops via netconf commit confirmed, rollback in 5mins
2   2026-03-01 09:00:00 UTC by netops via cli
"""


@pytest.mark.parametrize(("platform", "output", "expected"), [
    ("ios", IOS_PENDING, ["rollback timer"]),
    ("ios", "%No Rollback Confirmed Change pending\n", []),
    ("eos", {"sessions": {"warden-egress-1": {"state": "pendingCommitTimer"}, "old": {"state": "completed"}}, "maxSavedSessions": 1}, ["warden-egress-1"]),
    ("eos", json.dumps({"sessions": {"a": {"state": "pending"}}}), []),
    ("eos", {"commitTimerSessionName": "warden-egress-2", "commitTimerExpireTime": 1234.5, "sessions": {}}, ["warden-egress-2"]),
    ("junos", JUNOS_PENDING, ["commit confirmed"]),
    ("junos", JUNOS_CONFIRMED, []),  # an older entry keeps its note after it is confirmed
])
def test_what_waits_for_confirmation(platform, output, expected):
    assert pending(platform, output) == expected


@pytest.mark.parametrize(("platform", "output"), [("ios", "% Invalid input detected"), ("eos", "not json"), ("eos", {"other": 1}), ("junos", "error: syntax")])
def test_unreadable_output_is_an_error_not_nothing_pending(platform, output):
    with pytest.raises(ValueError, match="cannot|not JSON"):
        pending(platform, output)


# ----------------------------------------------------------------------------- each step, rendered

@functools.cache
def steps(platform: str) -> dict:
    """Generation 3 of the policy and its bindings as the vendor's modules render them
    (state rendered), the load composed from that, and the load's ACL part read back by
    the same module (state parsed)."""
    ir = edge_ir()
    first = roundtrip(platform, render={"g3": device_config(ir, platform, G3), "plain": device_config(ir, platform)},
                      bind={"g3": bindings(ir, G3), "plain": bindings(ir)})
    acls, bound = first["rendered"]["g3"], first["bound"]["g3"]
    out = {"ir": ir, "acls": acls, "bound": bound, "plain": first["rendered"]["plain"]}
    if platform == "ios":
        out["groups"] = ios_render(ir, G3)["object_groups"]
        out["group_lines"] = ios_object_group_lines(out["groups"])
        out["load"] = ios_load(acls, bound, out["groups"]).splitlines()
        text = "\n".join(ios_device_form(out["load"][len(out["group_lines"]):len(out["group_lines"]) + len(acls)]))
    else:
        out["load"] = eos_session("warden-egress-20260302100211", acls, bound, "00:05:00")
        out["replace"] = eos_session("warden-egress-1", first["rendered"]["plain"], None, None, [("ipv4", NAMES["ipv4"]), ("ipv6", NAMES["ipv6"])])
        text = "\n".join(out["load"][1:1 + len(acls)])
    out["parsed"] = roundtrip(platform, parse={"g3": text})["parsed"]["g3"]
    return out


def test_ios_load_is_the_new_generation_then_one_binding_command_per_family():
    step = steps("ios")
    load, acls, groups = step["load"], step["acls"], step["group_lines"]
    # The object groups the new generation names come first (IOS needs a group defined
    # before an entry names it), each named after the generation, so none in use is edited.
    assert load[:len(groups)] == groups and groups[0].startswith("object-group network WARDEN-EGRESS-V4-3-")
    assert any(line.startswith("object-group v6-network WARDEN-EGRESS-V6-3-") for line in groups)
    assert load[len(groups):len(groups) + len(acls)] == list(acls)
    assert load[len(groups)] == "ip access-list extended WARDEN-EGRESS-V4-3" and "ipv6 access-list WARDEN-EGRESS-V6-3" in load
    # The rebinding: one command per family, each replacing the ACL bound out there; no
    # line ever removes a binding or edits an ACL that is bound.
    assert load[len(groups) + len(acls):] == ["interface eth1", "ip access-group WARDEN-EGRESS-V4-3 out", "ipv6 traffic-filter WARDEN-EGRESS-V6-3 out"]
    assert not any(line.startswith("no ") for line in load)
    assert not any(word in NAMES.values() for line in load for word in line.split())


def test_eos_load_is_one_session_committed_with_a_timer():
    step = steps("eos")
    load, acls = step["load"], step["acls"]
    assert load[0] == "configure session warden-egress-20260302100211"
    assert load[1:1 + len(acls)] == list(acls) and load[1] == "ip access-list WARDEN-EGRESS-V4-3"
    assert load[1 + len(acls):] == ["interface eth1", "ip access-group WARDEN-EGRESS-V4-3 out", "ipv6 access-group WARDEN-EGRESS-V6-3 out",
                                    "end", "configure session warden-egress-20260302100211 commit timer 00:05:00"]
    assert not any(line.startswith("no ") for line in load)
    # Without binding, the plain names are removed and written again inside the session.
    replace = step["replace"]
    assert replace[:3] == ["configure session warden-egress-1", "no ip access-list WARDEN-EGRESS-V4", "no ipv6 access-list WARDEN-EGRESS-V6"]
    assert replace[3] == "ip access-list WARDEN-EGRESS-V4" and replace[-2:] == ["end", "configure session warden-egress-1 commit"]


@pytest.mark.parametrize("platform", ["ios", "eos"])
def test_the_loaded_generation_read_back_agrees_with_the_oracle_and_is_held_as_live(platform):
    step = steps(platform)
    ir, parsed = step["ir"], step["parsed"]
    acls = read_parsed(parsed, platform, step.get("group_lines"))
    assert set(acls) == {("ipv4", G3["ipv4"]), ("ipv6", G3["ipv6"])}
    assert not disagreements(ir, acls, sample_flows(ir, 2000), G3)
    assert disagreements(ir, acls, sample_flows(ir, 2000))  # under the plain names there is nothing: all denied
    # What the module reads back from the device form (the same parser its gathered state
    # uses) counts as the live generation holding the policy: the next run loads nothing.
    again = plan(ir, platform, parsed, [binding("eth1", G3)])
    assert not again["load"] and again["names"] == G3


def test_composing_a_load_refuses_what_would_open_the_interface():
    acls, groups = steps("ios")["acls"], steps("ios")["groups"]
    with pytest.raises(ValueError, match="remove a binding"):
        ios_load(acls, ["interface eth1", "no ip access-group WARDEN-EGRESS-V4-2 out", "ip access-group WARDEN-EGRESS-V4-3 out"], groups)
    with pytest.raises(ValueError, match="lacks the IPv4 or the IPv6 access list"):
        ios_load([line for line in acls if not line.startswith("ipv6 ")], [], groups)
    with pytest.raises(ValueError, match="holds '{{', which the module would read as a template"):
        ios_load(list(acls) + ["10 remark {{ lookup('pipe', 'id') }}"], [], groups)
    # An entry naming a group the change does not define: IOS would refuse the entry, or
    # take a group of that name already on the router.
    with pytest.raises(ValueError, match=r"name object groups the change does not define: \['WARDEN-EGRESS-V6-3-"):
        ios_load(acls, [], [g for g in groups if g["afi"] == "ipv4"])
    with pytest.raises(ValueError, match="session name"):
        eos_session("bad name; reload", ["ip access-list X"])
    with pytest.raises(ValueError, match="HH:MM:SS"):
        eos_session("s1", ["ip access-list X"], timer="5m")


def test_junos_loads_both_filters_and_their_binding_in_one_commit():
    trip = roundtrip("junos", render={"plain": device_config(edge_ir(), "junos")}, bind={"plain": bindings(edge_ir())})
    load = junos_load(trip["rendered"]["plain"], trip["bound"]["plain"])
    document = xml.dom.minidom.parseString(load)
    filters = document.getElementsByTagName("filter")
    replaced = [f for f in filters if f.getAttribute("replace") == "replace"]
    assert [f.getElementsByTagName("name")[0].firstChild.data for f in replaced] == [NAMES["ipv4"], NAMES["ipv6"]]
    outputs = [node.firstChild.data for node in document.getElementsByTagName("output-list")]
    assert outputs == [NAMES["ipv4"], NAMES["ipv6"]]
    interface = document.getElementsByTagName("interface")[0]
    assert interface.getElementsByTagName("name")[0].firstChild.data == "eth1" and not interface.getAttribute("replace")
    inet6 = load[load.index("<firewall>"):load.index("</firewall>")].split("<inet6>")[1]
    assert "<protocol>" not in inet6 and "<next-header>" in inet6
    with pytest.raises(ValueError, match="not an interfaces output-list"):
        junos_load(trip["rendered"]["plain"], "<nc:interfaces/>")


# ----------------------------------------------------------------------------- EOS bindings

EOS_RUNNING = """! Command: show running-config
hostname sw1
!
interface Ethernet1
   description inside
   ip access-group MGMT-IN in
!
interface Ethernet2
   description outside
   ip access-group WARDEN-EGRESS-V4-3 out
   ipv6 access-group WARDEN-EGRESS-V6-3 out
!
ip access-list WARDEN-EGRESS-V4-3
   10 permit tcp 198.51.100.0/25 any established
!
system control-plane
   ip access-group CP-IN in
!
end
"""


def test_eos_bindings_are_read_from_the_indented_running_config():
    """arista.eos.eos_acl_interfaces (state parsed, the parser its gathered state uses) finds
    no binding in EOS's own, indented, running configuration; the collection reads them
    itself, only inside interface sections."""
    vendor = roundtrip("eos", parse_bind={"running": EOS_RUNNING})["parsed_bound"]["running"]
    assert not any(interface.get("access_groups") for interface in vendor), vendor
    ours = eos_bindings(EOS_RUNNING)
    assert ours == [binding("Ethernet1", {"ipv4": "MGMT-IN"}, "in"), binding("Ethernet2", G3)]

    def bound(gathered, interface=None):  # the network_acl role's step
        return run_step({"step": "bound", "gathered": gathered, "interface": interface})["bound"]

    assert bound(EOS_RUNNING) == ours
    assert bound(EOS_RUNNING, "Ethernet2") == G3 and bound(EOS_RUNNING, "Ethernet1") == {}
    assert bound([binding("Ethernet2", G2)], "Ethernet2") == G2
    with pytest.raises(AnsibleActionFail, match="bound: gathered is not the gathered list"):
        bound({"Ethernet2": G2}, "Ethernet2")
