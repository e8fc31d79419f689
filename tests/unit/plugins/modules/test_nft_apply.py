"""nft_apply run for real (as Ansible runs it: a process reading its arguments) inside a
network namespace: atomic replace, idempotence, drift, check mode, diff, foreign tables
untouched, refusal of anything outside its own table, removal."""

from __future__ import annotations

import os
import tempfile

import pytest
from netns import Pair, run_module
from sample import compile_for, edge_ir

from ansible_collections.warden.egress.plugins.module_utils._apply_nftables import check_scope, stable_listing
from ansible_collections.warden.egress.plugins.plugin_utils.render.nftables import render

FOREIGN = """table inet admin_keep {
\tchain out {
\t\ttype filter hook output priority 10; policy accept;
\t\tip daddr 203.0.113.7 counter accept comment "an admin's rule"
\t}
}
table ip docker_like {
\tchain forward {
\t\ttype filter hook forward priority 0; policy accept;
\t}
}
"""


@pytest.fixture()
def env():
    with Pair() as pair, tempfile.TemporaryDirectory() as tmp:
        pair.nft("-f", "-", data=FOREIGN)
        yield pair, tmp


def run(pair, tmp, check=False, diff=False, **args):
    args.setdefault("path", os.path.join(tmp, "etc", "warden_egress.nft"))
    args.setdefault("state_dir", os.path.join(tmp, "state"))
    return run_module("nft_apply", tmp, args, check, diff, ns=pair.host)


def listing(pair, table="warden_egress", family="inet"):
    result = pair.nft("list", "table", family, table, check=False)
    return result.stdout if result.returncode == 0 else None


def test_apply_is_idempotent_and_leaves_foreign_tables(env):
    pair, tmp = env
    before_foreign = (listing(pair, "admin_keep"), listing(pair, "docker_like", "ip"))
    content = render(compile_for("mail1"))
    first = run(pair, tmp, content=content)
    assert first["changed"] and first["ruleset_changed"] and first["file_changed"], first
    loaded = listing(pair)
    assert "@up_smtp_relays_v4 tcp dport 25 accept" in loaded
    second = run(pair, tmp, content=content)
    assert not second["changed"], second
    assert (listing(pair, "admin_keep"), listing(pair, "docker_like", "ip")) == before_foreign
    with open(os.path.join(tmp, "etc", "warden_egress.nft"), encoding="utf-8") as handle:
        assert handle.read() == content


def test_replacing_a_policy_is_one_transaction_and_reported(env):
    pair, tmp = env
    run(pair, tmp, content=render(compile_for("mail1")))
    result = run(pair, tmp, diff=True, content=render(compile_for("proxy1")))
    assert result["changed"]
    assert "role mail_server" in result["diff"]["before"] and "role web_proxy" in result["diff"]["after"]
    loaded = listing(pair)
    assert "role web_proxy" in loaded and "role mail_server" not in loaded


def test_check_mode_changes_nothing(env):
    pair, tmp = env
    content = render(compile_for("mail1"))
    result = run(pair, tmp, check=True, diff=True, content=content)
    assert result["changed"] and result["diff"]["after"] == content
    assert listing(pair) is None
    assert not os.path.exists(os.path.join(tmp, "etc", "warden_egress.nft"))
    run(pair, tmp, content=content)
    before = listing(pair)
    result = run(pair, tmp, check=True, content=render(compile_for("ws1")))
    assert result["changed"] and listing(pair) == before


def test_hand_edit_of_own_table_is_drift_and_is_put_right(env):
    pair, tmp = env
    content = render(compile_for("mail1"))
    run(pair, tmp, content=content)
    wanted = listing(pair)
    pair.nft("insert", "rule", "inet", "warden_egress", "output", "accept")
    result = run(pair, tmp, content=content)
    assert result["changed"] and result["ruleset_changed"] and not result["file_changed"]
    assert listing(pair) == wanted


def test_invalid_ruleset_is_refused_and_nothing_changes(env):
    pair, tmp = env
    run(pair, tmp, content=render(compile_for("mail1")))
    before = listing(pair)
    broken = render(compile_for("ws1")).replace("tcp dport 3128", "tcp dport 99999")
    result = run(pair, tmp, content=broken)
    assert result.get("failed") and "nft -c rejected" in result["msg"]
    assert listing(pair) == before


