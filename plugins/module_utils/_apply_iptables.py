# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: iptables_apply's driver of the apply lifecycle (``_apply_lifecycle``).

The collection owns the filter-table chains named ``TABLE-*``, the jumps to them and the
ipsets their rules use (``_iptables`` reads and changes them). The rules come as three files
(``ipset``, ``ipv4``, ``ipv6``) and go to three boot files in ``directory``. New sets are
created first, each family is switched in one ``iptables-restore --noflush`` transaction, and
the previous generation's sets are destroyed only once the load is kept for good.
"""

from __future__ import annotations

import os
import re

from ansible_collections.warden.egress.plugins.module_utils import _apply_state as state
from ansible_collections.warden.egress.plugins.module_utils._apply_files import unchanged
from ansible_collections.warden.egress.plugins.module_utils._apply_lifecycle import Driver
from ansible_collections.warden.egress.plugins.module_utils._iptables import (
    FAMILIES, HOOKS, RESOLVER_SET, SET_NAME, SET_SUFFIX, TARGETS, TOOLS, Target, body, combined, destroy_sets, drop_empty_filter, files_for, listing, restore,
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
        elif RESOLVER_SET.fullmatch(match.group(2)):
            return f"line {number}: set {match.group(2)!r} is the resolver's to fill, not the file's", names
        elif match.group(2) not in names:
            return f"line {number}: set {match.group(2)!r} is filled before it is created", names
    return None, names


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


class IptablesDriver(Driver):
    """The chains ``table``-*, their jumps and sets; the boot files in ``directory``."""

    RULES = ("ipset", *FAMILIES)
    NAME = ("table", r"[A-Za-z_][A-Za-z0-9_]{0,17}", "a usable owner name for iptables chains (letters, digits and '_', at most 18)")
    MISSING = "ipset, ipv4 and ipv6: all three are required to load the rules (or give confirm: true, or state: absent)"

    def __init__(self, module) -> None:
        super().__init__(module)
        self.table = self.params["table"]
        self.owner, self.label, self.title = f"iptables-{self.table}", f"iptables chains {self.table}-*", self.table
        self.texts = {key: self.params[key] for key in self.RULES}
        self.paths = files_for(self.params["directory"], self.table) if self.params["directory"] else {}
        self.target: Target | None = None
        self.lives: dict = {}
        self.new_sets: set = set()  # the sets the ipset file creates
        self.old_sets: set = set()  # the sets to destroy once the load is kept
        self.saved_sets: dict = {}  # ``ipset save`` of the sets loaded now, for the rollback
        self.created: set = set()  # the sets the load created

    def find_tools(self) -> None:
        self.target = Target(self.module, self.table)

    def refuse(self) -> str | None:
        problem, self.new_sets = check_sets(self.texts["ipset"])
        problem = f"ipset: {problem}" if problem else None
        for family in FAMILIES:
            found = check_rules(self.texts[family], self.table, family, self.new_sets)
            problem = problem or (f"{family}: {found}" if found else None)
        return f"refusing to load: {problem}" if problem else None

    def read(self, result: dict) -> str | None:
        self.lives = {family: self.target.live(family) for family in FAMILIES}
        result["chains"] = {family: self.lives[family]["chains"] for family in FAMILIES}
        return listing(self.target, self.lives)

    def live_sets(self) -> set:
        return {name for family in FAMILIES for name in self.lives[family]["sets"]}

    def remove(self, result: dict, record: dict | None, now: str | None, record_path: str) -> None:
        module, target, lives = self.module, self.target, self.lives
        owned_sets = (self.live_sets() | set((record or {}).get("sets", []))) & target.existing_sets()
        result["ruleset_changed"] = any(lives[f]["chains"] or lives[f]["jumps"] for f in FAMILIES) or bool(owned_sets)
        result["file_changed"] = any(os.path.exists(path) for path in self.paths.values())
        result["changed"] = result["ruleset_changed"] or result["file_changed"]
        if module._diff:
            result["diff"] = {"before": state.diff_before(record, now), "after": ""}
        if result["changed"] and not module.check_mode:
            for path in self.paths.values():
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
            state.remove_files(module, result, list(self.paths.values()))
        if not module.check_mode:
            state.remove_files(module, result, [record_path])
        result["chains"] = {family: [] if not module.check_mode else lives[family]["chains"] for family in FAMILIES}
        module.exit_json(**result)

    def content(self) -> str:
        return combined(self.texts)

    def boot_files(self) -> list:
        return [(path, self.texts[key], 0o600 if key == "ipset" else 0o644) for key, path in self.paths.items()]

    def save(self, waits: bool, record: dict | None) -> str | None:
        self.old_sets = (self.live_sets() | set((record or {}).get("sets", []))) - self.new_sets
        if waits:
            target = self.target
            # A resolver's sets are not put back: they keep what it added, under either policy.
            self.saved_sets = {name: target.run([target.ipset, "save", name])[1] for name in sorted(self.live_sets() & target.existing_sets())
                               if not RESOLVER_SET.fullmatch(name)}
        return None

    def load(self, result: dict) -> str:
        """Validate, create the new sets and switch each family in one transaction. The
        previous generation's sets are left for ``committed()`` or ``confirmed()`` to destroy
        (a roll back needs them)."""
        module, target, texts, lives = self.module, self.target, self.texts, self.lives
        checked = scratch_check(target, texts)
        if isinstance(checked, str):
            module.fail_json(msg=f"the rules do not load (tried in a scratch network namespace; nothing was changed): {checked}", **unchanged(result))
        result["validated"] = "scratch namespace and --test" if checked else "--test"
        before_sets = target.existing_sets()
        self.created = created = self.new_sets - before_sets
        script = []
        for line in texts["ipset"].splitlines():
            script.append(line)
            words = line.split()
            # A set that exists is refilled; a resolver's set keeps what the resolver put in.
            if words[:1] == ["create"] and words[1] in before_sets and not RESOLVER_SET.fullmatch(words[1]):
                script.append(f"flush {words[1]}")
        rc, out, err = target.run([target.ipset, "-exist", "restore"], data="\n".join(script) + "\n", check=False)
        if rc != 0:
            destroy_sets(target, created)
            module.fail_json(msg=f"ipset restore failed; nothing was changed: {err.strip()}", **unchanged(result))
        transactions = {family: transaction(body(texts[family]), lives[family]) for family in FAMILIES}
        for family in FAMILIES:
            rc, err = restore(target, family, transactions[family], test=True)
            if rc != 0:
                destroy_sets(target, created)
                module.fail_json(msg=f"{TOOLS[family][1]} --test rejected the {family} rules; nothing was changed: {err}", **unchanged(result))
        done = []
        for family in FAMILIES:
            rc, err = restore(target, family, transactions[family])
            if rc != 0:
                module.fail_json(msg=f"{TOOLS[family][1]} failed; {put_back(target, lives, done, created)}: {err}", **result)
            done.append(family)
        after = {family: target.live(family) for family in FAMILIES}
        result["chains"] = {family: after[family]["chains"] for family in FAMILIES}
        return listing(target, after)

    def rollback_plan(self) -> dict:
        target = self.target
        return {"backend": "iptables", "bins": target.bins, "ipset": target.ipset, "own": target.own.pattern, "sets": self.saved_sets,
                "created": sorted(self.created),
                "saved": {family: {key: self.lives[family][key] for key in ("chains", "rules", "jumps")} for family in FAMILIES}}

    def roll_back(self) -> str:
        return put_back(self.target, self.lives, FAMILIES, self.created)

    def record_extra(self) -> dict:
        return {"sets": sorted(self.new_sets)}

    def on_confirm(self) -> dict:
        return {"destroy_sets": sorted(self.old_sets)}

    def confirmed(self, plan: dict) -> None:
        self.drop_sets(plan["confirm"]["destroy_sets"])

    def committed(self) -> None:
        self.drop_sets(self.old_sets)

    def drop_sets(self, names) -> None:
        """Destroy the previous generation's sets once the new rules are in place for good."""
        left = destroy_sets(self.target, set(names) & self.target.existing_sets())
        if left:
            self.module.warn(f"old ipsets still in use elsewhere, left in place: {', '.join(left)}")
