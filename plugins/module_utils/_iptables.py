# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: what iptables_apply reads from the kernel and how it changes it.

The collection owns the filter-table chains named ``TABLE-*``, the jumps to them from the
built-in chains and the ipsets their rules use. ``Target.live()`` reads those back from
``iptables-save``; ``transaction()`` turns what is loaded into what is wanted in one
``iptables-restore --noflush`` file per family.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile

from ansible_collections.warden.egress.plugins.module_utils._apply_rollback import IPT_FAMILIES as FAMILIES
from ansible_collections.warden.egress.plugins.module_utils._apply_rollback import IPT_TOOLS as TOOLS
from ansible_collections.warden.egress.plugins.module_utils._apply_rollback import iptables_live, ipset_saved, split_words

SET_SUFFIX = {"ipv4": ".4", "ipv6": ".6"}
HOOKS = {"OUTPUT": "output", "FORWARD": "forward"}
TARGETS = {"RETURN", "DROP", "LOG", "SET"}
# The halves of a set that holds DNS names: no generation, filled by the host's resolver, so
# their members are kept across loads and never compared (docs/dns.md).
RESOLVER_SET = re.compile(r"wd-[A-Za-z0-9_.~-]{1,24}-[ab]\.[46]")
# Any set the collection loads: a generation's (w<generation>-<name>) or a resolver's half.
SET_NAME = r"w[0-9a-f]{6}-[A-Za-z0-9_.~]{1,23}|" + RESOLVER_SET.pattern


class Target:
    """The target's tools, and what is loaded there now."""

    def __init__(self, module, table: str) -> None:
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
        return iptables_live(out if rc == 0 else "", self.own)

    def set_members(self, names: list[str]) -> list[str]:
        existing = self.existing_sets()
        lines = []
        for name in sorted(set(names)):
            if name not in existing:
                lines.append(f"{name}: missing")
                continue
            rc, out, dummy = self.run([self.ipset, "save", name])
            words, members = ipset_saved(out)
            lines.append(f"{name}: {' '.join(words[2:5])}")
            if RESOLVER_SET.fullmatch(name):
                lines.append(f"{name}: filled by the resolver")
                continue
            if "timeout" in words:
                # Members with a timeout are the kernel's (the audit sets remember flows): only
                # the definition is the collection's.
                lines.append(f"{name}: filled by the kernel")
                continue
            lines.extend(f"{name}: {member}" for member in members)
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
        words = split_words(line)
        builtin, chain = words[1], words[-1]
        hooked.add((builtin, chain))
        mine = [jump for jump in live["jumps"] if jump["builtin"] == builtin and split_words(jump["line"])[-1] == chain]
        if len(mine) == 1 and mine[0]["position"] == 1 and split_words(mine[0]["line"])[2:] == words[3:]:
            continue
        out.extend("-D" + jump["line"][2:] for jump in mine)
        out.append(line)
    for jump in live["jumps"]:
        words = split_words(jump["line"])
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


NFT_FILTER = {"ipv4": "ip", "ipv6": "ip6"}


def drop_empty_filter(target: Target, family: str) -> bool:
    """Once the collection's chains are gone, delete the filter table iptables-nft made for
    them when nothing else is in it (only built-in chains, no rule, policy ACCEPT): a host
    that had no iptables filter table before the first load has none after the removal.
    An empty table that accepts everything decides nothing, so one that was there before
    goes too. iptables-legacy's tables belong to the kernel and stay. True when deleted."""
    rc, version, dummy = target.run([target.bins[TOOLS[family][1]], "--version"], check=False)
    nft = target.module.get_bin_path("nft")
    if rc != 0 or "nf_tables" not in version or nft is None:
        return False
    rc, out, dummy = target.run([target.bins[TOOLS[family][0]], "-t", "filter"], check=False)
    if rc != 0:
        return False
    body = [line for line in out.splitlines() if line and not line.startswith("#")]
    if not body or body[0] != "*filter" or body[-1] != "COMMIT":
        return False
    chains = body[1:-1]
    if not all(re.fullmatch(r":(INPUT|FORWARD|OUTPUT) ACCEPT \[[0-9]+:[0-9]+\]", line) for line in chains):
        return False
    rc, dummy, dummy = target.run([nft, "delete", "table", NFT_FILTER[family], "filter"], check=False)
    return rc == 0
