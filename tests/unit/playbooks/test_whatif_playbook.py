"""The warden.egress.whatif playbook, run by ansible-playbook: the current inventory (-i) against
a proposed one (-e whatif_proposed=PATH or -e whatif_proposed_ref=GITREF), a Markdown page beside the
inventory and a short summary printed; bad input fails naming the variable and value."""

from __future__ import annotations

import json
import os
import re
import subprocess

from whatif_sample import DENY, git, inventory, repository, write

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def playbook(tmp_path, current: str, *extra: str) -> tuple[subprocess.CompletedProcess, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    argv = ["ansible-playbook", "warden.egress.whatif", "-i", current, *extra]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    return result, " ".join((result.stdout + result.stderr).split())  # the yaml callback folds long lines


def test_the_playbook_compares_two_inventory_paths(tmp_path):
    current = write(tmp_path / "current", inventory())
    proposed = write(tmp_path / "proposed", inventory(app_allow="ssh", ws1_role="mail_server"))
    result, output = playbook(tmp_path, current, "-e", f"whatif_proposed={proposed}", "--check")
    assert result.returncode == 0, output[-4000:]
    assert "4 flows differ (of " in output and "(check mode: not written)" in output
    assert not (tmp_path / "current" / "whatif.md").exists()
    result, output = playbook(tmp_path, current, "-e", f"whatif_proposed={proposed}")
    assert result.returncode == 0, output[-4000:]
    assert "4 flows differ (of " in output
    assert ("ws1 (client → mail_server) host policy: 198.51.100.14 → 198.51.100.13 tcp/3128: before allowed "
            f"(role client: http_proxy to internal_proxies); after denied ({DENY})") in output
    assert "app1 (app) host policy: 198.51.100.20 → 203.0.113.80 tcp/22: before denied" in output
    page = (tmp_path / "current" / "whatif.md").read_text()  # beside the current inventory
    assert f"Report: {tmp_path / 'current' / 'whatif.md'}" in output
    assert "4 of " in page and "| ws1 | client → mail_server | host | 198.51.100.14 → 203.0.113.25 tcp/25 | denied: alert: smtp | " \
        "allowed: role mail_server: smtp to smtp_relays |" in page


def test_the_playbook_compares_a_git_ref_and_writes_where_told(tmp_path):
    repo, current = repository(tmp_path)
    dest = tmp_path / "review" / "whatif.md"
    result, output = playbook(tmp_path, current, "-e", "whatif_proposed_ref=review", "-e", f"whatif_dest={dest}")
    assert result.returncode == 0, output[-4000:]
    assert "4 flows differ (of " in output
    assert "Proposed: git ref review (the same inventory paths)" in dest.read_text()
    assert not (repo / "inventory" / "whatif.md").exists()
    assert len([ln for ln in git(repo, "worktree", "list", "--porcelain").splitlines() if ln.startswith("worktree ")]) == 1


def test_the_playbook_refuses_both_or_neither_and_an_unknown_ref(tmp_path):
    dummy, current = repository(tmp_path)
    result, output = playbook(tmp_path, current, "-e", "whatif_proposed=x.yml", "-e", "whatif_proposed_ref=review")
    assert result.returncode != 0
    assert "warden.egress.whatif: give proposed or proposed_ref, not both (proposed='x.yml', proposed_ref='review')" in output
    result, output = playbook(tmp_path, current)
    assert result.returncode != 0 and "warden.egress.whatif: give the proposed inventory" in output
    result, output = playbook(tmp_path, current, "-e", "whatif_proposed_ref=nope")
    assert result.returncode != 0 and re.search(r"warden\.egress\.whatif: proposed_ref 'nope': git does not know this ref in \S+", output)
    assert not os.path.exists(os.path.join(os.path.dirname(current), "whatif.md"))


def test_inventory_variables_named_like_the_options_are_not_taken_for_them(tmp_path):
    """A variable proposed (or proposed_ref, learned) of the inventory itself is not the
    proposed inventory: only the whatif_ variables are."""
    proposed = write(tmp_path / "proposed", inventory(app_allow="ssh", ws1_role="mail_server"))
    current = write(tmp_path / "current", inventory(proposed=proposed, learned="nowhere.json"))
    result, output = playbook(tmp_path, current)
    assert result.returncode != 0 and "warden.egress.whatif: give the proposed inventory" in output, output[-4000:]
    result, output = playbook(tmp_path, current, "-e", f"whatif_proposed={proposed}", "--check")
    assert result.returncode == 0, output[-4000:]
    assert "4 flows differ (of " in output


def test_a_ref_or_path_holding_a_template_runs_nothing_on_the_controller(tmp_path):
    """A branch name may hold {{ }} (git allows it): given with -e, on the command line or in a
    file, it is the name of a ref and nothing else; a path holding {{ }} is a path."""
    repo, current = repository(tmp_path)
    marker = tmp_path / "templated"
    name = 'x{{lookup("pipe","touch${IFS}' + str(marker) + '")}}'
    subprocess.run(["git", "check-ref-format", "--branch", name], check=True, capture_output=True)  # a valid branch name
    git(repo, "branch", name, "review")
    dest = tmp_path / "out" / ('{{lookup("pipe","touch ' + str(marker) + '")}}.md')
    result, output = playbook(tmp_path, current, "-e", f"whatif_proposed_ref={name}", "-e", f"whatif_dest={dest}")
    assert result.returncode == 0, output[-4000:]
    assert not marker.exists()
    assert "4 flows differ (of " in output and f"Proposed: git ref {name} (the same inventory paths)" in dest.read_text()
    (tmp_path / "extra.json").write_text(json.dumps({"whatif_proposed_ref": name}))
    result, output = playbook(tmp_path, current, "-e", f"@{tmp_path / 'extra.json'}", "--check")
    assert result.returncode == 0, output[-4000:]
    assert not marker.exists() and "4 flows differ (of " in output
    # a ref git does not know is refused by its name, as given
    result, output = playbook(tmp_path, current, "-e", 'whatif_proposed_ref=y{{lookup("pipe","touch${IFS}' + str(marker) + '")}}')
    assert result.returncode != 0 and "git does not know this ref" in output and not marker.exists()
    assert len([ln for ln in git(repo, "worktree", "list", "--porcelain").splitlines() if ln.startswith("worktree ")]) == 1
