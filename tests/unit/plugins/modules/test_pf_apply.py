"""pf_apply run as Ansible runs it, against the lab's stand-in for pfctl (lab/files/fake-pfctl.py,
which reads every file with the strict pf grammar and records what would be loaded):
validation before load, idempotence, drift, check mode, diff, other anchors untouched,
removal. The confirmed apply, the same for the three apply modules, is in test_confirm.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
from netns import TOP, run_module
from sample import compile_for, edge_ir

from ansible_collections.warden.egress.plugins.plugin_utils.render.pf import render

ADMIN = 'table <admin> persist { 203.0.113.7/32 }\npass out quick from any to <admin> keep state label "admin"\nblock out log quick all label "admin default"\n'


@pytest.fixture()
def box():
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir = os.path.join(tmp, "bin")
        os.makedirs(bin_dir)
        shutil.copy(os.path.join(TOP, "lab", "files", "fake-pfctl.py"), bin_dir)
        shutil.copy(os.path.join(TOP, "lab", "files", "pf_grammar.py"), bin_dir)
        with open(os.path.join(bin_dir, "pfctl"), "w", encoding="utf-8") as handle:
            handle.write(f'#!/bin/sh\nexec {sys.executable} {os.path.join(bin_dir, "fake-pfctl.py")} "$@"\n')
        os.chmod(os.path.join(bin_dir, "pfctl"), 0o755)
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "WARDEN_FAKE_PF_DIR": os.path.join(tmp, "pf")}
        subprocess.run(["pfctl", "-a", "admin", "-f", "-"], input=ADMIN, text=True, env=env, check=True)
        yield tmp, env


def run(box, check=False, diff=False, **args):
    tmp, env = box
    args.setdefault("path", os.path.join(tmp, "etc", "warden_egress"))
    args.setdefault("state_dir", os.path.join(tmp, "state"))
    return run_module("pf_apply", tmp, args, check, diff, env=env)


def loaded(box, anchor="warden_egress"):
    path = os.path.join(box[0], "pf", "anchors", f"{anchor}.conf")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def boot_file(box):
    path = os.path.join(box[0], "etc", "warden_egress")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def test_apply_is_idempotent_and_leaves_other_anchors(box):
    content = render(compile_for("mail1"))
    first = run(box, content=content)
    assert first["changed"] and first["ruleset_changed"] and first["file_changed"], first
    assert loaded(box) == content and boot_file(box) == content
    assert not run(box, content=content)["changed"]
    assert loaded(box, "admin") == ADMIN


def test_a_ruleset_pf_would_refuse_is_never_loaded(box):
    run(box, content=render(compile_for("mail1")))
    broken = render(compile_for("dns1")).replace("port 53", "port 70000")
    result = run(box, content=broken)
    assert result.get("failed") and "pfctl -n rejected the rules" in result["msg"], result
    assert "role mail_server" in loaded(box)


def test_drift_is_put_right_and_check_mode_changes_nothing(box):
    content = render([compile_for("ws1"), edge_ir()])
    run(box, content=content)
    path = os.path.join(box[0], "pf", "anchors", "warden_egress.conf")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('pass out quick proto tcp from any to any port 6667 keep state label "hand edit"\n')
    checked = run(box, content=content, check=True, diff=True)
    assert checked["changed"] and "hand edit" in checked["diff"]["before"]
    assert "hand edit" in loaded(box)
    assert run(box, content=content)["ruleset_changed"]
    assert loaded(box) == content


@pytest.mark.parametrize("empty", ["", "\n  \n", "# nothing\n", "table <trusted> persist { 198.51.100.0/25 }\n"])
def test_an_empty_ruleset_is_refused_and_changes_nothing(box, empty):
    """An anchor with no rule filters nothing: refused (emptying it is state: absent)."""
    content = render(compile_for("mail1"))
    run(box, content=content)
    for check in (True, False):
        result = run(box, check=check, content=empty)
        assert result.get("failed") and "empty ruleset" in result["msg"] and "state: absent" in result["msg"], result
    assert loaded(box) == content and boot_file(box) == content
    assert not run(box, content=content)["changed"]


@pytest.fixture()
def bystander():
    """A live process in a process group of its own, like the rollback job."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def leave_stale_pid_file(box, pid):
    """A pid file left over (a restart), whose number now names some other process."""
    state_dir = os.path.join(box[0], "state")
    with open(os.path.join(state_dir, "pf-warden_egress.rollback.pid"), "w", encoding="utf-8") as handle:
        handle.write(f"{pid}\n")


def test_a_new_load_never_signals_a_process_that_is_not_the_rollback_job(box, bystander):
    old, new = render(compile_for("mail1")), render(compile_for("dns1"))
    run(box, content=old)
    leave_stale_pid_file(box, bystander.pid)
    result = run(box, content=new, confirm_timeout=30)
    assert result["pending_confirmation"], result
    time.sleep(0.2)
    assert bystander.poll() is None, "the process named in the stale pid file was killed"
    assert run(box, confirm=True)["changed"]
    assert loaded(box) == new and boot_file(box) == new


def test_absent_removes_only_its_own(box):
    run(box, content=render(compile_for("mail1")))
    assert run(box, state="absent")["changed"]
    assert loaded(box) is None and boot_file(box) is None and loaded(box, "admin") == ADMIN
    assert not run(box, state="absent")["changed"]
