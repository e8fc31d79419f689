# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: nft_apply's driver of the apply lifecycle (``_apply_lifecycle``).

The collection owns one nftables table. A file may only declare that table; it is checked
with ``nft -c`` and loaded with ``nft -f`` in one transaction. What is loaded is the table as
``nft -s list table`` prints it, less the elements traffic adds to dynamic sets and those the
local resolver adds to the name sets, which a load carries over (``carried``).
"""

from __future__ import annotations

import re

from ansible_collections.warden.egress.plugins.module_utils import _apply_rollback as rollback
from ansible_collections.warden.egress.plugins.module_utils import _apply_state as state
from ansible_collections.warden.egress.plugins.module_utils._apply_files import unchanged
from ansible_collections.warden.egress.plugins.module_utils._apply_lifecycle import Driver

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


NAME_SET = re.compile(r"^\s*set (dns_[A-Za-z0-9_]+_[ab]_v[46]) \{\s*$")


def name_set_members(text: str | None) -> dict:
    """The members of the sets a resolver fills (``dns_*_[ab]_v4|v6``, see docs/dns.md) in a
    table as ``nft list table`` prints it: set name -> its elements, as printed."""
    out: dict = {}
    current, collecting, chunks = None, False, []
    for line in (text or "").splitlines():
        match = NAME_SET.match(line)
        if match:
            current, collecting, chunks = match.group(1), False, []
            continue
        if current is None:
            continue
        stripped = line.strip()
        if not collecting and stripped.startswith("elements = {"):
            collecting, stripped = True, stripped[len("elements = {"):]
        if collecting:
            done = "}" in stripped
            chunks.append(stripped.split("}", 1)[0])
            if done:
                out[current] = [item.strip() for item in ",".join(chunks).split(",") if item.strip()]
                current, collecting = None, False
        elif stripped == "}":
            current = None
    return out


def carried(before: str | None, content: str, family: str, table: str) -> str:
    """The statements that put back, in the same transaction as the new table, the members
    the resolver had added to name sets the new table still declares: re-applying a policy
    must not empty them (clients hold answers whose addresses must stay allowed)."""
    declared = {match.group(1) for match in map(NAME_SET.match, content.splitlines()) if match}
    lines = []
    for name, members in sorted(name_set_members(before).items()):
        if name in declared and members and all(re.fullmatch(r"[0-9A-Fa-f.:]+", member) for member in members):
            lines.append(f"add element {family} {table} {name} {{ {', '.join(members)} }}")
    return "".join(line + "\n" for line in lines)


class NftablesDriver(Driver):
    """One table, ``family`` ``table``; the boot file at ``path``."""

    NAME = ("table", r"[A-Za-z_][A-Za-z0-9_]{0,31}", "a valid table name")
    MISSING = "content: required to load the table (or give confirm: true, or state: absent)"

    def __init__(self, module) -> None:
        super().__init__(module)
        self.family, self.table = self.params["family"], self.params["table"]
        self.owner, self.label = f"{self.family}-{self.table}", f"table {self.family} {self.table}"
        self.title = f"{self.family} {self.table}"
        self.names = {"table": self.title}
        self.nft = ""
        self.before: str | None = None  # the table as read before the load, as nft prints it
        self.saved: dict = {}

    def find_tools(self) -> None:
        self.nft = self.module.get_bin_path("nft", required=True)

    def run_nft(self, args: list, text: str | None = None) -> tuple[int, str, str]:
        if text is None:
            return self.module.run_command([self.nft] + args)
        return state.run_with_file(self.module, [self.nft] + args, text, ".nft")

    def check(self, content: str) -> str | None:
        return check_scope(content, self.family, self.table)

    def test(self, content: str) -> str | None:
        rc, out, err = self.run_nft(["-c", "-f"], content)
        return None if rc == 0 else f"content: nft -c rejected the ruleset, nothing was loaded: {err.strip()}"

    def list_table(self) -> str | None:
        """The table as ``nft -s list table`` prints it (which ``nft -f`` loads again), or None."""
        rc, out, dummy = self.run_nft(["-s", "list", "table", self.family, self.table])
        return out if rc == 0 else None

    def read(self, result: dict) -> str | None:
        self.before = self.list_table()
        return None if self.before is None else stable_listing(self.before)

    def unload(self, result: dict) -> None:
        rc, out, err = self.run_nft(["delete", "table", self.family, self.table])
        if rc != 0:
            self.module.fail_json(msg=f"nft delete table {self.family} {self.table} failed: {err.strip()}", **result)

    def save(self, waits: bool, record: dict | None) -> str | None:
        if not waits:
            return None
        self.saved = {"backend": "nftables", "nft": self.nft, "family": self.family, "table": self.table,
                      "saved": None if self.before is None else stable_listing(self.before)}
        rc, out, err = self.run_nft(["-c", "-f"], rollback.nftables_text(self.saved))
        if rc != 0:
            return (f"the table as loaded now would not load again, so a rollback could not put it back ({err.strip()});"
                    " nothing was loaded (load without confirm_timeout)")
        return None

    def load(self, result: dict) -> str:
        rc, out, err = self.run_nft(["-f"], self.params["content"] + carried(self.before, self.params["content"], self.family, self.table))
        if rc != 0:
            self.module.fail_json(msg=f"nft -f failed; the transaction was rolled back and the old table is still loaded: {err.strip()}",
                                  **unchanged(result))
        text = self.list_table()
        if text is None:
            self.module.fail_json(msg=f"table {self.family} {self.table} missing after load; {self.roll_back()}", **result)
        return stable_listing(text)

    def rollback_plan(self) -> dict:
        return self.saved

    def roll_back(self) -> str:
        """Load the table as it was read before the load (``before``; None: no table) in its
        place, in one transaction."""
        spec = {"family": self.family, "table": self.table, "saved": self.before}
        rc, out, err = self.run_nft(["-f"], rollback.nftables_text(spec))
        if rc != 0:
            problem = err.strip() or f"nft exited with {rc}"
            return f"putting the previous table back failed too ({problem}): the new table is loaded"
        return "the previous table was put back" if self.before is not None else "the new table was removed again"
