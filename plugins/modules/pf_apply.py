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
    written once the load is confirmed.
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
    description: The anchor's rules. Required when O(state=present) and O(confirm) is not set.
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
    description: Directory for the record of what was last applied and of a pending confirmation.
    type: path
    default: /var/lib/warden_egress
  confirm_timeout:
    description:
      - Seconds the box waits for O(confirm=true) before it loads the previous anchor again.
        C(0) loads without a confirmation step.
    type: int
    default: 0
  confirm:
    description:
      - Confirm the load a previous call made with O(confirm_timeout); cancels the pending
        rollback and writes the boot file. Fails if the rollback has already happened.
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

import json
import os
import re
import shlex
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.warden.egress.plugins.module_utils import _apply_state as state


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


# Starts a shell script in its own session, detached from this run, and prints its pid: the
# rollback job must outlive the module (and the connection that may be lost).
DETACH = (
    "import subprocess, sys\n"
    "job = subprocess.Popen(['/bin/sh', '-c', sys.argv[1]], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,"
    " stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)\n"
    "print(job.pid)\n"
)


class Pending:
    """A load waiting for confirmation: the previous rules and a detached rollback job."""

    def __init__(self, module: AnsibleModule, state_dir: str, anchor: str) -> None:
        self.module = module
        base = os.path.join(state_dir, f"pf-{anchor}")
        self.previous, self.content, self.pid, self.rolled = (base + suffix for suffix in (".previous", ".pending", ".rollback.pid", ".rolled-back"))

    def active(self) -> bool:
        return os.path.exists(self.pid)

    def start(self, pfctl: str, anchor: str, previous: dict | None, content: str, timeout: int, record_path: str) -> None:
        """``previous`` is the record of the rules loaded before (None: an empty anchor). The
        rollback loads them again and puts their record back, so the next run sees them."""
        state.write_atomic(self.content, content, mode=0o600)
        if previous is None:
            restore = f"{shlex.quote(pfctl)} -a {shlex.quote(anchor)} -F all && rm -f {shlex.quote(record_path)}"
        else:
            state.write_atomic(self.previous, previous["content"], mode=0o600)
            state.write_atomic(self.previous + ".json", json.dumps(previous, indent=1, sort_keys=True) + "\n", mode=0o600)
            restore = (f"{shlex.quote(pfctl)} -a {shlex.quote(anchor)} -f {shlex.quote(self.previous)}"
                       f" && mv {shlex.quote(self.previous + '.json')} {shlex.quote(record_path)}")
        state.remove(self.rolled)
        script = f"sleep {int(timeout)}; {restore} && date > {shlex.quote(self.rolled)}; rm -f {shlex.quote(self.pid)}"
        rc, out, err = self.module.run_command([sys.executable, "-c", DETACH, script])
        if rc != 0 or not out.strip().isdigit():
            self.module.fail_json(msg=f"could not start the rollback job: {err.strip() or out.strip()}")
        state.write_atomic(self.pid, out.strip() + "\n", mode=0o600)

    def cancel(self) -> bool:
        """Stop the rollback job; False when it already ran."""
        pid = state.read_text(self.pid)
        if pid is None:
            return False
        try:
            os.killpg(int(pid), 15)
        except (OSError, ValueError):
            pass
        state.remove(self.pid)
        return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "content": {"type": "str"},
            "anchor": {"type": "str", "default": "warden_egress"},
            "path": {"type": "path", "default": "/etc/pf.anchors/warden_egress"},
            "state_dir": {"type": "path", "default": "/var/lib/warden_egress"},
            "confirm_timeout": {"type": "int", "default": 0},
            "confirm": {"type": "bool", "default": False},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    params = module.params
    anchor = params["anchor"]
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$", anchor):
        module.fail_json(msg=f"anchor: {anchor!r} is not a usable anchor name")
    if params["confirm_timeout"] < 0:
        module.fail_json(msg=f"confirm_timeout: {params['confirm_timeout']} must be 0 or more seconds")
    pfctl = module.get_bin_path("pfctl", required=True, opt_dirs=["/sbin"])
    record_path = os.path.join(params["state_dir"], f"pf-{anchor}.json")
    record = state.read_record(record_path)
    pending = Pending(module, params["state_dir"], anchor)
    keep_file = bool(params["path"])
    result = {"changed": False, "anchor": anchor, "ruleset_changed": False, "file_changed": False, "pending_confirmation": False}

    if params["confirm"]:
        if not pending.active():
            if os.path.exists(pending.rolled):
                module.fail_json(msg=f"too late: the box put the previous {anchor} rules back at {state.read_text(pending.rolled).strip()}", **result)
            module.exit_json(**result)
        content = state.read_text(pending.content) or ""
        result["file_changed"] = keep_file and state.read_text(params["path"]) != content
        result["changed"] = True
        if not module.check_mode:
            if not pending.cancel():
                module.fail_json(msg="too late: the rollback already ran", **result)
            if result["file_changed"]:
                state.write_atomic(params["path"], content)
            for leftover in (pending.content, pending.previous, pending.previous + ".json"):
                state.remove(leftover)
        module.exit_json(**result)

    now = listing(module, pfctl, anchor)
    if params["state"] == "absent":
        def unload():
            rc, out, err = module.run_command([pfctl, "-a", anchor, "-F", "all"])
            if rc != 0:
                module.fail_json(msg=f"pfctl -a {anchor} -F all failed: {err.strip()}", **result)

        state.remove_all(module, result, record, now, record_path, params["path"], unload)

    content = params["content"]
    if content is None:
        module.fail_json(msg="content: required to load the anchor (or give confirm: true)", **result)
    rc, out, err = state.run_with_file(module, [pfctl, "-n", "-a", anchor, "-f"], content, ".pf")
    if rc != 0:
        module.fail_json(msg=f"content: pfctl -n rejected the rules, nothing was loaded: {(err or out).strip()}", **result)
    state.plan(module, result, record, content, now, keep_file and state.read_text(params["path"]) != content, f"anchor {anchor}")
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    if result["ruleset_changed"]:
        if pending.active():
            pending.cancel()
        previous = record if record is not None and record["listing"] == now else None
        rc, out, err = state.run_with_file(module, [pfctl, "-a", anchor, "-f"], content, ".pf")
        if rc != 0:
            module.fail_json(msg=f"pfctl -a {anchor} -f failed; the anchor was not changed: {(err or out).strip()}", **result)
        loaded = listing(module, pfctl, anchor)
        state.write_record(record_path, content, loaded or "")
        if params["confirm_timeout"] > 0:
            pending.start(pfctl, anchor, previous, content, params["confirm_timeout"], record_path)
            result["pending_confirmation"] = True
    if result["file_changed"] and not result["pending_confirmation"]:
        state.write_atomic(params["path"], content)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
