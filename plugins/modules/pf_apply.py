#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pf_apply
short_description: Load the collection's pf anchor atomically, only when it differs, with an optional confirmed apply
version_added: 0.3.0
description:
  - Loads the rules rendered by P(warden.egress.to_pf#filter) into one pf anchor with
    C(pfctl -a ANCHOR -f FILE). pfctl loads an anchor's rules and tables in one transaction;
    the main ruleset and every other anchor are left as they were.
  - The file is checked with C(pfctl -n -a ANCHOR -f FILE) first; nothing is loaded when
    that fails.
  - Idempotent. After a load the module records the file's hash and the anchor as pfctl
    lists it back (rules, tables and their addresses). When both still match, nothing is done;
    a hand edit is drift and is put right.
  - With O(confirm_timeout), the previous anchor is put back by the box itself unless a
    second call with O(confirm=true) arrives within that many seconds. The boot file is only
    written once the load is confirmed. The rollback job holds a lock on its pid file for as
    long as it lives; a confirmation only signals a process that holds it, so a leftover pid
    file (after a restart) never gets another process killed.
  - Without O(confirm_timeout), the boot file is written under a temporary name beside O(path)
    before the load and renamed into place after it. If it cannot be written, nothing is
    loaded; if the rename fails, the previous rules are loaded again. The anchor and the boot
    file never disagree, and the run fails with one line saying why.
  - One apply at a time. The module holds a lock in O(state_dir) for the whole run (and the
    rollback job takes it before it rolls back), so a second run waits for the first (at most
    O(lock_timeout) seconds).
  - Directories it creates get explicit modes whatever the umask (O(state_dir) 0700, the
    directory of O(path) 0755).
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Reports whether the anchor or the file would change; loads and writes nothing.
  diff_mode:
    support: full
    description: Shows the previously applied rules against the new ones.
  idempotent:
    support: full
    description: A second run with the same content reports no change.
options:
  content:
    description:
      - The anchor's rules. Required when O(state=present) and O(confirm) is not set.
      - It must hold at least one C(pass) or C(block) rule. An empty file is refused; empty the
        anchor with O(state=absent).
    type: str
  anchor:
    description: The anchor the collection owns.
    type: str
    default: warden_egress
  path:
    description:
      - The anchor file that pf.conf loads at boot (C(load anchor ... from PATH)).
      - Set to an empty string to keep no file.
    type: path
    default: /etc/pf.anchors/warden_egress
  state_dir:
    description: Directory for the record of what was last applied, of a pending confirmation, and the lock file C(apply.lock).
    type: path
    default: /var/lib/warden_egress
  confirm_timeout:
    description:
      - Seconds the box waits for O(confirm=true) before it loads the previous anchor again.
        C(0) loads without a confirmation step.
    type: int
    default: 0
  lock_timeout:
    description:
      - Seconds to wait for another apply on the same box (same O(state_dir)) to finish.
        The run fails, changing nothing, when the lock is still held after that.
    type: int
    default: 120
    version_added: 0.5.0
  confirm:
    description:
      - Confirm the load a previous call made with O(confirm_timeout); cancels the pending
        rollback and writes the boot file. Fails if the rollback has already happened, or if no
        rollback job is running any more (the box was restarted); load the rules again then.
    type: bool
    default: false
  state:
    description: C(present) loads O(content); C(absent) flushes the anchor and removes its file and record.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - pf and pfctl (OpenBSD or FreeBSD)
notes:
  - Needs root on the target.
"""

EXAMPLES = r"""
- name: Load the anchor; the box rolls back by itself unless confirmed within 60 seconds
  warden.egress.pf_apply:
    content: "{{ egress_policy | warden.egress.to_pf }}"
    confirm_timeout: 60

- name: Reach the box again
  ansible.builtin.wait_for_connection:
    timeout: 30

- name: Confirm the new rules
  warden.egress.pf_apply:
    confirm: true
"""

RETURN = r"""
anchor:
  description: The anchor managed.
  returned: always
  type: str
  sample: warden_egress
sha256:
  description: SHA-256 of O(content).
  returned: when O(content) is given
  type: str
  sample: 3f1d5c0e0b1e2d7a9c5f4e6b8a7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d
ruleset_changed:
  description: Whether the anchor was (or in check mode would be) loaded.
  returned: always
  type: bool
  sample: true
file_changed:
  description: Whether the boot file was (or would be) written or removed.
  returned: always
  type: bool
  sample: false
pending_confirmation:
  description: Whether the load waits for O(confirm=true).
  returned: always
  type: bool
  sample: false
"""

import fcntl
import json
import os
import re
import signal
import sys
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.warden.egress.plugins.module_utils import _apply_files as files
from ansible_collections.warden.egress.plugins.module_utils import _apply_lock as lock
from ansible_collections.warden.egress.plugins.module_utils import _apply_state as state

RULE = re.compile(r"(pass|block)\b")


def check_content(content: str) -> str | None:
    """Return a problem if the file holds no rule: an empty anchor filters nothing."""
    for raw in content.splitlines():
        if RULE.match(raw.split("#", 1)[0].strip()):
            return None
    return ("the file holds no pass or block rule: an empty ruleset would leave the box unfiltered"
            " (to empty the anchor, use state: absent)")


def listing(module: AnsibleModule, pfctl: str, anchor: str) -> str | None:
    """The anchor as pfctl lists it: rules, then each table and its addresses."""
    rc, rules, dummy = module.run_command([pfctl, "-a", anchor, "-s", "rules"])
    if rc != 0:
        return None
    rc, tables, dummy = module.run_command([pfctl, "-a", anchor, "-s", "Tables"])
    out = ["# rules", rules.strip()]
    for table in sorted(tables.split()) if rc == 0 else []:
        rc, members, dummy = module.run_command([pfctl, "-a", anchor, "-t", table, "-T", "show"])
        out.append(f"# table <{table}>")
        out.extend(sorted(line.strip() for line in members.splitlines() if line.strip()))
    text = "\n".join(out) + "\n"
    return None if text == "# rules\n\n" else text


# The rollback job, run by the Python that runs this module, in its own session so that it
# outlives the run (and the connection that may be lost). Self-contained: the module's files
# are gone when it runs. After the wait it takes the apply lock (so it never interleaves with
# a run), loads the previous rules (or empties the anchor), puts their record back and says
# what it did in the "rolled" file. With a wait of 0 and no lock file the module runs the same
# code itself, to roll back at once. Arguments: wait, pfctl, anchor, previous rules file ("":
# empty the anchor), previous record ("": none), record, rolled file, pid file, lock file.
JOB = r"""
import fcntl, os, subprocess, sys, time
wait, pfctl, anchor, previous, previous_record, record, rolled, pid_path, lock_path = sys.argv[1:10]
time.sleep(int(wait))
if lock_path:
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.ftruncate(lock, 0)
    os.pwrite(lock, b"%d\n" % os.getpid(), 0)
argv = [pfctl, "-a", anchor] + (["-f", previous] if previous else ["-F", "all"])
rc = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
when = time.strftime("%Y-%m-%d %H:%M:%S %z")
if rc == 0:
    if previous_record:
        os.replace(previous_record, record)
    elif os.path.exists(record):
        os.unlink(record)
    said = f"the box put the previous {anchor} rules back at {when}"
else:
    said = f"the box tried to put the previous {anchor} rules back at {when}, and {' '.join(argv)} failed (exit {rc})"
with open(rolled, "w", encoding="utf-8") as handle:
    handle.write(said + "\n")
if pid_path:
    os.unlink(pid_path)
raise SystemExit(rc)
"""

# Starts the rollback job. The job inherits a lock on the pid file and holds it for as long
# as it lives: a pid file whose lock is free is a leftover, whatever process its number now
# names, and is never signalled. Prints the job's pid.
DETACH = r"""
import fcntl, os, subprocess, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    raise SystemExit("a rollback job is already running")
job = subprocess.Popen([sys.executable, "-c"] + sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, start_new_session=True, pass_fds=(fd,))
os.ftruncate(fd, 0)
os.pwrite(fd, b"%d\n" % job.pid, 0)
print(job.pid)
"""


class Pending:
    """A load waiting for confirmation: the previous rules and a detached rollback job."""

    def __init__(self, module: AnsibleModule, state_dir: str, anchor: str, pfctl: str, record_path: str) -> None:
        self.module, self.anchor, self.pfctl, self.record_path = module, anchor, pfctl, record_path
        self.lock = lock.lock_path(state_dir)
        base = os.path.join(state_dir, f"pf-{anchor}")
        self.previous, self.content, self.pid, self.rolled = (base + suffix for suffix in (".previous", ".pending", ".rollback.pid", ".rolled-back"))

    def running(self) -> int | None:
        """The pid of the live rollback job, or None. The job holds a lock on its pid file for
        as long as it lives; a pid file nobody holds a lock on is a leftover."""
        try:
            fd = os.open(self.pid, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
        if not text.isdigit():
            self.module.fail_json(msg=f"{self.pid} is locked but names no process ({text!r}); nothing was signalled")
        pid = int(text)
        try:
            leader = os.getpgid(pid) == pid
        except OSError:
            leader = False
        if not leader:
            self.module.fail_json(msg=f"{self.pid} is locked, but pid {pid} is not a rollback job (not a process group leader); nothing was signalled")
        return pid

    def prepare(self, previous: str | None, previous_record: dict | None, content: str | None) -> None:
        """Before the load: keep what a rollback loads again (``previous``: None empties the
        anchor) and its record, and the content that a confirmation writes to the boot file."""
        state.remove(self.rolled)
        for leftover in (self.content, self.previous, self.previous + ".json"):
            state.remove(leftover)
        if content is not None:
            files.write_atomic(self.content, content)
        if previous is not None:
            files.write_atomic(self.previous, previous)
        if previous_record is not None:
            files.write_atomic(self.previous + ".json", json.dumps(previous_record, indent=1, sort_keys=True) + "\n")

    def _job_args(self, wait: int, locked: bool) -> list[str]:
        previous_record = self.previous + ".json"
        return [JOB, str(int(wait)), self.pfctl, self.anchor, self.previous if os.path.exists(self.previous) else "",
                previous_record if os.path.exists(previous_record) else "", self.record_path, self.rolled,
                self.pid if locked else "", self.lock if locked else ""]

    def start(self, timeout: int) -> str | None:
        """Start the rollback job; None, or what went wrong."""
        rc, out, err = self.module.run_command([sys.executable, "-c", DETACH, self.pid] + self._job_args(timeout, True))
        if rc != 0 or not out.strip().isdigit():
            return err.strip() or out.strip() or f"exit {rc}"
        return None

    def roll_back_now(self) -> str:
        """Load the previous rules at once (this run holds the apply lock); say what happened."""
        rc, out, err = self.module.run_command([sys.executable, "-c"] + self._job_args(0, False))
        said = state.read_text(self.rolled) or f"the rollback failed (exit {rc}): {err.strip()}"
        state.remove(self.rolled)
        return said.strip()

    def cancel(self) -> bool:
        """Stop the rollback job; False when none is running (it ran, or the pid file is a
        leftover, in which case no process is signalled)."""
        pid = self.running()
        if pid is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except OSError:
                    break
                deadline = time.monotonic() + 5
                while self.running() is not None and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self.running() is None:
                    break
            if self.running() is not None:
                self.module.fail_json(msg=f"could not stop the rollback job (pid {pid})")
        state.remove(self.pid)
        return pid is not None

    def forget(self) -> None:
        for leftover in (self.pid, self.content, self.previous, self.previous + ".json"):
            state.remove(leftover)


def previous_rules(record: dict | None, now: str | None, boot_text: str | None) -> tuple:
    """What to load again if this run has to be undone, and its record: the anchor as it is
    (nothing, when it is empty), known by its record, or else by the boot file."""
    if now is None:
        return None, None
    if record is not None and record["listing"] == now:
        return record["content"], record
    return boot_text, None


def confirm(module: AnsibleModule, pending: Pending, path: str, result: dict) -> None:
    """``confirm: true``: stop the rollback job and write the boot file; exits."""
    if pending.running() is None:
        if os.path.exists(pending.rolled):
            module.fail_json(msg=f"too late: {(state.read_text(pending.rolled) or '').strip()}", **result)
        if os.path.exists(pending.pid):
            if not module.check_mode:
                pending.forget()
            module.fail_json(msg=f"nothing can be confirmed: no rollback job is running for anchor {pending.anchor} (the box was restarted,"
                                 f" or the job was stopped); the process named in the leftover {pending.pid} was left alone."
                                 " Load the rules again", **result)
        module.exit_json(**result)
    content = state.read_text(pending.content) or ""
    result["file_changed"] = bool(path) and state.read_text(path) != content
    result["changed"] = True
    if module.check_mode:
        module.exit_json(**result)
    try:
        staged = [files.stage(module, path, content)] if result["file_changed"] else []
    except files.WriteError as exc:
        module.fail_json(msg=f"{exc}; not confirmed: the box puts the previous rules back when the confirmation window ends", **result)
    if not pending.cancel():
        module.fail_json(msg="too late: the rollback already ran", **result)
    files.finish(module, result, staged, roll_back=pending.roll_back_now)
    pending.forget()
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "content": {"type": "str"},
            "anchor": {"type": "str", "default": "warden_egress"},
            "path": {"type": "path", "default": "/etc/pf.anchors/warden_egress"},
            "state_dir": {"type": "path", "default": "/var/lib/warden_egress"},
            "confirm_timeout": {"type": "int", "default": 0},
            "confirm": {"type": "bool", "default": False},
            "lock_timeout": {"type": "int", "default": 120},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    params = module.params
    anchor = params["anchor"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", anchor):
        module.fail_json(msg=f"anchor: {anchor!r} is not a usable anchor name")
    for name in ("confirm_timeout", "lock_timeout"):
        if params[name] < 0:
            module.fail_json(msg=f"{name}: {params[name]} must be 0 or more seconds")
    pfctl = module.get_bin_path("pfctl", required=True, opt_dirs=["/sbin"])
    record_path = os.path.join(params["state_dir"], f"pf-{anchor}.json")
    pending = Pending(module, params["state_dir"], anchor, pfctl, record_path)
    keep_file = bool(params["path"])
    result = {"changed": False, "anchor": anchor, "ruleset_changed": False, "file_changed": False, "pending_confirmation": False}

    content = params["content"]
    if not params["confirm"] and params["state"] == "present":
        if content is None:
            module.fail_json(msg="content: required to load the anchor (or give confirm: true)", **result)
        problem = check_content(content)
        if problem:
            module.fail_json(msg=f"content: refusing to load: {problem}", **result)
        rc, out, err = state.run_with_file(module, [pfctl, "-n", "-a", anchor, "-f"], content, ".pf")
        if rc != 0:
            module.fail_json(msg=f"content: pfctl -n rejected the rules, nothing was loaded: {(err or out).strip()}", **result)
    lock.hold(module, params["state_dir"], params["lock_timeout"], result)
    if params["confirm"]:
        confirm(module, pending, params["path"], result)

    record = state.read_record(record_path)
    now = listing(module, pfctl, anchor)
    if params["state"] == "absent":
        def unload():
            rc, out, err = module.run_command([pfctl, "-a", anchor, "-F", "all"])
            if rc != 0:
                module.fail_json(msg=f"pfctl -a {anchor} -F all failed: {err.strip()}", **result)

        state.remove_all(module, result, record, now, record_path, params["path"], unload)

    state.plan(module, result, record, content, now, keep_file and state.read_text(params["path"]) != content, f"anchor {anchor}")
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    confirming = result["ruleset_changed"] and params["confirm_timeout"] > 0
    staged = files.stage_all(module, result, [(params["path"], content, 0o644)] if result["file_changed"] and not confirming else [])
    if not result["ruleset_changed"]:
        files.finish(module, result, staged)
        module.exit_json(**result)

    pending.cancel()
    previous, previous_record = previous_rules(record, now, state.read_text(params["path"]) if keep_file else None)
    try:
        pending.prepare(previous, previous_record, content if confirming else None)
    except files.WriteError as exc:
        module.fail_json(msg=f"{exc}; nothing was loaded or written", **result)
    rc, out, err = state.run_with_file(module, [pfctl, "-a", anchor, "-f"], content, ".pf")
    if rc != 0:
        module.fail_json(msg=f"pfctl -a {anchor} -f failed; the anchor was not changed: {(err or out).strip()}", **result)
    loaded = listing(module, pfctl, anchor)
    if not confirming:
        files.finish(module, result, staged, write_record=lambda: state.write_record(record_path, content, loaded or ""),
                     roll_back=pending.roll_back_now, undo_record=lambda: state.put_back_record(record_path, record))
        pending.forget()
        module.exit_json(**result)
    try:
        state.write_record(record_path, content, loaded or "")
    except (OSError, files.WriteError) as exc:
        module.fail_json(msg=f"cannot write the record of what was applied: {files.why(exc)}; {pending.roll_back_now()}", **result)
    problem = pending.start(params["confirm_timeout"])
    if problem:
        module.fail_json(msg=f"could not start the rollback job ({problem}); {pending.roll_back_now()}", **result)
    result["pending_confirmation"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
