#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iptables_apply
short_description: Replace the collection's own iptables chains and ipsets atomically, only when they differ
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
    edit, a deleted jump or a jump pushed down is drift and is put right.
  - Writes the files to O(directory) so that a boot-time unit can load the same rules again.
    The new files are written under temporary names in O(directory) before anything is
    loaded, and renamed into place after both families switched; the previous generation's
    sets are destroyed only then. If a file cannot be written, nothing is loaded; if a rename
    fails, the files already renamed and both families are put back as they were. The kernel
    and the boot files never disagree, and never mix two policies.
  - One apply at a time. The module holds a lock in O(state_dir) for the whole run, so a second
    run on the same host waits for the first (at most O(lock_timeout) seconds).
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
validated:
  description: How the files were checked before loading (C(scratch namespace and --test) or C(--test)).
  returned: when the rules were loaded
  type: str
  sample: scratch namespace and --test
"""

import os
import re
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.warden.egress.plugins.module_utils import _apply_files as files
from ansible_collections.warden.egress.plugins.module_utils import _apply_lock as lock
from ansible_collections.warden.egress.plugins.module_utils import _apply_state as state

FAMILIES = ("ipv4", "ipv6")
TOOLS = {"ipv4": ("iptables-save", "iptables-restore"), "ipv6": ("ip6tables-save", "ip6tables-restore")}
SET_SUFFIX = {"ipv4": ".4", "ipv6": ".6"}
HOOKS = {"OUTPUT": "output", "FORWARD": "forward"}
BUILTINS = ("INPUT", "FORWARD", "OUTPUT")
TARGETS = {"RETURN", "DROP", "LOG"}
SET_NAME = r"w[0-9a-f]{6}-[A-Za-z0-9_.~]{1,23}"


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return []


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
        words = _split(line)
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
            if flag == "--match-set" and (value not in sets or not value.endswith(SET_SUFFIX[family])):
                return f"line {number}: set {value!r} is not an {family} set created by the ipset file: {line!r}"
    for number, line in body[1:-1]:
        words = _split(line)
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


class Target:
    """The target's tools, and what is loaded there now."""

    def __init__(self, module: AnsibleModule, table: str) -> None:
        self.module = module
        self.table = table
        self.own = re.compile(rf"{re.escape(table)}-[a-z0-9]+")
        self.bins = {name: module.get_bin_path(name, required=True) for pair in TOOLS.values() for name in pair}
        self.ipset = module.get_bin_path("ipset", required=True)

    def run(self, args: list[str], data: str | None = None, check: bool = True) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(args, data=data, binary_data=True)
        if rc != 0 and check:
            self.module.fail_json(msg=f"{' '.join(args)} failed: {err.strip() or out.strip()}")
        return rc, out, err

    def live(self, family: str) -> dict:
        """The collection's chains, their rules in order, and the jumps to them."""
        rc, out, dummy = self.run([self.bins[TOOLS[family][0]], "-t", "filter"], check=False)
        chains, rules, jumps, sets = [], [], [], []
        position = dict.fromkeys(BUILTINS, 0)
        for line in out.splitlines() if rc == 0 else []:
            words = _split(line)
            if line.startswith(":") and words and self.own.fullmatch(words[0][1:]):
                chains.append(words[0][1:])
            elif len(words) > 1 and words[0] == "-A":
                if words[1] in position:
                    position[words[1]] += 1
                    if any(flag in ("-j", "-g") and self.own.fullmatch(value) for flag, value in zip(words, words[1:])):
                        jumps.append({"builtin": words[1], "position": position[words[1]], "line": line})
                elif self.own.fullmatch(words[1]):
                    rules.append(line)
                    sets.extend(value for flag, value in zip(words, words[1:]) if flag == "--match-set")
        return {"chains": sorted(chains), "rules": rules, "jumps": jumps, "sets": sorted(set(sets))}

    def set_members(self, names: list[str]) -> list[str]:
        existing = self.existing_sets()
        lines = []
        for name in sorted(set(names)):
            if name not in existing:
                lines.append(f"{name}: missing")
                continue
            rc, out, dummy = self.run([self.ipset, "save", name])
            words = out.split("\n", 1)[0].split()
            lines.append(f"{name}: {' '.join(words[2:5])}")
            lines.extend(sorted(f"{name}: {line.split(' ', 2)[2]}" for line in out.splitlines() if line.startswith("add ")))
        return lines

    def existing_sets(self) -> set:
        rc, out, dummy = self.run([self.ipset, "list", "-n"], check=False)
        return set(out.split()) if rc == 0 else set()


