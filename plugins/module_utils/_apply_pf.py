# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: pf_apply's driver of the apply lifecycle (``_apply_lifecycle``).

The collection owns one pf anchor. Its rules are checked with ``pfctl -n -a ANCHOR -f FILE``
and loaded with ``pfctl -a ANCHOR -f FILE`` (one transaction); what is loaded is the anchor as
pfctl lists it: its rules, then each table and its addresses.
"""

from __future__ import annotations

import re

from ansible_collections.warden.egress.plugins.module_utils import _apply_rollback as rollback
from ansible_collections.warden.egress.plugins.module_utils import _apply_state as state
from ansible_collections.warden.egress.plugins.module_utils._apply_files import unchanged
from ansible_collections.warden.egress.plugins.module_utils._apply_lifecycle import Driver

RULE = re.compile(r"(pass|block)\b")


def check_content(content: str) -> str | None:
    """Return a problem if the file holds no rule: an empty anchor filters nothing."""
    for raw in content.splitlines():
        if RULE.match(raw.split("#", 1)[0].strip()):
            return None
    return ("the file holds no pass or block rule: an empty ruleset would leave the box unfiltered"
            " (to empty the anchor, use state: absent)")


def previous_rules(record: dict | None, now: str | None, boot_text: str | None) -> str | None:
    """What to load again if this run has to be undone: the anchor as it is (None: empty),
    known by its record, or else by the boot file."""
    if now is None:
        return None
    if record is not None and record["listing"] == now:
        return record["content"]
    return boot_text


class PfDriver(Driver):
    """One anchor, ``anchor``; the boot file at ``path``."""

    NAME = ("anchor", r"[A-Za-z_][A-Za-z0-9_]{0,31}", "a usable anchor name")
    MISSING = "content: required to load the anchor (or give confirm: true)"

    def __init__(self, module) -> None:
        super().__init__(module)
        self.anchor = self.params["anchor"]
        self.owner, self.label, self.title = f"pf-{self.anchor}", f"anchor {self.anchor}", f"anchor {self.anchor}"
        self.names = {"anchor": self.anchor}
        self.pfctl = ""
        self.now: str | None = None
        self.saved: dict = {}

    def find_tools(self) -> None:
        self.pfctl = self.module.get_bin_path("pfctl", required=True, opt_dirs=["/sbin"])

    def pfctl_file(self, text: str, test: bool = False) -> tuple[int, str, str]:
        """``pfctl [-n] -a ANCHOR -f FILE``, the file holding ``text``."""
        return state.run_with_file(self.module, [self.pfctl] + (["-n"] if test else []) + ["-a", self.anchor, "-f"], text, ".pf")

    def check(self, content: str) -> str | None:
        return check_content(content)

    def test(self, content: str) -> str | None:
        rc, out, err = self.pfctl_file(content, test=True)
        return None if rc == 0 else f"content: pfctl -n rejected the rules, nothing was loaded: {(err or out).strip()}"

    def read(self, result: dict) -> str | None:
        self.now = self.listing()
        return self.now

    def listing(self) -> str | None:
        """The anchor as pfctl lists it: rules, then each table and its addresses."""
        pfctl, anchor = self.pfctl, self.anchor
        rc, rules, dummy = self.module.run_command([pfctl, "-a", anchor, "-s", "rules"])
        if rc != 0:
            return None
        rc, tables, dummy = self.module.run_command([pfctl, "-a", anchor, "-s", "Tables"])
        out = ["# rules", rules.strip()]
        for table in sorted(tables.split()) if rc == 0 else []:
            rc, members, dummy = self.module.run_command([pfctl, "-a", anchor, "-t", table, "-T", "show"])
            out.append(f"# table <{table}>")
            out.extend(sorted(line.strip() for line in members.splitlines() if line.strip()))
        text = "\n".join(out) + "\n"
        return None if text == "# rules\n\n" else text

    def unload(self, result: dict) -> None:
        rc, out, err = self.module.run_command([self.pfctl, "-a", self.anchor, "-F", "all"])
        if rc != 0:
            self.module.fail_json(msg=f"pfctl -a {self.anchor} -F all failed: {err.strip()}", **result)

    def save(self, waits: bool, record: dict | None) -> str | None:
        path = self.params["path"]
        self.saved = {"backend": "pf", "pfctl": self.pfctl, "anchor": self.anchor,
                      "saved": previous_rules(record, self.now, state.read_text(path) if path else None)}
        if waits and self.saved["saved"] is not None:
            rc, out, err = self.pfctl_file(self.saved["saved"], test=True)
            if rc != 0:
                return (f"the rules loaded now would not load again, so a rollback could not put them back ({(err or out).strip()});"
                        " nothing was loaded (load without confirm_timeout)")
        return None

    def load(self, result: dict) -> str:
        rc, out, err = self.pfctl_file(self.params["content"])
        if rc != 0:
            self.module.fail_json(msg=f"pfctl -a {self.anchor} -f failed; the anchor was not changed: {(err or out).strip()}", **unchanged(result))
        return self.listing() or ""

    def rollback_plan(self) -> dict:
        return self.saved

    def roll_back(self) -> str:
        problem = rollback.restore_pf(self.saved)
        if problem:
            return f"putting the previous rules back failed too ({problem}): the new rules are loaded"
        return "the previous rules were put back" if self.saved["saved"] is not None else "the anchor was emptied again"
