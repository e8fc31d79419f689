# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the rollback of a load that waits for confirmation.

This file is also the program that does it on the target, without the controller. When a
load waits for confirmation, the apply module writes this file's own source and a plan into
its state directory, and arms a transient systemd timer (or, without systemd, a detached
process) that runs ``python3 PROGRAM PLAN TOKEN`` when the confirmation window ends. It uses
the standard library only: the module's own files are gone by then.

The program takes the apply lock (so it never interleaves with a run), reads the plan again,
and does nothing if the plan is gone or is another load's (it was confirmed, or handled by
a later run). Otherwise it puts back exactly what the plan saved before the load, in one
transaction (one per family with iptables), also when that was "nothing loaded"; writes a
note saying what it did (``NAME.rolled-back``) and removes the plan.

    python3 PROGRAM PLAN TOKEN              wait for the apply lock, then roll back
    python3 PROGRAM PLAN TOKEN --wait N     sleep N seconds first (the detached process)

With ``--wait`` two processes of one process group wait: the one the pid file names and a
twin forked from it, both holding the lock on the pid file. Whichever is left when the window
ends rolls back (the other finds the plan gone), so killing one of them (not the group) does
not leave the load unguarded. A confirmation stops both (it signals the process group).

The module calls ``roll_back()`` itself (holding the lock) when it must undo a load at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

BUILTINS = ("INPUT", "FORWARD", "OUTPUT")
IPT_FAMILIES = ("ipv4", "ipv6")
# The apply lock's descriptor while this process holds it: every command run inherits it, so
# a command that outlives this process keeps the next run waiting until it has finished.
HOLDING: tuple = ()
IPT_TOOLS = {"ipv4": ("iptables-save", "iptables-restore"), "ipv6": ("ip6tables-save", "ip6tables-restore")}


def run(argv: list, data: str | None = None) -> tuple[int, str, str]:
    done = subprocess.run(argv, input=data, capture_output=True, text=True, check=False, pass_fds=HOLDING)
    return done.returncode, done.stdout, done.stderr


