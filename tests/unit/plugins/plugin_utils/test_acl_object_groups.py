"""Device ACLs in proportion to the policy: IOS object groups and Junos address lists. The
size grows with the rules and prefixes, not their product; the groups are read back by a
strict reader, and an entry naming a group nobody read decides nothing; a group's name
changes with its members, so a changed group is a new generation and an old one is deleted
only when no ACL left names it."""

from __future__ import annotations

import ipaddress
import os
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sample import edge_ir
from test_render_acl import trip_for
from test_render_acl_apply import binding

from ansible.errors import AnsibleActionFail, AnsibleFilterError
from ansible_collections.warden.egress.plugins.action.network_acl_step import run_step
from ansible_collections.warden.egress.plugins.filter.to_device_acls import to_device_acls
from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.apply import acl_names, plan
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import AddressGroup, aces
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.acl_check import disagreements, sample_flows
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import device_config, read_parsed
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import ios_object_group_lines, ios_render, read_ios_object_groups

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "benchmarks"))
from sitegen import generate  # noqa: E402

G2, G3 = acl_names(2), acl_names(3)


def generated_edge(hosts: int, platform: str) -> dict:
    """A generated site of ``hosts`` hosts (5 roles, 40 upstream prefixes) behind one gateway."""
    site = generate(hosts, 5, 40, seed=3)
    edge = {**site["edge"], "inside": [{**site["edge"]["inside"][0], "interface": "eth0"}], "outside": "eth1", "conn_limit": False}
    variables = {**site["variables"], "egress_edge": edge, "egress_platform": platform}
    return compile_edge(variables, "gw", site["addresses"], site["groups"], site["host_roles"])


# ----------------------------------------------------------------------------- size

@pytest.mark.parametrize("platform", ["ios", "junos"])
def test_the_acl_grows_with_the_rules_not_with_hosts_times_prefixes(platform):
    small, large = generated_edge(10, platform), generated_edge(400, platform)
    entries = {n: sum(len(afi["acls"][0]["aces"]) for afi in device_config(ir, platform)) for n, ir in (("small", small), ("large", large))}
    assert entries["small"] == entries["large"]
    # one entry per pairing, as EOS writes it, grows with the hosts
    flat = {n: sum(len(v) for v in aces(ir).values()) for n, ir in (("small", small), ("large", large))}
    assert flat["large"] > 10 * flat["small"] > 10 * entries["small"]
    if platform == "ios":
        members = sum(len(g["members"]) for g in ios_render(large)["object_groups"])
        assert members < 2 * (400 + 40 + 50)  # each host and prefix in a group or two, not in a product


def test_flat_ios_entries_are_still_rendered_for_images_without_object_groups():
    ir = generated_edge(20, "ios")
    flat = device_config(ir, "ios", object_groups=False)
    assert not any("object_group" in (ace.get(side) or {}) for afi in flat for ace in afi["acls"][0]["aces"] for side in ("source", "destination"))
    assert sum(len(afi["acls"][0]["aces"]) for afi in flat) == sum(len(v) for v in aces(ir).values())


# ----------------------------------------------------------------------------- groups

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)), min_size=1, max_size=12),
       st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=30))
def test_a_group_holds_an_address_exactly_when_one_of_its_prefixes_does(prefixes, probes):
    nets = [ipaddress.ip_network((number >> (32 - length) << (32 - length), length)) for number, length in prefixes]
    group = AddressGroup(nets)
    edges = [int(n.network_address) + d for n in nets for d in (-1, 0)] + [int(n.broadcast_address) + d for n in nets for d in (0, 1)]
    for number in probes + [e for e in edges if 0 <= e < 2**32]:
        address = ipaddress.ip_address(number)
        assert (address in group) == any(address in net for net in nets)
    assert ipaddress.ip_address("2001:db8::1") not in group


def test_group_lines_read_back_to_the_same_groups():
    groups = ios_render(edge_ir(), G3)["object_groups"] + ios_render(generated_edge(30, "ios"), G3)["object_groups"]
    groups = list({g["name"]: g for g in groups}.values()) + [
        {"afi": "ipv4", "name": "WARDEN-EGRESS-V4-3-0000000000", "members": ["198.51.100.0/25", "198.51.100.200/32"]}]
    lines = ios_object_group_lines(groups)
    for kind in ("network", "v6-network"):
        assert any(line.startswith(f"object-group {kind} ") for line in lines)
    assert any(line.startswith(" host ") and ":" in line for line in lines) and any(line.startswith(" host ") and "." in line for line in lines)
    assert any(" 255." in line for line in lines) and any("/" in line for line in lines)
    read_back = read_ios_object_groups(lines)
    assert {name: [str(n) for n in group] for name, group in read_back.items()} == {g["name"]: g["members"] for g in groups}
    assert all(g["name"].startswith(G3[g["afi"]] + "-") for g in groups)


