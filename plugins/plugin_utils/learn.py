# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the collection's own kernel log lines back into flows (private to the collection).

The renderers log a would-be-denied flow (audit mode), a denied packet (enforce mode) and
an alert-class one with the kernel's LOG format, after the prefix
``<egress_log.prefix> <word>: `` (``word`` is ``audit``, ``deny`` or ``alert``). In audit mode
the word carries a tag that says which policy decided, ``host`` (the host's own output
policy) or ``edge`` (a gateway's forward path), and a line on the host's own path carries
the local user and group ids where the kernel knows them (nftables ``log flags skuid``,
iptables ``--log-uid``):

    warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 LEN=60 ... PROTO=TCP SPT=40000 DPT=443 ... UID=1000 GID=1000

Each flow is logged once, then not again for an hour while it lasts (render_audit.py), so a
flow's ``count`` is the number of lines, not of packets. Lines without a tag (written before
the tag existed, or in enforce mode) read as before, with ``decided_by`` None.

nftables' ``log`` and iptables' ``LOG`` target write the same fields. A line may carry
journald's or syslog's own prefix in front (``2026-12-02T10:00:01+0000 mail1 kernel: [ 12.3] ``).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping

WORDS = ("audit", "deny", "alert")
LINE_RE = re.compile(r"(?:^|[\s\]])(?P<prefix>[A-Za-z0-9_.:-]{1,24}) (?P<word>audit|deny|alert)(?:\[(?P<tag>[^\]\s]{1,64})\])?: (?P<fields>IN=.*)\Z")
ISO_RE = re.compile(r"(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s")
SYSLOG_RE = re.compile(r"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2})\s")
PROTOS = {"TCP": "tcp", "UDP": "udp", "ICMP": "icmp", "ICMPV6": "icmpv6", "UDPLITE": 136, "SCTP": 132}
ICMP_TYPES = {
    ("icmp", 0): "echo-reply", ("icmp", 3): "destination-unreachable", ("icmp", 8): "echo-request", ("icmp", 11): "time-exceeded",
    ("icmp", 12): "parameter-problem", ("icmpv6", 1): "destination-unreachable", ("icmpv6", 2): "packet-too-big",
    ("icmpv6", 3): "time-exceeded", ("icmpv6", 4): "parameter-problem", ("icmpv6", 128): "echo-request", ("icmpv6", 129): "echo-reply",
    ("icmpv6", 133): "nd-router-solicit", ("icmpv6", 135): "nd-neighbor-solicit", ("icmpv6", 136): "nd-neighbor-advert",
}
DEFAULT_PREFIXES = ("warden-egress",)
# Copies of one kernel line in several hosts' logs (containers sharing the kernel log) are
# stamped by each host's journald when it reads them: a few seconds apart at most.
SHARED_SECONDS = 5


def _timestamp(head: str, year: int) -> str | None:
    """The time journald or syslog wrote in front of the kernel's text, as ISO 8601 UTC."""
    match = ISO_RE.search(head + " ")
    if match:
        text = match.group("ts").replace("Z", "+00:00")
        if re.search(r"[+-]\d{4}\Z", text):
            text = f"{text[:-2]}:{text[-2:]}"
        try:
            stamp = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.timezone.utc)
        return stamp.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    match = SYSLOG_RE.search(head + " ")
    if match:
        try:
            stamp = datetime.datetime.strptime(f"{year} {match.group('ts')}", "%Y %b %d %H:%M:%S")
        except ValueError:
            return None
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _fields(text: str) -> tuple[dict[str, str], set[str]]:
    values, flags = {}, set()
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            values.setdefault(key, value)
        else:
            flags.add(token)
    return values, flags


