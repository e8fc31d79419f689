"""What-if between two whole inventories (two paths, or the same paths at a git ref): exactly
the flows whose verdict differs, with the deciding rule and the role on each side; bad input
named by its variable and value; the git worktree removed afterwards, on failure too."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from ansible_collections.warden.egress.plugins.action.whatif import COLLECTION, compare_inventories
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.whatif import summary, whatif_markdown
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.whatif_inventory import InputError, load

from whatif_sample import DENY, EXPECTED, git, inventory, repository, write


def rows(result: dict) -> set:
    return {(c["host"], c["role"], c["packet"]["dst"], c["packet"]["proto"], c["packet"].get("dport"), c["before"]["reason"],
             c["after"]["reason"]) for c in result["changed"]}


@pytest.fixture(name="two")
def fixture_two(tmp_path):
    current = write(tmp_path / "current", inventory())
    proposed = write(tmp_path / "proposed", inventory(app_allow="ssh", ws1_role="mail_server"))
    return current, proposed


def test_two_inventories_give_exactly_the_differing_flows(two):
    current, proposed = two
    outcome = compare_inventories({"proposed": proposed}, [current])
    result = outcome["result"]
    assert rows(result) == EXPECTED
    assert all(c["kind"] == "host" for c in result["changed"])
    assert outcome["dest"] == os.path.join(os.path.dirname(current), "whatif.md")  # beside the current inventory
    lines = summary(result)
    assert lines[0].startswith("4 flows differ (of ")
    assert ("ws1 (client → mail_server) host policy: 198.51.100.14 → 203.0.113.25 tcp/25: before denied (alert: smtp); "
            "after allowed (role mail_server: smtp to smtp_relays)") in lines
    page = whatif_markdown(result)
    assert "| app1 | app | host | 198.51.100.20 → 203.0.113.80 tcp/443 | allowed: role app: https to partner | denied: " + DENY + " |" in page
    assert f"Proposed: {proposed}" in page


def test_equal_inventories_differ_in_nothing(two):
    current, dummy = two
    result = compare_inventories({"proposed": current}, [current])["result"]
    assert result["changed"] == [] and result["flows"] > 10


def test_the_proposed_side_is_read_from_its_own_inventory(two):
    """The verify flow and the templated upstream come from each side's own files."""
    current, proposed = two
    side = load("proposed", [proposed])
    assert side["host_vars"]["ws1"]["egress_role"] == "mail_server"
    assert side["host_vars"]["app1"]["egress_upstreams"]["partner"] == ["203.0.113.80"]  # templated in the host's variables
    assert side["addresses"]("mail1") == ["198.51.100.11"]  # ansible_host
    result = compare_inventories({"proposed": proposed}, [current])["result"]
    verify = [c for c in result["changed"] if c["origin"] == "egress_verify_flows[0] of app1"]
    assert len(verify) == 1 and verify[0]["packet"]["dport"] == "443"


def test_learned_flows_are_judged_too(two, tmp_path):
    current, proposed = two
    seen = {"reporter": "app1", "iif": None, "oif": "eth0", "src": "198.51.100.20", "dst": "203.0.113.80", "proto": "tcp", "dport": 443}
    (tmp_path / "learned.json").write_text(json.dumps({"flows": [seen]}))
    result = compare_inventories({"proposed": proposed, "learned": str(tmp_path / "learned.json")}, [current])["result"]
    learned = [c for c in result["changed"] if c["origin"] == "learned on app1"]
    assert [(c["packet"]["dst"], c["packet"]["dport"], c["before"]["reason"], c["after"]["reason"]) for c in learned] == [
        ("203.0.113.80", "443", "role app: https to partner", DENY)]
    (tmp_path / "learned.json").write_text(json.dumps({"flows": [{"src": "198.51.100.20"}]}))
    with pytest.raises(InputError, match=r"\Alearned '.*learned\.json': not a learn result"):
        compare_inventories({"proposed": proposed, "learned": str(tmp_path / "learned.json")}, [current])


def worktrees(repo) -> list:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


