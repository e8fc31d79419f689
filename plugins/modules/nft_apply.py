#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nft_apply
short_description: Replace one nftables table atomically, only when it differs, with an optional confirmed apply
version_added: 0.1.0
description:
  - Loads a generated C(nft -f) file that declares exactly one table, in one transaction,
    so the table is replaced whole and no other table (Docker's, firewalld's, an
    administrator's) is touched.
  - The file is checked with C(nft -c) first; nothing is loaded when the check fails.
  - Idempotent. After a load, the module records the file's hash and the table as the
    kernel lists it back (without counters, and without the elements that traffic adds to
    dynamic sets such as per-source meters). When both still match, nothing is done. A hand edit to the table
    is seen as drift and put right.
  - Writes the file to O(path) so that a boot-time unit can load the same rules again. The
    new file is written under a temporary name beside O(path) before the table is loaded, and
    renamed into place after the load. If it cannot be written (a full disk, a directory at
    O(path)), nothing is loaded; if the rename fails, the previous table is loaded again. The
    kernel and the boot file never disagree, and the run fails with one line saying why.
  - With O(confirm_timeout), a confirmed apply. The host puts the previous table back by itself
    unless a second call with O(confirm=true) arrives within that many seconds, and only a
    confirmed load reaches the boot file and the record. The same contract as
    P(warden.egress.pf_apply#module).
  - One apply at a time. The module holds a lock in O(state_dir) for the whole run, so a second
    run on the same host waits for the first (at most O(lock_timeout) seconds).
    The commands it runs inherit that lock, so a command still running after the module was
    killed (an interrupted load) holds the next run back until it has finished.
  - Directories it creates get explicit modes whatever the umask (O(state_dir) 0700, the
    directory of O(path) 0755).
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Reports whether the table or the file would change; loads and writes nothing.
  diff_mode:
    support: full
    description: Shows the previous ruleset against the new one.
  idempotent:
    support: full
    description: A second run with the same content reports no change.
options:
  content:
    description:
      - The ruleset file, as rendered by the P(warden.egress.to_nftables#filter) filter.
      - It may only create, delete and declare the table named by O(family) and O(table).
      - It must declare that table with at least one chain. An empty file, or one that only
        deletes the table, is refused; remove the table with O(state=absent).
      - Required when O(state=present).
    type: str
  table:
    description: Name of the table the collection owns.
    type: str
    default: warden_egress
  family:
    description: Family of that table.
    type: str
    choices: [inet, ip, ip6]
    default: inet
  path:
    description:
      - Where the loaded ruleset is kept for boot-time loading.
      - Set to an empty string to keep no file.
    type: path
    default: /etc/warden_egress/warden_egress.nft
  state_dir:
    description: Directory for the record of what was last applied, and the lock file C(apply.lock).
    type: path
    default: /var/lib/warden_egress
  lock_timeout:
    description:
      - Seconds to wait for another apply on the same host (same O(state_dir)) to finish.
        The run fails, changing nothing, when the lock is still held after that.
    type: int
    default: 120
    version_added: 0.5.0
  confirm_timeout:
    description:
      - Seconds the target waits for a second call with O(confirm=true) after a load that changed
        its rules. Before the load it saves what it owns (also when that is nothing), and after it
        arms a rollback that runs on the target without the controller. Unless confirmed in time,
        that rollback puts back exactly what was saved, in one transaction.
      - The rollback is a transient systemd timer (C(systemd-run --on-active)) where systemd runs
        the target and the module shares its network and mount namespaces; elsewhere (no systemd,
        or under C(ip netns exec)) it is a detached process and a twin forked from it, both holding
        a lock on its pid file; whichever is left when the window ends rolls back, so killing one
        of them (not their process group) leaves the load guarded.
      - The boot file and the record of what was applied are written only on confirmation, so
        a restart while a load waits brings the previous rules back.
      - One load waits at a time. Another load (or a removal) waits, releasing the apply lock,
        until the pending one is confirmed or rolled back, at most O(lock_timeout) seconds, then
        fails changing nothing. A plan whose rollback is no longer armed (the target restarted)
        is rolled back by the next run.
      - C(0) loads without a confirmation step. Below 15 seconds the module warns (too little
        time for a controller to reconnect and confirm).
    type: int
    default: 0
    version_added: 0.5.0
  confirm:
    description:
      - Confirm the load a previous call made with O(confirm_timeout). This stops its rollback and writes the
        record and the boot file. Give it without the rules (and without O(state=absent)).
      - Fails when no load waits ("nothing to confirm"), and when the rollback already ran or is
        no longer armed ("too late", with what the target did and when). Warns when the
        confirmation came after more than half of the window.
      - The window is strict. A confirmation that reaches the target after O(confirm_timeout) seconds
        is refused ("too late") even if the rollback has not run yet, and the previous rules are
        put back at once (in check mode it only says that the window has passed).
      - It signals the rollback process only after checking that the process group the pid file
        names runs this load's rollback program, with its token.
      - In check mode it says whether there is a load to confirm, and changes nothing.
    type: bool
    default: false
    version_added: 0.5.0
  state:
    description: C(present) loads O(content); C(absent) deletes the table, its file and its record.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - nftables (the C(nft) command)
notes:
  - Needs root (CAP_NET_ADMIN) on the target.
"""

EXAMPLES = r"""
- name: Load the host's egress policy
  warden.egress.nft_apply:
    content: "{{ egress_policy | warden.egress.to_nftables }}"

- name: Load; the host puts the previous table back by itself unless confirmed within 60 seconds
  warden.egress.nft_apply:
    content: "{{ egress_policy | warden.egress.to_nftables }}"
    confirm_timeout: 60
  register: applied

- name: Drop the connection, so that the next task needs a new one
  ansible.builtin.meta: reset_connection

- name: Confirm over the new connection (keeps the table, writes the boot file)
  warden.egress.nft_apply:
    confirm: true
  when: applied.pending_confirmation

- name: Remove the collection's table and its boot file
  warden.egress.nft_apply:
    state: absent
"""

RETURN = r"""
table:
  description: The table managed, as C(family name).
  returned: always
  type: str
  sample: inet warden_egress
sha256:
  description: SHA-256 of O(content).
  returned: when O(state=present)
  type: str
  sample: 3f1d5c0e0b1e2d7a9c5f4e6b8a7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d
ruleset_changed:
  description: Whether the kernel's table was (or in check mode would be) replaced.
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
    - Seconds between the load and the moment the target received this O(confirm=true) call (its clock).
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

STATEMENT = re.compile(r"^(?:(delete|flush|add|create)\s+)?(table|chain|set|map|rule|element|ruleset)\b\s*(\S*)\s*(\S*)")


def check_scope(content: str, family: str, table: str) -> str | None:
    """Return a problem if the file reaches outside the one table it may manage, or leaves
    that table out (an empty file would leave the host unfiltered, not remove the table)."""
    depth = 0
    declared = False  # the file ends with the table declared, with at least one chain
    for number, raw in enumerate(content.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if depth == 0:
            match = STATEMENT.match(line)
            if not match or match.group(2) != "table":
                return f"line {number}: only '{family} {table}' table statements are allowed at top level: {line!r}"
            if match.group(3) != family or match.group(4).rstrip("{").strip() != table:
                return f"line {number}: names a table other than '{family} {table}': {line!r}"
            if match.group(1) == "delete":
                declared = False
        elif depth == 1 and line.startswith("chain "):
            declared = True
        depth += line.count("{") - line.count("}")
    if depth != 0:
        return "unbalanced braces"
    if not declared:
        return (f"the file declares no chain in table '{family} {table}': an empty ruleset would leave the host unfiltered"
                " (to remove the table, use state: absent)")
    return None


def stable_listing(text: str) -> str:
    """The table as listed, less what traffic changes: the elements that the packet path
    adds to dynamic sets (per-source meters). Counters are left out by listing with -s."""
    out = []
    in_set = dynamic = skipping = False
    depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        if skipping:
            depth += stripped.count("{") - stripped.count("}")
            if depth <= 0:
                skipping = False
            continue
        if stripped.startswith("set ") and stripped.endswith("{"):
            in_set, dynamic = True, False
        elif in_set and stripped == "}":
            in_set = False
        elif in_set and stripped.startswith("flags ") and "dynamic" in stripped:
            dynamic = True
        elif in_set and dynamic and stripped.startswith("elements = {"):
            depth = stripped.count("{") - stripped.count("}")
            skipping = depth > 0
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def read_table(module: AnsibleModule, nft: str, family: str, table: str) -> str | None:
    """The table as ``nft -s list table`` prints it (which ``nft -f`` loads again), or None."""
    rc, out, dummy = module.run_command([nft, "-s", "list", "table", family, table])
    return out if rc == 0 else None


def list_table(module: AnsibleModule, nft: str, family: str, table: str) -> str | None:
    text = read_table(module, nft, family, table)
    return None if text is None else stable_listing(text)


def replace_table(module: AnsibleModule, nft: str, family: str, table: str, text: str | None) -> str | None:
    """Load ``text`` (a table as read_table() printed it; None: no table) in place of the
    table, in one transaction. Returns None, or what went wrong."""
    rc, out, err = run_nft(module, nft, ["-f"], f"table {family} {table}\ndelete table {family} {table}\n{text or ''}")
    return None if rc == 0 else (err.strip() or f"nft exited with {rc}")


def run_nft(module: AnsibleModule, nft: str, args: list[str], text: str | None = None) -> tuple[int, str, str]:
    if text is None:
        return module.run_command([nft] + args)
    return state.run_with_file(module, [nft] + args, text, ".nft")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "content": {"type": "str"},
            "table": {"type": "str", "default": "warden_egress"},
            "family": {"type": "str", "choices": ["inet", "ip", "ip6"], "default": "inet"},
            "path": {"type": "path", "default": "/etc/warden_egress/warden_egress.nft"},
            "state_dir": {"type": "path", "default": "/var/lib/warden_egress"},
            "lock_timeout": {"type": "int", "default": 120},
            "confirm_timeout": {"type": "int", "default": 0},
            "confirm": {"type": "bool", "default": False},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    params = module.params
    family, table = params["family"], params["table"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", table):
        module.fail_json(msg=f"table: {table!r} is not a valid table name")
    for name in ("lock_timeout", "confirm_timeout"):
        if params[name] < 0:
            module.fail_json(msg=f"{name}: {params[name]} must be 0 or more seconds")
    if params["confirm"] and (params["content"] is not None or params["state"] != "present"):
        module.fail_json(msg="confirm: true confirms the pending load; give it without content and without state: absent")
    if params["state"] == "present" and not params["confirm"] and params["content"] is None:
        module.fail_json(msg="content: required to load the table (or give confirm: true, or state: absent)")
    nft = module.get_bin_path("nft", required=True)
    record_path = os.path.join(params["state_dir"], f"{family}-{table}.json")
    keep_file = bool(params["path"])
    result = {"changed": False, "table": f"{family} {table}", "ruleset_changed": False, "file_changed": False, "pending_confirmation": False}
    pending = confirming.Pending(module, params["state_dir"], f"{family}-{table}", f"table {family} {table}")

    if params["state"] == "present" and not params["confirm"]:
        problem = check_scope(params["content"], family, table)
        if problem:
            module.fail_json(msg=f"content: refusing to load: {problem}", **result)
        rc, out, err = run_nft(module, nft, ["-c", "-f"], params["content"])
        if rc != 0:
            module.fail_json(msg=f"content: nft -c rejected the ruleset, nothing was loaded: {err.strip()}", **result)
    fd = lock.hold(module, params["state_dir"], params["lock_timeout"], result)
    if params["confirm"]:
        confirming.confirm(module, pending, result)
    if not module.check_mode:
        confirming.settle(module, fd, params["state_dir"], params["lock_timeout"], result)
    before = read_table(module, nft, family, table)
    listing = None if before is None else stable_listing(before)
    record = state.read_record(record_path)

    if params["state"] == "absent":
        def unload():
            rc, out, err = module.run_command([nft, "delete", "table", family, table])
            if rc != 0:
                module.fail_json(msg=f"nft delete table {family} {table} failed: {err.strip()}", **result)

        state.remove_all(module, result, record, listing, record_path, params["path"], unload)

    content = params["content"]
    state.plan(module, result, record, content, listing, keep_file and state.read_text(params["path"]) != content, f"{family} {table}")
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    waits = result["ruleset_changed"] and params["confirm_timeout"] > 0
    staged = files.stage_all(module, result, [(params["path"], content, 0o644)] if result["file_changed"] else [])
    if not result["ruleset_changed"]:
        files.finish(module, result, staged)
        module.exit_json(**result)
    if waits:
        restore = {"backend": "nftables", "nft": nft, "family": family, "table": table, "saved": listing}
        rc, out, err = run_nft(module, nft, ["-c", "-f"], rollback.nftables_text(restore))
        if rc != 0:
            module.fail_json(msg=f"the table as loaded now would not load again, so a rollback could not put it back ({err.strip()});"
                                 " nothing was loaded (load without confirm_timeout)", **files.unchanged(result))

    rc, out, err = run_nft(module, nft, ["-f"], content)
    if rc != 0:
        module.fail_json(msg=f"nft -f failed; the transaction was rolled back and the old table is still loaded: {err.strip()}", **files.unchanged(result))

    def roll_back() -> str:
        problem = replace_table(module, nft, family, table, before)
        if problem:
            return f"putting the previous table back failed too ({problem}): the new table is loaded"
        return "the previous table was put back" if before is not None else "the new table was removed again"

    loaded = list_table(module, nft, family, table)
    if loaded is None:
        module.fail_json(msg=f"table {family} {table} missing after load; {roll_back()}", **result)
    if waits:
        boot = [{"path": params["path"], "text": content, "mode": 0o644}] if keep_file else []
        pending.arm(params["confirm_timeout"], restore, {"boot": boot, "record": {"path": record_path, "content": content, "listing": loaded, "extra": {}}},
                    result)
        module.exit_json(**result)
    files.finish(module, result, staged, write_record=lambda: state.write_record(record_path, content, loaded),
                 roll_back=roll_back, undo_record=lambda: state.put_back_record(record_path, record))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