@pytest.mark.parametrize(("lines", "message"), [
    (["object-group network G1", " 198.51.100.0 255.255.255.0", " description a line this check does not read"], "line 3 .* not a member"),
    (["object-group network G1", " range 198.51.100.1 198.51.100.9"], "line 2 .* not a member"),
    (["object-group network G1", " 198.51.100.0 0.0.0.255"], "line 2 of the object groups"),
    (["object-group network G1", " host 2001:db8::1"], "line 2 .* not a member"),
    (["object-group v6-network G1", " host 198.51.100.1"], "puts 198.51.100.1/32 in an object-group v6-network"),
    (["object-group network G1", " host 198.51.100.1", "object-group network G1", " host 198.51.100.2"], "defined twice"),
    (["object-group network G1"], "no member"),
    ([" host 198.51.100.1"], "line 1 .* not a member"),
    (["object-group network-x G1", " host 198.51.100.1"], "line 1 .* not a member"),
])
def test_the_group_reader_refuses_what_it_would_not_see_whole(lines, message):
    with pytest.raises(ValueError, match=message):
        read_ios_object_groups(lines)


def test_an_entry_naming_a_group_nobody_read_decides_nothing():
    """IOS parsed back without the groups' lines: the check is an error, never a pass."""
    trip = trip_for("ios")
    ir = edge_ir()

    def check(count, lines=None):  # the network_acl role's step
        return run_step({"step": "check", "parsed": trip["parsed"]["default"], "policy": ir, "platform": "ios", "count": count,
                         "object_group_lines": lines})["disagree"]

    with pytest.raises(AnsibleActionFail, match="object group 'WARDEN-EGRESS-V[46]-[0-9A-F]{10}' was not read"):
        check(200)
    with pytest.raises(AnsibleActionFail, match="names object group .* which the change does not define"):
        check(200, [line for line in trip["groups"]["default"] if "v6" not in line][:2])
    assert check(500, trip["groups"]["default"]) == []


def test_the_check_sees_into_the_groups():
    """A member left out of a group changes what the ACLs decide, and the check says so."""
    ir = generated_edge(30, "ios")
    rendered = ios_render(ir)
    lines = ios_object_group_lines(rendered["object_groups"])
    permits = [(side, ace[side]["object_group"]) for afi in rendered["acls"] for ace in afi["acls"][0]["aces"]
               for side in ("source", "destination") if ace["grant"] == "permit" and "object_group" in ace[side]]
    assert {side for side, dummy in permits} == {"source", "destination"}
    flows = sample_flows(ir, 3000)
    assert not disagreements(ir, read_parsed(rendered["acls"], "ios", lines), flows)
    for side, name in permits[:4]:
        header = lines.index(next(line for line in lines if line.endswith(f" {name}")))
        words = lines[header + 1].split()
        member = ipaddress.ip_network(words[1] if words[0] == "host" else "/".join(words))
        found = disagreements(ir, read_parsed(rendered["acls"], "ios", lines[:header + 1] + lines[header + 2:]), flows)
        assert found and all(f["oracle"] == "accept" and f["acl"] == "deny" for f in found), (side, name)
        assert any(ipaddress.ip_address(f["flow"]["src" if side == "source" else "dst"]) in member for f in found)


# ----------------------------------------------------------------------------- the apply

def test_a_changed_group_is_a_new_generation_and_the_old_groups_go_after_their_acls():
    before, after = generated_edge(30, "ios"), generated_edge(31, "ios")
    live = device_config(before, "ios", G2)
    held = plan(before, "ios", live, [binding("eth1", G2)])
    assert not held["load"] and held["delete_groups"] == []
    changed = plan(after, "ios", live, [binding("eth1", G2)])
    assert changed["load"] and changed["names"] == G3
    old = {g["name"] for g in ios_render(before, G2)["object_groups"]}
    assert {g["name"] for g in changed["delete_groups"]} == old and all(name.startswith("WARDEN-EGRESS-V") for name in old)
    assert not {g["name"] for g in changed["delete_groups"]} & {g["name"] for g in ios_render(after, G3)["object_groups"]}
    data = to_device_acls(after, on_device=live, bound_on_device=[binding("eth1", G2)])
    assert sorted(data["delete_group_lines"]) == sorted(
        f"no object-group {'network' if g['afi'] == 'ipv4' else 'v6-network'} {g['name']}" for g in changed["delete_groups"])


def test_groups_an_acl_still_bound_elsewhere_names_are_kept():
    before, after = generated_edge(30, "ios"), generated_edge(31, "ios")
    live = device_config(before, "ios", G2)
    changed = plan(after, "ios", live, [binding("eth1", G2), binding("eth7", G2)])
    assert changed["load"] and changed["delete"] == [] and changed["delete_groups"] == []


def test_object_groups_need_the_binding_and_a_boolean():
    ir = edge_ir(egress_platform="ios")
    with pytest.raises(AnsibleFilterError, match="network_acl_object_groups: true needs network_acl_bind: true"):
        to_device_acls(ir, bind=False)
    assert to_device_acls(ir, bind=False, object_groups=False)["object_groups"] == []
    with pytest.raises(AnsibleFilterError, match="object_groups .network_acl_object_groups.: 'maybe' must be true or false"):
        to_device_acls(ir, object_groups="maybe")
    assert to_device_acls(edge_ir(egress_platform="eos"), bind=False)["object_group_lines"] == []