def test_a_git_ref_is_the_proposed_inventory(tmp_path):
    repo, current = repository(tmp_path)
    outcome = compare_inventories({"proposed_ref": "review"}, [current])
    assert rows(outcome["result"]) == EXPECTED
    assert outcome["result"]["compared"]["proposed"] == "git ref review (the same inventory paths)"
    assert len(worktrees(repo)) == 1  # the temporary worktree is gone
    # the directory form of -i works the same, and HEAD~0 of main is the current inventory itself
    assert rows(compare_inventories({"proposed_ref": "review"}, [str(repo / "inventory")])["result"]) == EXPECTED
    assert compare_inventories({"proposed_ref": "main"}, [current])["result"]["changed"] == []


def test_the_worktree_is_removed_when_the_proposed_ref_does_not_compile(tmp_path, monkeypatch):
    repo, current = repository(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    git(repo, "checkout", "-q", "review")
    write(repo / "inventory", inventory(ws1_role="no_such_role"))
    git(repo, "commit", "-q", "-am", "broken")
    git(repo, "checkout", "-q", "main")
    with pytest.raises(InputError) as err:
        compare_inventories({"proposed_ref": "review"}, [current])
    assert str(err.value).startswith("proposed inventory (git ref review (the same inventory paths)) does not compile: warden.egress: host ws1: ")
    assert "no_such_role" in str(err.value)
    assert len(worktrees(repo)) == 1
    assert not os.listdir(str(scratch))


@pytest.mark.parametrize("args, message", [
    ({}, "give the proposed inventory: proposed (its path) or proposed_ref"),
    ({"proposed": "x.yml", "proposed_ref": "main"}, "give proposed or proposed_ref, not both (proposed='x.yml', proposed_ref='main')"),
    ({"proposed": "/nonexistent/hosts.yml"}, "proposed '/nonexistent/hosts.yml': no such file or directory"),
    ({"proposed": ""}, "proposed '': no such file or directory"),
    ({"proposed": 3}, "proposed 3: expected an inventory path or a list of them"),
    ({"proposed_ref": "no-such-branch"}, "proposed_ref 'no-such-branch': git does not know this ref in "),
    ({"proposed_ref": "--output=/tmp/x"}, "proposed_ref '--output=/tmp/x': expected a git ref"),
    ({"proposed_ref": "main", "dest": os.path.join(COLLECTION, "whatif.md")}, "dest '" + os.path.join(COLLECTION, "whatif.md") + "': is inside the collection"),
    ({"proposed_ref": "main", "learned": "/nonexistent.json"}, "learned '/nonexistent.json': cannot read it as a learn result"),
])
def test_bad_input_names_the_variable_and_value(tmp_path, args, message):
    dummy, current = repository(tmp_path)
    with pytest.raises(InputError) as err:
        compare_inventories(args, [current])
    assert str(err.value).startswith(message), str(err.value)


def test_a_ref_outside_a_repository_and_an_inventory_that_does_not_parse(two, tmp_path):
    current, dummy = two
    with pytest.raises(InputError, match=r"\Aproposed_ref 'main': the inventory .* is not in a git repository"):
        compare_inventories({"proposed_ref": "main"}, [current])
    broken = tmp_path / "broken.yml"
    broken.write_text("all: [unclosed\n")
    with pytest.raises(InputError, match=r"\Aproposed .*broken\.yml: .*broken\.yml could not be parsed as an inventory"):
        compare_inventories({"proposed": str(broken)}, [current])


def test_the_failing_side_prefixes_the_compilers_error(two, tmp_path):
    current, proposed = two
    bad = write(tmp_path / "bad", inventory(egress_mode="loud"))
    with pytest.raises(InputError) as err:
        compare_inventories({"proposed": bad}, [current])
    assert str(err.value).startswith(f"proposed inventory ({bad}) does not compile: warden.egress: host ")
    assert "egress_mode" in str(err.value) and "loud" in str(err.value)
    with pytest.raises(InputError) as err:
        compare_inventories({"proposed": proposed}, [bad])
    assert str(err.value).startswith(f"current inventory ({bad}) does not compile: warden.egress: host ")


def test_a_template_that_does_not_render_names_the_side_host_and_variable(two, tmp_path):
    current, dummy = two
    bad = write(tmp_path / "undefined", inventory(egress_mode="{{ no_such_variable }}"))
    with pytest.raises(InputError, match=r"\Aproposed .*undefined/hosts\.yml: host app1: egress_mode: .*no_such_variable"):
        compare_inventories({"proposed": bad}, [current])
