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
    second call with O(confirm=true) arrives within that many seconds; the contract is the same
    as that of P(warden.egress.nft_apply#module) and P(warden.egress.iptables_apply#module).
    The rollback process holds a lock on its pid file for as long as it lives; a confirmation
    only signals a process that holds it, so a leftover pid file (after a restart) never gets
    another process killed.
  - Without O(confirm_timeout), the boot file is written under a temporary name beside O(path)
    before the load and renamed into place after it. If it cannot be written, nothing is
    loaded; if the rename fails, the previous rules are loaded again. The anchor and the boot
    file never disagree, and the run fails with one line saying why.
  - One apply at a time. The module holds a lock in O(state_dir) for the whole run (and the
    rollback job takes it before it rolls back), so a second run waits for the first (at most
    O(lock_timeout) seconds).
    The commands it runs inherit that lock, so a command still running after the module was
    killed (an interrupted load) holds the next run back until it has finished.
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
  lock_timeout:
    description:
      - Seconds to wait for another apply on the same box (same O(state_dir)) to finish.
        The run fails, changing nothing, when the lock is still held after that.
    type: int
    default: 120
    version_added: 0.5.0
  confirm_timeout:
    description:
      - Seconds the box waits for a second call with O(confirm=true) after a load that changed
        its rules. Before the load it saves what it owns (also when that is nothing), and after it
        arms a rollback that runs on the box without the controller. Unless confirmed in time,
        that rollback puts back exactly what was saved, in one transaction.
      - The rollback is a transient systemd timer (C(systemd-run --on-active)) where systemd runs
        the box and the module shares its network and mount namespaces; elsewhere (no systemd,
        or under C(ip netns exec)) it is a detached process and a twin forked from it, both holding
        a lock on its pid file; whichever is left when the window ends rolls back, so killing one
        of them (not their process group) leaves the load guarded.
      - The boot file and the record of what was applied are written only on confirmation, so
        a restart while a load waits brings the previous rules back.
      - One load waits at a time. Another load (or a removal) waits, releasing the apply lock,
        until the pending one is confirmed or rolled back, at most O(lock_timeout) seconds, then
        fails changing nothing. A plan whose rollback is no longer armed (the box restarted)
        is rolled back by the next run.
      - C(0) loads without a confirmation step. Below 15 seconds the module warns (too little
        time for a controller to reconnect and confirm).
    type: int
    default: 0
  confirm:
    description:
      - Confirm the load a previous call made with O(confirm_timeout). This stops its rollback and writes the
        record and the boot file. Give it without the rules (and without O(state=absent)).
      - Fails when no load waits ("nothing to confirm"), and when the rollback already ran or is
        no longer armed ("too late", with what the box did and when). Warns when the
        confirmation came after more than half of the window.
      - The window is strict. A confirmation that reaches the box after O(confirm_timeout) seconds
        is refused ("too late") even if the rollback has not run yet, and the previous rules are
        put back at once (in check mode it only says that the window has passed).
      - It signals the rollback process only after checking that the process group the pid file
        names runs this load's rollback program, with its token.
      - In check mode it says whether there is a load to confirm, and changes nothing.
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
  sample: true
rollback_by:
  description: What puts the previous rules back unless the load is confirmed.
  returned: when the load waits for confirmation
  type: str
  sample: systemd timer warden-egress-rollback-3f1d5c0e0b1e.timer
rollback_at:
  description: When the target puts the previous rules back unless the load is confirmed (the target's clock).
  returned: when the load waits for confirmation
  type: str
  sample: "2026-12-02 11:02:00 +0000"
since_load:
  description:
    - Seconds between the load and the moment the box received this O(confirm=true) call (its clock).
    - Lets the controller place the load and the rollback on its own clock.
  returned: when O(confirm=true) finds a load waiting, or what its rollback did
  type: float
  sample: 21.3
confirmed_after:
  description: Seconds between the load and its confirmation.
  returned: when O(confirm=true) confirmed a load
  type: float
  sample: 2.4
rolled_back:
  description: Whether the target put the previous rules back (a late O(confirm=true) reports it).
  returned: when O(confirm=true) came too late
  type: bool
  sample: true
rolled_back_at:
  description: When the target put the previous rules back.
  returned: when O(confirm=true) came too late
  type: str
  sample: "2026-12-02 11:02:00 +0000"
rollback_seconds:
  description: Seconds between the load and the rollback.
  returned: when O(confirm=true) came too late
  type: float
  sample: 10.1
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.warden.egress.plugins.module_utils import _apply_confirm as confirming
from ansible_collections.warden.egress.plugins.module_utils import _apply_files as files
from ansible_collections.warden.egress.plugins.module_utils import _apply_lock as lock
from ansible_collections.warden.egress.plugins.module_utils import _apply_rollback as rollback
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


def previous_rules(record: dict | None, now: str | None, boot_text: str | None) -> str | None:
    """What to load again if this run has to be undone: the anchor as it is (None: empty),
    known by its record, or else by the boot file."""
    if now is None:
        return None
    if record is not None and record["listing"] == now:
        return record["content"]
    return boot_text


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
    if params["confirm"] and (params["content"] is not None or params["state"] != "present"):
        module.fail_json(msg="confirm: true confirms the pending load; give it without content and without state: absent")
    pfctl = module.get_bin_path("pfctl", required=True, opt_dirs=["/sbin"])
    record_path = os.path.join(params["state_dir"], f"pf-{anchor}.json")
    pending = confirming.Pending(module, params["state_dir"], f"pf-{anchor}", f"anchor {anchor}")
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
    fd = lock.hold(module, params["state_dir"], params["lock_timeout"], result)
    if params["confirm"]:
        confirming.confirm(module, pending, result)
    if not module.check_mode:
        confirming.settle(module, fd, params["state_dir"], params["lock_timeout"], result)

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

    staged = files.stage_all(module, result, [(params["path"], content, 0o644)] if result["file_changed"] else [])
    if not result["ruleset_changed"]:
        files.finish(module, result, staged)
        module.exit_json(**result)

    restore = {"backend": "pf", "pfctl": pfctl, "anchor": anchor,
               "saved": previous_rules(record, now, state.read_text(params["path"]) if keep_file else None)}
    if params["confirm_timeout"] > 0 and restore["saved"] is not None:
        rc, out, err = state.run_with_file(module, [pfctl, "-n", "-a", anchor, "-f"], restore["saved"], ".pf")
        if rc != 0:
            module.fail_json(msg=f"the rules loaded now would not load again, so a rollback could not put them back ({(err or out).strip()});"
                                 " nothing was loaded (load without confirm_timeout)", **files.unchanged(result))
    rc, out, err = state.run_with_file(module, [pfctl, "-a", anchor, "-f"], content, ".pf")
    if rc != 0:
        module.fail_json(msg=f"pfctl -a {anchor} -f failed; the anchor was not changed: {(err or out).strip()}", **files.unchanged(result))
    loaded = listing(module, pfctl, anchor) or ""
    if params["confirm_timeout"] > 0:
        boot = [{"path": params["path"], "text": content, "mode": 0o644}] if keep_file else []
        pending.arm(params["confirm_timeout"], restore, {"boot": boot, "record": {"path": record_path, "content": content, "listing": loaded, "extra": {}}},
                    result)
        module.exit_json(**result)

    def roll_back() -> str:
        problem = rollback.restore_pf(restore)
        if problem:
            return f"putting the previous rules back failed too ({problem}): the new rules are loaded"
        return "the previous rules were put back" if restore["saved"] is not None else "the anchor was emptied again"

    files.finish(module, result, staged, write_record=lambda: state.write_record(record_path, content, loaded),
                 roll_back=roll_back, undo_record=lambda: state.put_back_record(record_path, record))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