def listing(target: Target, lives: dict) -> str:
    """What the record compares: chains, jumps with their positions, rules, set members."""
    out = []
    for family in FAMILIES:
        live = lives[family]
        out.append(f"## {family}")
        out.extend(f":{chain}" for chain in live["chains"])
        out.extend(f"{jump['builtin']}#{jump['position']} {jump['line']}" for jump in live["jumps"])
        out.extend(live["rules"])
    out.append("## sets")
    out.extend(target.set_members([name for family in FAMILIES for name in lives[family]["sets"]]))
    return "\n".join(out) + "\n"


def transaction(wanted: list[str], live: dict) -> str:
    """An iptables-restore --noflush file that turns what is loaded (``live``) into ``wanted``
    (a restore file body in boot form): refill the wanted chains, keep or put each jump at the
    top of its built-in chain, and remove chains and jumps that are no longer wanted."""
    declared = [line.split()[0][1:] for line in wanted if line.startswith(":")]
    inserts = [line for line in wanted if line.startswith("-I ")]
    out = ["*filter"]
    out.extend(line for line in wanted if line.startswith(":") or line.startswith("-A "))
    hooked = set()
    for line in inserts:
        words = _split(line)
        builtin, chain = words[1], words[-1]
        hooked.add((builtin, chain))
        mine = [jump for jump in live["jumps"] if jump["builtin"] == builtin and _split(jump["line"])[-1] == chain]
        if len(mine) == 1 and mine[0]["position"] == 1 and _split(mine[0]["line"])[2:] == words[3:]:
            continue
        out.extend("-D" + jump["line"][2:] for jump in mine)
        out.append(line)
    for jump in live["jumps"]:
        words = _split(jump["line"])
        if (words[1], words[-1]) not in hooked:
            out.append("-D" + jump["line"][2:])
    obsolete = [chain for chain in live["chains"] if chain not in declared]
    out.extend(f"-F {chain}" for chain in obsolete)
    out.extend(f"-X {chain}" for chain in obsolete)
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def body(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#") and line.strip() not in ("*filter", "COMMIT")]


def saved_body(live: dict) -> list[str]:
    """What is loaded now, in boot form, to put back if the other family fails."""
    lines = [f":{chain} - [0:0]" for chain in live["chains"]] + live["rules"]
    for jump in live["jumps"]:
        lines.append("-I " + jump["line"][3:].replace(" ", " 1 ", 1))
    return lines


def files_for(directory: str, table: str) -> dict:
    return {
        "ipset": os.path.join(directory, f"{table}.ipset"),
        "ipv4": os.path.join(directory, f"{table}.rules.v4"),
        "ipv6": os.path.join(directory, f"{table}.rules.v6"),
    }


def combined(texts: dict) -> str:
    return "".join(f"### {key}\n{texts[key]}" for key in ("ipset", *FAMILIES))


def scratch_check(target: Target, texts: dict) -> bool | str:
    """Load everything into a fresh network namespace. True when it loaded, False when the
    target cannot make a namespace, or the error text."""
    unshare = target.module.get_bin_path("unshare")
    if not unshare:
        return False
    rc, out, err = target.run([unshare, "--net", "true"], check=False)
    if rc != 0:
        return False
    with tempfile.TemporaryDirectory(prefix="warden-egress-") as tmp:
        paths = {}
        for key, text in texts.items():
            paths[key] = os.path.join(tmp, key)
            with open(paths[key], "w", encoding="utf-8") as handle:
                handle.write(text)
        script = (
            f"{shlex.quote(target.ipset)} -exist restore -file {shlex.quote(paths['ipset'])}"
            f" && {shlex.quote(target.bins['iptables-restore'])} -w --noflush {shlex.quote(paths['ipv4'])}"
            f" && {shlex.quote(target.bins['ip6tables-restore'])} -w --noflush {shlex.quote(paths['ipv6'])}"
        )
        rc, out, err = target.run([unshare, "--net", "/bin/sh", "-c", script], check=False)
    return True if rc == 0 else (err.strip() or out.strip() or f"exit {rc}")


def restore(target: Target, family: str, text: str, test: bool = False) -> tuple[int, str]:
    args = [target.bins[TOOLS[family][1]], "-w", "--noflush"] + (["--test"] if test else [])
    rc, out, err = target.run(args, data=text, check=False)
    return rc, err.strip() or out.strip()


def destroy_sets(target: Target, names) -> list[str]:
    """Destroy sets; return the ones that could not be (still referenced elsewhere)."""
    left = []
    for name in sorted(names):
        rc, dummy, dummy = target.run([target.ipset, "destroy", name], check=False)
        if rc != 0:
            left.append(name)
    return left


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
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["ipset", "ipv4", "ipv6"])],
        supports_check_mode=True,
    )
    params = module.params
    table = params["table"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,17}", table):
        module.fail_json(msg=f"table: {table!r} is not a usable owner name for iptables chains (letters, digits and '_', at most 18)")
    if params["lock_timeout"] < 0:
        module.fail_json(msg=f"lock_timeout: {params['lock_timeout']} must be 0 or more seconds")
    result = {"changed": False, "ruleset_changed": False, "file_changed": False}
    texts = {key: params[key] for key in ("ipset", *FAMILIES)}
    new_sets: set = set()
    if params["state"] == "present":
        problem, new_sets = check_sets(texts["ipset"])
        problem = f"ipset: {problem}" if problem else None
        for family in FAMILIES:
            found = check_rules(texts[family], table, family, new_sets)
            problem = problem or (f"{family}: {found}" if found else None)
        if problem:
            module.fail_json(msg=f"refusing to load: {problem}", **result)
    target = Target(module, table)
    lock.hold(module, params["state_dir"], params["lock_timeout"], result)
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

    created = load(module, target, texts, lives, new_sets, result)
    after = {family: target.live(family) for family in FAMILIES}
    files.finish(module, result, staged,
                 write_record=lambda: state.write_record(record_path, content, listing(target, after), sets=sorted(new_sets)),
                 roll_back=lambda: put_back(target, lives, FAMILIES, created), undo_record=lambda: state.put_back_record(record_path, record))
    result["chains"] = {family: after[family]["chains"] for family in FAMILIES}
    old_sets = ({name for family in FAMILIES for name in lives[family]["sets"]} | set((record or {}).get("sets", []))) - new_sets
    left = destroy_sets(target, old_sets & target.existing_sets())
    if left:
        module.warn(f"old ipsets still in use elsewhere, left in place: {', '.join(left)}")
    module.exit_json(**result)


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
        module.fail_json(msg=f"the rules do not load (tried in a scratch network namespace; nothing was changed): {checked}", **result)
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
        module.fail_json(msg=f"ipset restore failed; nothing was changed: {err.strip()}", **result)
    transactions = {family: transaction(body(texts[family]), lives[family]) for family in FAMILIES}
    for family in FAMILIES:
        rc, err = restore(target, family, transactions[family], test=True)
        if rc != 0:
            destroy_sets(target, created)
            module.fail_json(msg=f"{TOOLS[family][1]} --test rejected the {family} rules; nothing was changed: {err}", **result)
    done = []
    for family in FAMILIES:
        rc, err = restore(target, family, transactions[family])
        if rc != 0:
            module.fail_json(msg=f"{TOOLS[family][1]} failed; {put_back(target, lives, done, created)}: {err}", **result)
        done.append(family)
    return created


if __name__ == "__main__":
    main()
