#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iptables_apply
short_description: Replace the collection's own iptables chains and ipsets atomically, only when they differ, with an optional confirmed apply
version_added: 0.2.0
description:
  - Loads the files rendered by P(warden.egress.to_iptables#filter) for IPv4 and IPv6. The
    collection owns the filter-table chains named C(TABLE-*) and the ipsets their rules use;
    every other chain, rule, policy and set is left as it was (nothing is flushed but its own
    chains).
  - Each family is changed in one C(iptables-restore --noflush) transaction that refills the
    collection's chains, puts its jump at the top of OUTPUT or FORWARD (moving it back there
    if something was inserted above it), and removes chains it no longer needs.
  - Set names carry a generation. New sets are created first and the old ones are destroyed
    only after both families switched, so no packet meets new sets with old rules.
  - Before anything is touched the files are loaded into a scratch network namespace (when
    the target allows C(unshare --net)), and each transaction is checked with
    C(iptables-restore --test). If the IPv6 load fails after the IPv4 one succeeded, the IPv4
    chains are put back as they were.
  - Idempotent. After a load the module records the files' hash and the chains, jumps and
    set members as the kernel lists them back. When both still match, nothing is done; a hand
    edit, a deleted jump or a jump pushed down is drift and is put right. A set created with a
    C(timeout) (audit mode's memory of the flows already logged) is filled by the kernel, so
    only its definition is compared, never its members.
  - Writes the files to O(directory) so that a boot-time unit can load the same rules again.
    The new files are written under temporary names in O(directory) before anything is
    loaded, and renamed into place after both families switched; the previous generation's
    sets are destroyed only then. If a file cannot be written, nothing is loaded; if a rename
    fails, the files already renamed and both families are put back as they were. The kernel
    and the boot files never disagree, and never mix two policies.
  - With O(confirm_timeout), a confirmed apply. The host puts the previous chains and sets back by itself
    unless a second call with O(confirm=true) arrives within that many seconds, and only a
    confirmed load reaches the boot files and the record. The same contract as
    P(warden.egress.pf_apply#module).
  - One apply at a time. The module holds a lock in O(state_dir) for the whole run, so a second
    run on the same host waits for the first (at most O(lock_timeout) seconds).
    The commands it runs inherit that lock, so a command still running after the module was
    killed (an interrupted load) holds the next run back until it has finished.
  - Directories it creates get explicit modes whatever the umask (O(state_dir) 0700,
    O(directory) 0755).
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Reports whether the rules or files would change; loads and writes nothing.
  diff_mode:
    support: full
    description: Shows the previously applied files (or the live chains) against the new ones.
  idempotent:
    support: full
    description: A second run with the same content reports no change.
options:
  ipset:
    description: The ipset file (C(create) and C(add) lines only). Required when O(state=present).
    type: str
  ipv4:
    description:
      - The C(iptables-restore) file for IPv4. Required when O(state=present).
      - It must insert the jump into the collection's chains. An empty file, or one with no
        jump, is refused; remove the chains with O(state=absent).
    type: str
  ipv6:
    description:
      - The C(ip6tables-restore) file for IPv6. Required when O(state=present).
      - It must insert the jump into the collection's chains, as O(ipv4) does.
    type: str
  table:
    description: Owner name; the collection's chains are named C(TABLE-*).
    type: str
    default: warden_egress
  directory:
    description:
      - Where the loaded files are kept for boot-time loading, as C(TABLE.ipset),
        C(TABLE.rules.v4) and C(TABLE.rules.v6).
      - Set to an empty string to keep no files.
    type: path
    default: /etc/warden_egress
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
        that rollback puts back exactly what was saved, in one transaction per family (the sets first, then IPv4, then IPv6).
      - The rollback is a transient systemd timer (C(systemd-run --on-active)) where systemd runs
        the target and the module shares its network and mount namespaces; elsewhere (no systemd,
        or under C(ip netns exec)) it is a detached process and a twin forked from it, both holding
        a lock on its pid file; whichever is left when the window ends rolls back, so killing one
        of them (not their process group) leaves the load guarded.
      - The boot files and the record of what was applied are written only on confirmation, so
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
        record and the boot files. Give it without the rules (and without O(state=absent)).
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
    description: C(present) loads the files; C(absent) removes the chains, jumps, sets, files and record.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - iptables (C(iptables-restore), C(ip6tables-restore), C(iptables-save), C(ip6tables-save)), nft or legacy backend
  - ipset
notes:
  - Needs root (CAP_NET_ADMIN) on the target.
"""

EXAMPLES = r"""
- name: Load the host's egress policy with iptables
  warden.egress.iptables_apply:
    ipset: "{{ ruleset.ipset }}"
    ipv4: "{{ ruleset.ipv4 }}"
    ipv6: "{{ ruleset.ipv6 }}"
  vars:
    ruleset: "{{ egress_policy | warden.egress.to_iptables }}"

- name: Load; the host puts the previous chains and sets back by itself unless confirmed within 60 seconds
  warden.egress.iptables_apply:
    ipset: "{{ ruleset.ipset }}"
    ipv4: "{{ ruleset.ipv4 }}"
    ipv6: "{{ ruleset.ipv6 }}"
    confirm_timeout: 60
  vars:
    ruleset: "{{ egress_policy | warden.egress.to_iptables }}"
  register: applied

- name: Drop the connection, so that the next task needs a new one
  ansible.builtin.meta: reset_connection

- name: Confirm over the new connection (keeps the rules, writes the boot files, destroys the old sets)
  warden.egress.iptables_apply:
    confirm: true
  when: applied.pending_confirmation

- name: Remove the collection's chains, sets and boot files
  warden.egress.iptables_apply:
    state: absent
"""

RETURN = r"""
chains:
  description: The collection's chains after the run, per family.
  returned: always
  type: dict
  sample: {"ipv4": ["warden_egress-deny", "warden_egress-output"], "ipv6": ["warden_egress-deny", "warden_egress-output"]}
sha256:
  description: SHA-256 of the three files together.
  returned: when O(state=present)
  type: str
  sample: 3f1d5c0e0b1e2d7a9c5f4e6b8a7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d
ruleset_changed:
  description: Whether the chains or sets were (or in check mode would be) replaced.
  returned: always
  type: bool
  sample: true
file_changed:
  description: Whether the boot files were (or would be) written or removed.
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
validated:
  description: How the files were checked before loading (C(scratch namespace and --test) or C(--test)).
  returned: when the rules were loaded
  type: str
  sample: scratch namespace and --test
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.warden.egress.plugins.module_utils import _apply_confirm as confirming
from ansible_collections.warden.egress.plugins.module_utils import _apply_files as files
from ansible_collections.warden.egress.plugins.module_utils import _apply_lock as lock
from ansible_collections.warden.egress.plugins.module_utils import _apply_state as state
from ansible_collections.warden.egress.plugins.module_utils._iptables import (
    FAMILIES, HOOKS, SET_NAME, SET_SUFFIX, TARGETS, TOOLS, Target, body, combined, destroy_sets, drop_empty_filter, files_for, listing, restore,
    saved_body, scratch_check, split_words, transaction,
)


def check_rules(text: str, table: str, family: str, sets: set) -> str | None:
    """Return a problem if a restore file reaches outside the collection's own chains."""
    own = re.compile(rf"{re.escape(table)}-[a-z0-9]+")
    body = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.strip().startswith("#")]
    if not body:
        return "the file is empty: an empty ruleset would leave the host unfiltered (to remove the chains, use state: absent)"
    if len(body) < 2 or body[0][1] != "*filter" or body[-1][1] != "COMMIT":
        return "the file must be one '*filter' table ending in COMMIT"
    if not any(line.startswith("-I ") for dummy, line in body):
        return ("the file inserts no jump into the collection's chains: an empty ruleset would leave the host unfiltered"
                " (to remove the chains, use state: absent)")
    declared = set()
    for number, line in body[1:-1]:
        words = split_words(line)
        if not words:
            return f"line {number}: cannot be parsed: {line!r}"
        if line.startswith(":"):
            if len(words) != 3 or not own.fullmatch(words[0][1:]) or words[1] != "-":
                return f"line {number}: only chains named '{table}-*' may be declared: {line!r}"
            declared.add(words[0][1:])
            continue
        if words[0] == "-I":
            if len(words) != 9 or words[1] not in HOOKS or words[2] != "1" or words[3:7] != ["-m", "comment", "--comment", "warden.egress"] \
                    or words[7] != "-j" or words[8] != f"{table}-{HOOKS[words[1]]}":
                return f"line {number}: the only insert allowed is the jump at the top of OUTPUT or FORWARD: {line!r}"
            continue
        if words[0] != "-A" or len(words) < 2 or not own.fullmatch(words[1]):
            return f"line {number}: only rules appended to '{table}-*' chains are allowed: {line!r}"
        for flag, value in zip(words, words[1:]):
            if flag in ("-j", "-g") and value not in TARGETS and not own.fullmatch(value):
                return f"line {number}: target {value!r} is not the collection's own: {line!r}"
            if flag in ("--match-set", "--add-set", "--del-set") and (value not in sets or not value.endswith(SET_SUFFIX[family])):
                return f"line {number}: set {value!r} is not an {family} set created by the ipset file: {line!r}"
    for number, line in body[1:-1]:
        words = split_words(line)
        for flag, value in zip(words, words[1:]):
            if flag in ("-A", "-j", "-g") and own.fullmatch(value) and value not in declared:
                return f"line {number}: chain {value!r} is used but not declared"
    return None


def check_sets(text: str) -> tuple[str | None, set]:
    """Return (problem, names): the ipset file may only create and fill generation sets."""
    names: set = set()
    pattern = re.compile(rf"^(create|add) ({SET_NAME}) \S")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = pattern.match(line)
        if not match:
            return f"line {number}: only 'create' and 'add' of the collection's sets are allowed: {line!r}", names
        if match.group(1) == "create":
            names.add(match.group(2))
        elif match.group(2) not in names:
            return f"line {number}: set {match.group(2)!r} is filled before it is created", names
    return None, names


def absent(module: AnsibleModule, target: Target, params: dict, result: dict, record: dict | None, lives: dict) -> None:
    paths = files_for(params["directory"], params["table"]) if params["directory"] else {}
    owned_sets = {name for family in FAMILIES for name in lives[family]["sets"]} | set((record or {}).get("sets", []))
    owned_sets &= target.existing_sets()
    result["ruleset_changed"] = any(lives[f]["chains"] or lives[f]["jumps"] for f in FAMILIES) or bool(owned_sets)
    result["file_changed"] = any(os.path.exists(path) for path in paths.values())
    result["changed"] = result["ruleset_changed"] or result["file_changed"]
    if module._diff:
        result["diff"] = {"before": state.diff_before(record, listing(target, lives)), "after": ""}
    if result["changed"] and not module.check_mode:
        for path in paths.values():
            if os.path.isdir(path):
                module.fail_json(msg=f"directory: {path} is a directory, not a boot file; nothing was removed", **result)
        for family in FAMILIES:
            if lives[family]["chains"] or lives[family]["jumps"]:
                rc, err = restore(target, family, transaction([], lives[family]))
                if rc != 0:
                    module.fail_json(msg=f"{TOOLS[family][1]} failed removing the collection's chains: {err}", **result)
                drop_empty_filter(target, family)
        left = destroy_sets(target, owned_sets)
        if left:
            result["warnings"] = [f"ipsets still in use elsewhere, left in place: {', '.join(left)}"]
        state.remove_files(module, result, list(paths.values()))
    if not module.check_mode:
        state.remove_files(module, result, [os.path.join(params["state_dir"], f"iptables-{params['table']}.json")])
    result["chains"] = {family: [] if not module.check_mode else lives[family]["chains"] for family in FAMILIES}
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "ipset": {"type": "str"},
            "ipv4": {"type": "str"},
            "ipv6": {"type": "str"},
            "table": {"type": "str", "default": "warden_egress"},
            "directory": {"type": "path", "default": "/etc/warden_egress"},
            "state_dir": {"type": "path", "default": "/var/lib/warden_egress"},
            "lock_timeout": {"type": "int", "default": 120},
            "confirm_timeout": {"type": "int", "default": 0},
            "confirm": {"type": "bool", "default": False},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    params = module.params
    table = params["table"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,17}", table):
        module.fail_json(msg=f"table: {table!r} is not a usable owner name for iptables chains (letters, digits and '_', at most 18)")
    for name in ("lock_timeout", "confirm_timeout"):
        if params[name] < 0:
            module.fail_json(msg=f"{name}: {params[name]} must be 0 or more seconds")
    given = [key for key in ("ipset", *FAMILIES) if params[key] is not None]
    if params["confirm"] and (given or params["state"] != "present"):
        module.fail_json(msg="confirm: true confirms the pending load; give it without ipset, ipv4, ipv6 and without state: absent")
    if params["state"] == "present" and not params["confirm"] and len(given) < 3:
        module.fail_json(msg="ipset, ipv4 and ipv6: all three are required to load the rules (or give confirm: true, or state: absent)")
    result = {"changed": False, "ruleset_changed": False, "file_changed": False, "pending_confirmation": False}
    texts = {key: params[key] for key in ("ipset", *FAMILIES)}
    new_sets: set = set()
    if params["state"] == "present" and not params["confirm"]:
        problem, new_sets = check_sets(texts["ipset"])
        problem = f"ipset: {problem}" if problem else None
        for family in FAMILIES:
            found = check_rules(texts[family], table, family, new_sets)
            problem = problem or (f"{family}: {found}" if found else None)
        if problem:
            module.fail_json(msg=f"refusing to load: {problem}", **result)
    target = Target(module, table)
    fd = lock.hold(module, params["state_dir"], params["lock_timeout"], result)
    pending = confirming.Pending(module, params["state_dir"], f"iptables-{table}", f"iptables chains {table}-*")
    if params["confirm"]:
        confirming.confirm(module, pending, result, after=lambda plan: drop_sets(module, target, plan["confirm"]["destroy_sets"]))
    if not module.check_mode:
        confirming.settle(module, fd, params["state_dir"], params["lock_timeout"], result)
    record_path = os.path.join(params["state_dir"], f"iptables-{table}.json")
    record = state.read_record(record_path)
    lives = {family: target.live(family) for family in FAMILIES}

    if params["state"] == "absent":
        absent(module, target, params, result, record, lives)

    content = combined(texts)
    now = listing(target, lives)
    paths = files_for(params["directory"], table) if params["directory"] else {}
    state.plan(module, result, record, content, now, any(state.read_text(paths[key]) != texts[key] for key in paths), table)
    result["chains"] = {family: lives[family]["chains"] for family in FAMILIES}
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    staged = files.stage_all(module, result, [(path, texts[key], 0o600 if key == "ipset" else 0o644)
                                              for key, path in paths.items() if state.read_text(path) != texts[key]])
    if not result["ruleset_changed"]:
        files.finish(module, result, staged)
        module.exit_json(**result)

    old_sets = ({name for family in FAMILIES for name in lives[family]["sets"]} | set((record or {}).get("sets", []))) - new_sets
    waits = params["confirm_timeout"] > 0
    saved_sets = {name: target.run([target.ipset, "save", name])[1] for name in sorted(
        {name for family in FAMILIES for name in lives[family]["sets"]} & target.existing_sets())} if waits else {}
    created = load(module, target, texts, lives, new_sets, result)
    after = {family: target.live(family) for family in FAMILIES}
    result["chains"] = {family: after[family]["chains"] for family in FAMILIES}
    if waits:
        restore = {"backend": "iptables", "bins": target.bins, "ipset": target.ipset, "own": target.own.pattern, "sets": saved_sets,
                   "created": sorted(created), "saved": {family: {key: lives[family][key] for key in ("chains", "rules", "jumps")} for family in FAMILIES}}
        boot = [{"path": path, "text": texts[key], "mode": 0o600 if key == "ipset" else 0o644} for key, path in paths.items()]
        record_data = {"path": record_path, "content": content, "listing": listing(target, after), "extra": {"sets": sorted(new_sets)}}
        pending.arm(params["confirm_timeout"], restore, {"boot": boot, "record": record_data, "destroy_sets": sorted(old_sets)}, result)
        module.exit_json(**result)
    files.finish(module, result, staged,
                 write_record=lambda: state.write_record(record_path, content, listing(target, after), sets=sorted(new_sets)),
                 roll_back=lambda: put_back(target, lives, FAMILIES, created), undo_record=lambda: state.put_back_record(record_path, record))
    drop_sets(module, target, old_sets)
    module.exit_json(**result)


def drop_sets(module: AnsibleModule, target: Target, names) -> None:
    """Destroy the previous generation's sets once the new rules are in place for good."""
    left = destroy_sets(target, set(names) & target.existing_sets())
    if left:
        module.warn(f"old ipsets still in use elsewhere, left in place: {', '.join(left)}")


def put_back(target: Target, lives: dict, families, created: set) -> str:
    """Load the chains of ``families`` as they were (``lives``) and destroy the sets this run
    created; say what was done."""
    failed = []
    for family in families:
        rc, err = restore(target, family, transaction(saved_body(lives[family]), target.live(family)))
        if rc != 0:
            failed.append(f"{family} ({err})")
    destroy_sets(target, created)
    if failed:
        return f"putting the previous rules back failed for {', '.join(failed)}"
    return f"the {' and '.join(families)} rules were put back as they were" if families else "nothing was changed"


def load(module: AnsibleModule, target: Target, texts: dict, lives: dict, new_sets: set, result: dict) -> set:
    """Validate, create the new sets and switch each family in one transaction; returns the
    sets it created. The previous generation's sets are left for the caller to destroy once
    the boot files are in place (a roll back needs them)."""
    checked = scratch_check(target, texts)
    if isinstance(checked, str):
        module.fail_json(msg=f"the rules do not load (tried in a scratch network namespace; nothing was changed): {checked}", **files.unchanged(result))
    result["validated"] = "scratch namespace and --test" if checked else "--test"
    before_sets = target.existing_sets()
    created = new_sets - before_sets
    script = []
    for line in texts["ipset"].splitlines():
        script.append(line)
        words = line.split()
        if words[:1] == ["create"] and words[1] in before_sets:
            script.append(f"flush {words[1]}")
    rc, out, err = target.run([target.ipset, "-exist", "restore"], data="\n".join(script) + "\n", check=False)
    if rc != 0:
        destroy_sets(target, created)
        module.fail_json(msg=f"ipset restore failed; nothing was changed: {err.strip()}", **files.unchanged(result))
    transactions = {family: transaction(body(texts[family]), lives[family]) for family in FAMILIES}
    for family in FAMILIES:
        rc, err = restore(target, family, transactions[family], test=True)
        if rc != 0:
            destroy_sets(target, created)
            module.fail_json(msg=f"{TOOLS[family][1]} --test rejected the {family} rules; nothing was changed: {err}", **files.unchanged(result))
    done = []
    for family in FAMILIES:
        rc, err = restore(target, family, transactions[family])
        if rc != 0:
            module.fail_json(msg=f"{TOOLS[family][1]} failed; {put_back(target, lives, done, created)}: {err}", **result)
        done.append(family)
    return created


if __name__ == "__main__":
    main()