def parse_line(line: str, prefixes: Iterable[str] = DEFAULT_PREFIXES, year: int | None = None) -> tuple[str, dict | str]:
    """Classify one log line: ``("flow", record)``, ``("foreign", reason)`` for a line that is
    not the collection's, or ``("malformed", reason)`` for one of ours that cannot be read
    back into a flow (truncated, a bad address, a port missing)."""
    if not isinstance(line, str):
        return "malformed", f"not a line of text: {line!r}"[:200]
    line = line.rstrip("\r\n")
    match = LINE_RE.search(line)
    if not match:
        return "foreign", "no warden log prefix"
    if match.group("prefix") not in prefixes:
        return "foreign", f"prefix {match.group('prefix')!r} is not one of the site's ({', '.join(sorted(prefixes))})"
    values, flags = _fields(match.group("fields"))
    missing = [key for key in ("IN", "OUT", "SRC", "DST", "PROTO") if key not in values]
    if missing:
        return "malformed", f"no {', '.join(missing)} field (truncated?)"
    try:
        src, dst = ipaddress.ip_address(values["SRC"]), ipaddress.ip_address(values["DST"])
    except ValueError:
        return "malformed", f"SRC={values['SRC']} DST={values['DST']} is not a pair of IP addresses"
    if src.version != dst.version:
        return "malformed", f"SRC={src} and DST={dst} are of different address families"
    raw_proto = values["PROTO"]
    proto: str | int | None = PROTOS.get(raw_proto.upper())
    if proto is None and raw_proto.isascii() and raw_proto.isdigit() and int(raw_proto) <= 255:
        proto = int(raw_proto)
    if proto is None:
        return "malformed", f"PROTO={raw_proto} is not a protocol"
    if proto == "icmp" and src.version == 6:
        proto = "icmpv6"
    record = {
        "time": _timestamp(line[:match.start()], year or datetime.datetime.now(datetime.timezone.utc).year),
        "prefix": match.group("prefix"),
        "word": match.group("word"),
        "decided_by": match.group("tag"),
        "iif": values["IN"] or None,
        "oif": values["OUT"] or None,
        "family": f"ipv{src.version}",
        "src": str(src),
        "dst": str(dst),
        "proto": proto,
        "dport": None,
        "icmp_type": None,
        "uid": None,
        "gid": None,
        "message": line[match.start("prefix"):].rstrip(),
    }
    if proto in ("tcp", "udp"):
        port = values.get("DPT", "")
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
            return "malformed", f"a {proto} line with DPT={port or '(none)'} (truncated?)"
        record["dport"] = int(port)
    elif proto in ("icmp", "icmpv6"):
        kind = values.get("TYPE", "")
        if not (kind.isascii() and kind.isdigit()):
            return "malformed", f"an {proto} line with TYPE={kind or '(none)'} (truncated?)"
        record["icmp_type"] = ICMP_TYPES.get((proto, int(kind)), int(kind))
    for key in ("uid", "gid"):
        value = values.get(key.upper(), "")
        if value.isascii() and value.isdigit():
            record[key] = int(value)
    return "flow", record


def flow_key(record: Mapping) -> tuple:
    """What makes two records the same flow: where it was seen, by which hook, and its tuple."""
    return (record["reporter"], record["iif"] is not None, record["src"], record["dst"], str(record["proto"]),
            record["dport"] if record["dport"] is not None else record["icmp_type"], record.get("uid"))


def log_text(value: object) -> tuple[object, str | None]:
    """A host's gathered log: its text (or list of lines) and None, or None and why there is none.
    ``value`` is the text, a list of lines, ``{"failed": why}``, or a registered command result."""
    if not isinstance(value, Mapping):
        return value, None
    if value.get("unreachable"):
        return None, f"unreachable: {value.get('msg') or 'no connection'}"
    if "rc" in value and value.get("rc") != 0:
        detail = (value.get("stderr") or value.get("msg") or "").strip().splitlines()
        return None, f"rc {value.get('rc')}: {detail[0] if detail else 'no message'}"
    if "stdout" in value and not value.get("failed"):
        return value.get("stdout") or "", None
    why = value.get("failed")
    return None, str(why if isinstance(why, str) else value.get("msg") or "no log")


