"""IOS ACLs at size: the check reads every line of the rendering with its own strict reader,
holds it to cisco.ios' parse of a sample covering every shape of entry, and decides the flows
on what it read, so a line outside the sample still counts and a reader that disagrees with
the vendor's parser stops the check."""

from __future__ import annotations

import copy
import functools
import os
import re
import sys

import pytest
from test_render_acl import CASES, device_text, read, roundtrip, trip_for

from ansible.errors import AnsibleActionFail
from ansible_collections.warden.egress.plugins.action.network_acl_step import run_step
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import (
    IOS_REMARK, IOS_SHAPE, ios_object_group_lines, ios_render, ios_sample, read_ios_object_groups, read_ios_text,
)
from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "benchmarks"))
from sitegen import generate  # noqa: E402

SAMPLE = 40


def parse_sample(text: str, lines) -> str:  # the network_acl role's steps
    return run_step({"step": "parse_sample", "text": text, "sample_lines": lines})["sample"]


def run_check(parsed, ir, platform: str, **args) -> list:
    return run_step({"step": "check", "parsed": parsed, "policy": ir, "platform": platform, **args})["disagree"]


def test_the_reader_reads_each_rendering_as_cisco_ios_parses_it():
    trip = trip_for("ios")
    for name in [*CASES, "flat"]:
        groups = trip["groups"].get(name)
        text = device_text("ios", trip["rendered"][name])
        assert read_ios_text(text, None if groups is None else read_ios_object_groups(groups)) == read(trip, name), name


@functools.cache
def large() -> dict:
    """A generated edge rendered by cisco.ios, and the vendor's parse of a sample of it."""
    site = generate(120, 30, 200, seed=4)
    edge = {**site["edge"], "inside": [{**site["edge"]["inside"][0], "interface": "GigabitEthernet0/0"}], "outside": "GigabitEthernet0/1", "conn_limit": False}
    ir = compile_edge({**site["variables"], "egress_edge": edge, "egress_platform": "ios"}, "gw", site["addresses"], site["groups"], site["host_roles"])
    rendered = ios_render(ir)
    groups = ios_object_group_lines(rendered["object_groups"])
    text = device_text("ios", roundtrip("ios", render={"large": rendered["acls"]})["rendered"]["large"])
    sample = parse_sample(text, SAMPLE)
    parsed = roundtrip("ios", parse={"sample": sample})["parsed"]["sample"]
    return {"ir": ir, "groups": groups, "text": text, "sample": sample, "parsed": parsed}


def entries(text: str) -> list:
    return [line for line in text.splitlines() if line.startswith(" ") and not IOS_REMARK.fullmatch(line)]


def test_the_sample_is_small_and_meets_every_shape():
    case = large()
    everything, kept = entries(case["text"]), entries(case["sample"])
    assert len(everything) > 4 * SAMPLE
    shapes = {IOS_SHAPE.sub("_", line) for line in everything}
    assert len(kept) <= SAMPLE + len(shapes)
    assert shapes == {IOS_SHAPE.sub("_", line) for line in kept}
    assert len(shapes) >= 8
    assert [line for line in case["text"].splitlines() if "access-list" in line] == [line for line in case["sample"].splitlines() if "access-list" in line]
    assert ios_sample(case["text"], len(everything)) == case["text"]


def check(case: dict, parsed=None, text=None) -> list:
    return run_check(case["parsed"] if parsed is None else parsed, case["ir"], "ios", object_group_lines=case["groups"],
                     text=case["text"] if text is None else text, sample_lines=SAMPLE)


def test_the_whole_rendering_is_checked_against_the_policy():
    case = large()
    assert check(case) == []
    # a permit the sample left out loses its port: the flows to the old port are now denied
    sampled = set(entries(case["sample"]))
    line = next(line for line in entries(case["text"]) if " permit " in line and " eq 443" in line and line not in sampled)
    changed = case["text"].replace(line + "\n", line.replace(" eq 443", " eq 444") + "\n")
    found = check(case, text=changed)
    assert found and {item["oracle"] for item in found} == {"accept"} and {item["flow"]["dport"] for item in found} == {443}


def test_the_vendor_parse_must_read_each_sampled_entry_as_the_check_does():
    case = large()
    dropped = copy.deepcopy(case["parsed"])
    dropped[-1]["acls"][0]["aces"].pop(3)
    with pytest.raises(AnsibleActionFail, match="cisco.ios read the entries"):
        check(case, parsed=dropped)
    moved = copy.deepcopy(case["parsed"])
    ace = next(a for a in moved[-1]["acls"][0]["aces"] if (a.get("destination", {}).get("port_protocol") or {}).get("eq"))
    ace["destination"]["port_protocol"]["eq"] = "8081"
    with pytest.raises(AnsibleActionFail, match=rf"sequence {ace['sequence']}: cisco.ios reads"):
        check(case, parsed=moved)


@pytest.mark.parametrize("line, message", [
    (" 10 permit tcp any eq 80 any", "is not read by this check|does not appear"),
    (" 10 permit tcp any any eq 443 dscp ef", "'dscp ef' is not read"),
    (" 10 permit gre any any", "not an entry this check reads"),
    (" 10 permit ip 198.51.100.0 0.0.255.0 any", "line 2"),
    (" 10 permit ip 2001:db8::/32 any", "in an ipv4 ACL|line 2"),
    ("ip access-list standard X", "not a line of an ACL"),
    (" 10 evaluate OTHER", "not an entry this check reads"),
])
def test_the_reader_refuses_what_it_would_not_read_whole(line, message):
    with pytest.raises(ValueError, match=message):
        read_ios_text("ip access-list extended WARDEN-EGRESS-V4\n" + line + "\n 20 deny ip any any log")


def test_a_line_before_any_header_is_refused():
    with pytest.raises(ValueError, match=re.escape("line 1 of the ACLs ('10 deny ip any any log'): not a line of an ACL")):
        read_ios_text(" 10 deny ip any any log")


def test_the_sample_size_must_be_a_positive_number():
    case = large()
    for bad in (0, -3, True):
        with pytest.raises(AnsibleActionFail, match="lines .* is not a positive number"):
            parse_sample("ip access-list extended X", bad)
        with pytest.raises(AnsibleActionFail, match="lines .* is not a positive number"):
            run_check(case["parsed"], case["ir"], "ios", object_group_lines=case["groups"], text=case["text"], sample_lines=bad)
    for bad in ("two hundred", [200]):  # Ansible's own conversion of an int option refuses these
        with pytest.raises(AnsibleActionFail, match="sample_lines"):
            parse_sample("ip access-list extended X", bad)