def run_with_file(argv: list, text: str, suffix: str, runner=run) -> tuple[int, str, str]:
    """``runner(argv + [a temporary file holding text])`` (``run()``, or the module's
    ``run_command``); the file is removed afterwards. OSError when it cannot be written."""
    fd, path = tempfile.mkstemp(prefix="warden-egress-", suffix=suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return runner(list(argv) + [path])
    finally:
        os.unlink(path)


def problem(argv: list, rc: int, out: str, err: str) -> str:
    return f"{os.path.basename(argv[0])} failed (exit {rc}): {' '.join((err or out).split()) or 'no message'}"


# nftables: the saved table (as ``nft -s list table`` printed it) replaces the loaded one in
# one transaction; with no saved table the loaded one is deleted.
def nftables_text(spec: dict) -> str:
    family, table = spec["family"], spec["table"]
    return f"table {family} {table}\ndelete table {family} {table}\n{spec['saved'] or ''}"


def restore_nftables(spec: dict) -> str | None:
    rc, out, err = run_with_file([spec["nft"], "-f"], nftables_text(spec), ".nft")
    return None if rc == 0 else problem([spec["nft"]], rc, out, err)


# pf: the saved anchor rules are loaded again (one pfctl transaction), or the anchor emptied.
def restore_pf(spec: dict) -> str | None:
    if spec["saved"] is None:
        argv = [spec["pfctl"], "-a", spec["anchor"], "-F", "all"]
        rc, out, err = run(argv)
    else:
        argv = [spec["pfctl"], "-a", spec["anchor"], "-f"]
        rc, out, err = run_with_file(argv, spec["saved"], ".pf")
    return None if rc == 0 else problem(argv, rc, out, err)


# iptables: the collection's chains (those matching ``own``), their rules and the jumps to them
# from the built-in chains are put back as saved, per family in one iptables-restore --noflush
# transaction computed from what is loaded at that moment; the saved sets are put back first
# (their members too, through a swap when they differ) and the sets the load created are
# destroyed last. The module reads what is loaded with the same iptables_live() and ipset_saved().
def split_words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return []


def iptables_live(text: str, own: re.Pattern) -> dict:
    """From ``iptables-save -t filter``: the collection's chains, their rules in order, the
    jumps to them from the built-in chains (``builtin``, ``position``, ``line``), the sets
    their rules match, and how many rules each built-in chain holds."""
    chains, rules, jumps, sets = [], [], [], []
    lengths = dict.fromkeys(BUILTINS, 0)
    for line in text.splitlines():
        words = split_words(line)
        if line.startswith(":") and words and own.fullmatch(words[0][1:]):
            chains.append(words[0][1:])
        elif len(words) > 1 and words[0] == "-A":
            if words[1] in lengths:
                lengths[words[1]] += 1
                if any(flag in ("-j", "-g") and own.fullmatch(value) for flag, value in zip(words, words[1:])):
                    jumps.append({"builtin": words[1], "position": lengths[words[1]], "line": line})
            elif own.fullmatch(words[1]):
                rules.append(line)
                sets.extend(value for flag, value in zip(words, words[1:]) if flag == "--match-set")
    return {"chains": sorted(chains), "rules": rules, "jumps": jumps, "sets": sorted(set(sets)), "lengths": lengths}


def iptables_transaction(saved: dict, live: dict) -> str:
    """Turn what is loaded (``live``) into ``saved`` ({chains, rules, jumps: [{builtin,
    position, line}]}): refill the saved chains, delete every jump to the collection's chains
    and insert the saved ones at their saved positions, remove the chains not saved."""
    out = ["*filter"]
    out.extend(f":{chain} - [0:0]" for chain in saved["chains"])
    out.extend(saved["rules"])
    lengths = dict(live["lengths"])
    for jump in live["jumps"]:
        out.append("-D" + jump["line"][2:])
        lengths[jump["builtin"]] -= 1
    for jump in sorted(saved["jumps"], key=lambda item: item["position"]):
        builtin = jump["builtin"]
        position = min(jump["position"], lengths[builtin] + 1)
        rest = jump["line"].split(None, 2)[2]
        out.append(f"-I {builtin} {position} {rest}")
        lengths[builtin] += 1
    obsolete = [chain for chain in live["chains"] if chain not in saved["chains"]]
    out.extend(f"-F {chain}" for chain in obsolete)
    out.extend(f"-X {chain}" for chain in obsolete)
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def ipset_saved(text: str) -> tuple[list, list]:
    """What an ``ipset save NAME`` says: the words of its ``create`` line and its sorted members."""
    lines = text.splitlines()
    head = lines[0].split() if lines else []
    return head, sorted(line.split(" ", 2)[2] for line in lines if line.startswith("add ") and line.count(" ") >= 2)


def ipset_members(text: str) -> tuple:
    """The set's type and its members, to compare."""
    head, members = ipset_saved(text)
    return tuple(head[2:3]), tuple(members)


def restore_set(ipset: str, name: str, text: str, existing: set) -> str | None:
    """Put a saved set back: create it when missing, swap in its saved members when they differ."""
    if name not in existing:
        rc, out, err = run([ipset, "-exist", "restore"], data=text)
        return None if rc == 0 else problem([ipset], rc, out, err)
    rc, now, err = run([ipset, "save", name])
    if rc == 0 and ipset_members(now) == ipset_members(text):
        return None
    scratch = f"wrb{os.getpid() % 100000:05d}-{int(time.time() * 1000) % 100000:05d}"
    swapped = re.sub(rf"(?m)^(create|add) {re.escape(name)} ", lambda match: f"{match.group(1)} {scratch} ", text)
    for argv, data in (([ipset, "restore"], swapped), ([ipset, "swap", scratch, name], None), ([ipset, "destroy", scratch], None)):
        rc, out, err = run(argv, data=data)
        if rc != 0:
            run([ipset, "destroy", scratch])
            return problem(argv, rc, out, err)
    return None


def restore_iptables(spec: dict) -> str | None:
    own = re.compile(spec["own"])
    rc, out, err = run([spec["ipset"], "list", "-n"])
    existing = set(out.split()) if rc == 0 else set()
    failed = []
    for name, text in sorted(spec["sets"].items()):
        trouble = restore_set(spec["ipset"], name, text, existing)
        if trouble:
            failed.append(f"set {name}: {trouble}")
    for family in IPT_FAMILIES:
        save, load = (spec["bins"][tool] for tool in IPT_TOOLS[family])
        rc, out, err = run([save, "-t", "filter"])
        if rc != 0:
            failed.append(f"{family}: {problem([save], rc, out, err)}")
            continue
        rc, out, err = run([load, "-w", "--noflush"], data=iptables_transaction(spec["saved"][family], iptables_live(out, own)))
        if rc != 0:
            failed.append(f"{family}: {problem([load], rc, out, err)}")
    if not failed:
        for name in sorted(set(spec["created"]) - set(spec["sets"])):
            run([spec["ipset"], "destroy", name])
    return "; ".join(failed) or None


RESTORE = {"nftables": restore_nftables, "iptables": restore_iptables, "pf": restore_pf}


def write_json(path: str, data: dict) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json(path: str, keys: tuple = ()) -> dict | None:
    """The object a JSON file holds, when it can be read and has ``keys``; else None."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and set(keys) <= set(data) else None


def read_plan(path: str) -> dict | None:
    return read_json(path, ("token", "restore"))


def stamp(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(when))


def roll_back(plan: dict, why: str) -> dict:
    """Put back what ``plan`` saved and remove the plan; the caller holds the apply lock.
    Returns the note: ``ok``, ``message``, ``loaded_at``, ``rolled_back_at``, ``seconds``."""
    trouble = RESTORE[plan["restore"]["backend"]](plan["restore"])
    done = time.time()
    seconds = round(done - plan["loaded_at"], 1)
    if trouble is None:
        message = f"the host put the previous {plan['label']} back at {stamp(done)}, {seconds} s after the load ({why})"
        try:
            os.unlink(plan["plan"])
        except FileNotFoundError:
            pass
    else:
        message = f"the host tried to put the previous {plan['label']} back at {stamp(done)} ({why}), and {trouble}"
    return {"ok": trouble is None, "message": message, "label": plan["label"], "loaded_at": plan["loaded_at"],
            "rolled_back_at": done, "seconds": seconds, "token": plan["token"]}


def started(plan_path: str) -> None:
    """The detached process: fork the twin, then write this process's pid into the pid file
    (whose lock both hold), which tells the module that both wait."""
    plan = read_plan(plan_path) or {}
    pid_file = plan.get("runner", {}).get("pid_file")
    if os.fork() == 0 or not pid_file:
        return
    fd = os.open(pid_file, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    finally:
        os.close(fd)


def main(argv: list) -> int:
    global HOLDING
    plan_path, token = argv[0], argv[1]
    if argv[2:3] == ["--wait"]:
        started(plan_path)
        time.sleep(max(0.0, float(argv[3])))
    plan = read_plan(plan_path)
    if plan is None or plan["token"] != token:
        return 0
    lock = os.open(plan["lock"], os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    HOLDING = (lock,)
    try:
        os.ftruncate(lock, 0)
        os.pwrite(lock, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError:
        pass  # a full disk: the pid in the lock file only names the holder in messages
    plan = read_plan(plan_path)
    if plan is None or plan["token"] != token:
        return 0
    note = roll_back(plan, f"no confirmation within {plan['timeout']} s")
    write_json(plan["marker"], note)
    if note["ok"]:
        try:
            os.unlink(plan["program"])
        except FileNotFoundError:
            pass
    return 0 if note["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