def _seconds(stamp: str | None) -> float | None:
    if stamp is None:
        return None
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def _one_per_kernel_line(events: list[tuple], owner: Callable | None) -> tuple[list[tuple], int]:
    """Events ``(host, stamp, message, record, word)`` with the copies of one kernel line merged.

    Containers on one machine share its kernel log: every container whose journald reads it
    holds every namespace's lines. The same message text in the logs of several hosts within
    ``SHARED_SECONDS`` is one kernel line; it counts once, and ``owner(record, hosts)`` says
    whose policy wrote it (else the first host). Returns the events and how many copies were
    dropped. Hosts that do not share a kernel log never write the same text (their addresses,
    ports and packet ids differ), so nothing changes for them."""
    by_message: dict[str, list[tuple]] = {}
    for event in events:
        by_message.setdefault(event[2], []).append(event)
    out, copies = [], 0
    for group in by_message.values():
        if len({event[0] for event in group}) == 1:
            out.extend(group)
            continue
        clusters: list[dict] = []
        for event in sorted(group, key=lambda e: (e[1] or "", e[0])):
            when = _seconds(event[1])
            for cluster in clusters:
                if event[0] not in cluster["hosts"] and (when is None or cluster["when"] is None or abs(when - cluster["when"]) <= SHARED_SECONDS):
                    cluster["hosts"].append(event[0])
                    copies += 1
                    break
            else:
                clusters.append({"when": when, "hosts": [event[0]], "event": event})
        for cluster in clusters:
            host, stamp, message, record, word = cluster["event"]
            if len(cluster["hosts"]) > 1:
                hosts = sorted(cluster["hosts"])
                reporter = owner(record, hosts) if owner is not None else hosts[0]
                record = dict(record, reporter=reporter or hosts[0], shared=True)
            out.append((host, stamp, message, record, word))
    return out, copies


def collect(logs: Mapping[str, object], prefixes: Iterable[str] = DEFAULT_PREFIXES, year: int | None = None,
            owner: Callable | None = None) -> dict:
    """Parse every host's log lines and merge repeated records of one flow.

    ``logs`` maps each host the lines were gathered from to its text (a string or a list of
    lines), to ``{"failed": "why"}`` for a host whose log could not be read, or to the registered
    result of the command that read it (see ``log_text``). Returns
    ``flows`` (each with ``reporter``, ``count``, ``first_seen``, ``last_seen`` and ``words``),
    per-host ``hosts`` statistics, ``problems`` (up to five samples of each kind of bad line)
    and ``shared`` (copies of one kernel line in several hosts' logs, counted once: see
    ``_one_per_kernel_line``, which ``owner`` serves).
    """
    prefixes = tuple(prefixes)
    flows: dict[tuple, dict] = {}
    hosts: dict[str, dict] = {}
    problems: dict[str, list] = {"foreign": [], "malformed": []}
    events: list[tuple] = []
    for host in sorted(logs):
        text = logs[host]
        stats = {"lines": 0, "flows": 0, "foreign": 0, "malformed": 0, "first": None, "last": None, "failed": None}
        hosts[host] = stats
        text, failed = log_text(text)
        if failed is not None:
            stats["failed"] = failed
            continue
        lines = text.splitlines() if isinstance(text, str) else list(text or [])
        for number, line in enumerate(lines, 1):
            if isinstance(line, str) and not line.strip():
                continue
            stats["lines"] += 1
            kind, result = parse_line(line, prefixes, year)
            if kind != "flow":
                stats[kind] += 1
                if len(problems[kind]) < 5:
                    problems[kind].append({"host": host, "line": number, "why": result, "text": str(line)[:200]})
                continue
            stats["flows"] += 1
            record = dict(result, reporter=host)
            stamp = record.pop("time")
            word = record.pop("word")
            message = record.pop("message")
            for edge_key in ("first", "last"):
                if stamp is not None and (stats[edge_key] is None or (stamp < stats[edge_key]) == (edge_key == "first")):
                    stats[edge_key] = stamp
            events.append((host, stamp, message, record, word))
    events, shared = _one_per_kernel_line(events, owner)
    for event in events:
        stamp, record, word = event[1], event[3], event[4]
        key = flow_key(record)
        flow = flows.get(key)
        if flow is None:
            flow = flows[key] = dict(record, count=0, first_seen=stamp, last_seen=stamp, words=[])
        if record.get("shared"):
            flow["shared"] = True
        if word == "alert":
            flow["alerted"] = True
        else:
            flow["count"] += 1
        if word not in flow["words"]:
            flow["words"].append(word)
        if stamp is not None:
            flow["first_seen"] = min(filter(None, (flow["first_seen"], stamp)))
            flow["last_seen"] = max(filter(None, (flow["last_seen"], stamp)))
    for flow in flows.values():
        flow["count"] = max(flow["count"], 1)
        flow["words"].sort()
    ordered = sorted(flows.values(), key=lambda f: (f["reporter"], f["src"], f["dst"], str(f["proto"]), f["dport"] or 0))
    return {"flows": ordered, "hosts": hosts, "problems": problems, "shared": shared}
