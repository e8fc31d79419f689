"""A stand-in for pfctl on a Linux box (the lab has no OpenBSD or FreeBSD).

It reads every ruleset with the collection's strict pf grammar (pf_grammar.py, installed
beside this file) and, instead of loading it into a kernel, records what would be loaded
under $WARDEN_FAKE_PF_DIR (default /var/lib/warden-fake-pf): one file per anchor, the main
ruleset, and a log of every call. It answers the listing commands the collection uses from
those records. It proves that the role drives pfctl correctly and that what it loads reads
as pf; it proves nothing about a real pf kernel.

Handled: -n, -f FILE, -a ANCHOR, -s rules|Tables|info, -t TABLE -T show, -F all, -e, -d.
"""

from __future__ import annotations

import getopt
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pf_grammar import PfSyntaxError, parse  # noqa: E402

STORE = os.environ.get("WARDEN_FAKE_PF_DIR", "/var/lib/warden-fake-pf")


def record(name: str) -> str:
    return os.path.join(STORE, "anchors", f"{name}.conf") if name else os.path.join(STORE, "main.conf")


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    os.makedirs(STORE, exist_ok=True)
    with open(os.path.join(STORE, "calls.log"), "a", encoding="utf-8") as log:
        log.write(" ".join(argv) + "\n")
    args = {"-n": False, "-a": "", "-f": None, "-s": None, "-t": None, "-T": None, "-F": None, "-e": False, "-d": False}
    try:
        options, rest = getopt.getopt(argv, "nedqa:f:s:t:T:F:")
    except getopt.GetoptError as exc:
        print(f"pfctl: {exc}", file=sys.stderr)
        return 1
    if rest:
        print(f"pfctl: unexpected arguments {rest}", file=sys.stderr)
        return 1
    for flag, value in options:
        args[flag] = True if flag in ("-n", "-e", "-d", "-q") else value
    if args["-e"] or args["-d"]:
        enabled = os.path.join(STORE, "enabled")
        if args["-e"]:
            if os.path.exists(enabled):
                print("pfctl: pf already enabled", file=sys.stderr)
                return 1
            write(enabled, "1\n")
            print("pf enabled", file=sys.stderr)
        elif os.path.exists(enabled):
            os.unlink(enabled)
        return 0
    anchor = args["-a"]
    if args["-f"] is not None:
        text = read(args["-f"]) if args["-f"] != "-" else sys.stdin.read()
        if text is None:
            print(f"pfctl: cannot open {args['-f']}", file=sys.stderr)
            return 1
        try:
            parse(text, anchor_file=bool(anchor))
        except PfSyntaxError as exc:
            print(f"{args['-f']}:{exc}", file=sys.stderr)
            return 1
        if not args["-n"]:
            write(record(anchor), text)
        return 0
    if args["-F"] is not None:
        if args["-F"] != "all":
            print("pfctl: only -F all is handled here", file=sys.stderr)
            return 1
        path = record(anchor)
        if os.path.exists(path):
            os.unlink(path)
        return 0
    loaded = read(record(anchor))
    # What is loaded is listed as it is (the checks ran when it was loaded).
    ruleset = parse(loaded, anchor_file=False) if loaded else {"rules": [], "tables": {}}
    if args["-s"] == "info":
        print("Status: Enabled" if os.path.exists(os.path.join(STORE, "enabled")) else "Status: Disabled")
        return 0
    if args["-s"] == "rules":
        lines = loaded.splitlines() if loaded else []
        for rule in ruleset["rules"]:
            print(" ".join(lines[rule["number"] - 1].split()))
        return 0
    if args["-s"] == "Tables":
        for name in sorted(ruleset["tables"]):
            print(name)
        return 0
    if args["-t"] is not None and args["-T"] == "show":
        if args["-t"] not in ruleset["tables"]:
            print(f"pfctl: Table does not exist: {args['-t']}", file=sys.stderr)
            return 1
        for member in ruleset["tables"][args["-t"]]:
            print(f"   {member}")
        return 0
    print("pfctl: nothing to do here", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
