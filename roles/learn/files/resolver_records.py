# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run on a host by warden.egress.learn (python3 -c, read-only): its local resolver's journal
records about the addresses the host's kernel log named, and no others.

A resolver logs every query it answers; a week of them is far more than the few answers the
learned flows need, so the selection is made here, as the records are read: the addresses
come on standard input (separated by white space, from the DST= fields of the host's gathered kernel
records), and a record is printed, unchanged, when it is a reply line giving one of them, or
a query line or CNAME line of the same query (same _BOOT_ID, _PID and serial) before it.
Nothing is decided here: the controller checks every printed record's provenance and form
(learn/resolver.py) as if the whole log had come. The last line says how many records were
left on the host.

Arguments: the journalctl arguments (unit, output fields, window), after ``--``.
"""

import ipaddress
import json
import re
import subprocess
import sys

LINE_RE = re.compile(r"\A([0-9]{1,10}) \S+ (query\[|reply \S+ is (\S+)\Z)")
KEEP = 4096  # queries whose lines are held while their answers may still come
PER_QUERY = 64


def canonical(text):
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def main():
    args = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    wanted = {canonical(word) for word in sys.stdin.read().split()} - {None}
    try:
        proc = subprocess.Popen(["journalctl"] + args, stdout=subprocess.PIPE, universal_newlines=True, errors="replace")
    except OSError as exc:
        sys.stderr.write("journalctl: {}\n".format(exc))
        sys.exit(1)
    held, left, out = {}, 0, sys.stdout
    for raw in proc.stdout:
        try:
            record = json.loads(raw)
            message = record.get("MESSAGE")
            match = LINE_RE.match(message) if isinstance(message, str) else None
        except (ValueError, AttributeError):
            match = None
        if match is None:
            left += 1
            continue
        key = (record.get("_BOOT_ID"), record.get("_PID"), match.group(1))
        if match.group(2) == "query[":
            held.pop(key, None)
            held[key] = [raw]
            if len(held) > KEEP:
                left += len(held.pop(next(iter(held))))
            continue
        lines = held.get(key)
        if canonical(match.group(3) or "") in wanted:
            out.write("".join(lines or []) + raw)
            if lines is not None:
                held[key] = []
        elif lines is not None and len(lines) < PER_QUERY and match.group(3) == "<CNAME>":
            lines.append(raw)
        else:
            left += 1
    rc = proc.wait()
    left += sum(len(lines) for lines in held.values())
    out.write(json.dumps({"WARDEN_EGRESS_LEFT_ON_HOST": str(left)}) + "\n")
    sys.exit(rc)


main()