@pytest.mark.parametrize("extra", ["flush ruleset", "table inet admin_keep { }", "delete table ip docker_like"])
def test_content_outside_own_table_is_refused(env, extra):
    pair, tmp = env
    result = run(pair, tmp, content=extra + "\n" + render(compile_for("mail1")))
    assert result.get("failed") and "refusing to load" in result["msg"]
    assert listing(pair) is None and listing(pair, "admin_keep") is not None


@pytest.mark.parametrize("empty", ["", "  \n\t\n", "# nothing here\n", "table inet warden_egress\ndelete table inet warden_egress\n",
                                   "table inet warden_egress {\n}\n"])
def test_an_empty_ruleset_is_refused_and_changes_nothing(env, empty):
    """Loading nothing over a loaded table is not "no change" and not a removal: refused,
    the table, the boot file and the record stay as they were (removal is state: absent)."""
    pair, tmp = env
    content = render(compile_for("mail1"))
    run(pair, tmp, content=content)
    before = (listing(pair), os.listdir(os.path.join(tmp, "state")))
    for check in (True, False):
        result = run(pair, tmp, check=check, content=empty)
        assert result.get("failed") and "empty ruleset" in result["msg"] and "state: absent" in result["msg"], result
    assert (listing(pair), os.listdir(os.path.join(tmp, "state"))) == before
    with open(os.path.join(tmp, "etc", "warden_egress.nft"), encoding="utf-8") as handle:
        assert handle.read() == content
    assert not run(pair, tmp, content=content)["changed"]


def test_absent_removes_only_own_table_and_file(env):
    pair, tmp = env
    run(pair, tmp, content=render(compile_for("mail1")))
    result = run(pair, tmp, state="absent")
    assert result["changed"] and listing(pair) is None and listing(pair, "admin_keep") is not None
    assert not os.path.exists(os.path.join(tmp, "etc", "warden_egress.nft"))
    assert not run(pair, tmp, state="absent")["changed"]


CHAIN = "table inet warden_egress {\n\tchain output {\n\t}\n}\n"


@pytest.mark.parametrize(("content", "problem"), [
    (CHAIN, None),
    ("table inet warden_egress\ndelete table inet warden_egress\n" + CHAIN, None),
    ("table ip warden_egress {\n}\n", "other than"),
    ("table inet warden_egress {\n", "unbalanced"),
    ("add rule inet warden_egress output accept\n", "only"),
    ("", "declares no chain"),
    ("table inet warden_egress {\n}\n", "declares no chain"),
    (CHAIN + "delete table inet warden_egress\n", "declares no chain"),
])
def test_check_scope(content, problem):
    found = check_scope(content, "inet", "warden_egress")
    assert (found is None) if problem is None else (problem in found)


def test_traffic_state_is_not_drift(env):
    """Elements that traffic adds to the per-source meter, and counters, are not a change."""
    pair, tmp = env
    content = render(edge_ir())
    assert run(pair, tmp, content=content)["changed"]
    pair.nft("add", "element", "inet", "warden_egress", "meter_v4", "{ 198.51.100.13 timeout 30s }")
    assert "198.51.100.13" in listing(pair)
    assert not run(pair, tmp, content=content)["changed"]
    # A hand-made change to a set that is not dynamic still is.
    pair.nft("add", "element", "inet", "warden_egress", "up_smtp_relays_v4", "{ 203.0.113.66 }")
    assert run(pair, tmp, content=content)["ruleset_changed"]


def test_stable_listing_drops_only_dynamic_set_elements():
    text = (
        "table inet t {\n\tset meter_v4 {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n"
        "\t\telements = { 198.51.100.13 limit rate over 100/second burst 200 packets,\n\t\t\t     198.51.100.14 }\n\t}\n"
        "\tset up_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 203.0.113.25 }\n\t}\n}\n"
    )
    stable = stable_listing(text)
    assert "198.51.100.13" not in stable and "198.51.100.14" not in stable
    assert "elements = { 203.0.113.25 }" in stable and "set meter_v4 {" in stable
