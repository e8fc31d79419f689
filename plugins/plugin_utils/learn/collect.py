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

    warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 LEN=60 ... PROTO=TCP SPT=40000 DPT=443 WINDOW=64240 ... URGP=0 UID=1000 GID=1000

Each flow is logged once, then not again for an hour while it lasts (render/audit.py), so a
flow's ``count`` is the number of lines, not of packets.

**Provenance.** Lines are read from journald's records (``journalctl -k -o json``), not from
text: a record says how journald got it (``_TRANSPORT``) and with which facility. The kernel's
own lines have ``_TRANSPORT=kernel`` and facility 0; a line written to /dev/kmsg from user
space is given facility 1 (user) or higher by the kernel, whatever it claims. A record's
``MESSAGE`` must be one of ours from its first character to its last, with each of the
kernel's fields once (a log prefix of another ruleset that imitates fields repeats them) and
complete (a TCP line goes on to ``WINDOW=`` and ``URGP=``, UDP to ``LEN=``, ICMP to ``CODE=``).
Everything else is counted by kind (``KINDS``), never read as a flow.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import ICMP_TYPES
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import read_number
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import KINDS as IR_KINDS

WORDS = ("audit", "deny", "alert")
TAGS = tuple(IR_KINDS)  # the kind of IR that wrote an audit line
# Anywhere in a line of text (parse_line); a record's MESSAGE must match from its start.
LINE_RE = re.compile(r"(?:^|[\s\]])(?P<prefix>[A-Za-z0-9_.:-]{1,24}) (?P<word>audit|deny|alert)(?:\[(?P<tag>[^\]\s]{1,64})\])?: (?P<fields>IN=.*)\Z")
MESSAGE_RE = re.compile(r"\A(?P<prefix>[A-Za-z0-9_.:-]{1,24}) (?P<word>audit|deny|alert)(?:\[(?P<tag>[^\]\s]{1,64})\])?: (?P<fields>IN=.*)\Z")
ISO_RE = re.compile(r"(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s")
SYSLOG_RE = re.compile(r"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2})\s")
BRACKETS_RE = re.compile(r"\[[^\[\]]*\]")
PROTOS = {"TCP": "tcp", "UDP": "udp", "ICMP": "icmp", "ICMPV6": "icmpv6", "UDPLITE": 136, "SCTP": 132}
# An ICMP type's number as the kernel logs it -> its name as the IR writes it (the catalogue's table).
ICMP_NAMES = {(proto, number): name for family, proto in (("ipv4", "icmp"), ("ipv6", "icmpv6")) for name, number in ICMP_TYPES[family].items()}
# Fields the kernel writes at most once in a line (outside the brackets of an ICMP error's
# inner packet); LEN and ID may come twice (the IP header's, then UDP's or ICMP's).
ONCE = ("IN", "OUT", "MAC", "SRC", "DST", "PROTO", "SPT", "DPT", "WINDOW", "URGP", "TYPE", "CODE", "UID", "GID", "MARK")
# What a complete line goes on to after the field a flow is read from (nf_log always writes them).
TAIL = {"tcp": ("DPT", ("WINDOW", "URGP")), "udp": ("DPT", ("LEN",)), "icmp": ("TYPE", ("CODE",)), "icmpv6": ("TYPE", ("CODE",))}
DEFAULT_PREFIXES = ("warden-egress",)
# What is counted, never read as a flow (docs/learn.md, "Reading").
KINDS = ("foreign", "not_kernel", "not_a_record", "not_this_policy", "malformed")
# Copies of one kernel line in several hosts' logs (containers sharing the kernel log) that
# carry no kernel stamp are told apart by the time their journald read them: a few seconds.
SHARED_SECONDS = 5
# The last microsecond a timestamp can name (9999-12-31T23:59:59.999999Z).
LAST_MICROSECOND = 253402300799999999


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


def _fields(text: str) -> tuple[dict[str, str], list[str], set[str]]:
    """The line's fields (the first of each), their keys in order, and the keys that came
    twice. An ICMP error's inner packet (in brackets) is left out."""
    while True:
        inner = BRACKETS_RE.sub(" ", text)
        if inner == text:
            break
        text = inner
    values: dict[str, str] = {}
    order: list[str] = []
    twice: set[str] = set()
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep:
            continue
        if key in values and key in ONCE:
            twice.add(key)
        values.setdefault(key, value)
        order.append(key)
    return values, order, twice


def _complete(proto: str, order: list[str]) -> str | None:
    """Why a line stops short of what the kernel always writes after its port or type."""
    field, tail = TAIL.get(proto, (None, ()))
    if field is None:
        return None
    rest = order[order.index(field) + 1:]
    for key in tail:
        if key not in rest:
            return f"a {proto} line that stops after {field}= without {' and '.join(k + '=' for k in tail)} (cut short)"
        rest = rest[rest.index(key) + 1:]
    return None


def parse_message(text: str, prefixes: Iterable[str] = DEFAULT_PREFIXES, anchored: bool = True) -> tuple[str, dict | str]:
    """Classify one kernel message: ``("flow", record)``, ``("foreign", why)`` for a message that
    is not the collection's, ``("not_this_policy", why)`` for a tag or word no policy writes so,
    or ``("malformed", why)`` for one of ours that cannot be read back into a flow (cut short,
    a bad address, a port missing, a field twice). The record's ``head`` is what came before the
    prefix (``anchored=False`` only)."""
    if not isinstance(text, str):
        return "malformed", f"not a line of text: {text!r}"[:200]
    text = text.rstrip("\r\n")
    match = (MESSAGE_RE.match if anchored else LINE_RE.search)(text)
    if not match:
        return "foreign", "no warden log prefix"
    if match.group("prefix") not in prefixes:
        return "foreign", f"prefix {match.group('prefix')!r} is not one of the site's ({', '.join(sorted(prefixes))})"
    word, tag = match.group("word"), match.group("tag")
    values, order, twice = _fields(match.group("fields"))
    if twice:
        return "malformed", f"{', '.join(k + '=' for k in sorted(twice))} twice (a log prefix that imitates the kernel's fields?)"
    missing = [key for key in ("IN", "OUT", "SRC", "DST", "PROTO") if key not in values]
    if missing:
        return "malformed", f"no {', '.join(missing)} field (cut short?)"
    if word == "audit" and tag not in TAGS:
        return "not_this_policy", f"{word}[{tag}]: no policy writes this tag" if tag is not None else "audit: without the tag every audit line carries"
    if word != "audit" and tag is not None:
        return "not_this_policy", f"{word}[{tag}]: no policy writes a tag after '{word}'"
    try:
        src, dst = ipaddress.ip_address(values["SRC"]), ipaddress.ip_address(values["DST"])
    except ValueError:
        return "malformed", f"SRC={values['SRC']} DST={values['DST']} is not a pair of IP addresses"
    if src.version != dst.version:
        return "malformed", f"SRC={src} and DST={dst} are of different address families"
    raw_proto = values["PROTO"]
    proto: str | int | None = PROTOS.get(raw_proto.upper())
    if proto is None:
        proto = read_number(raw_proto, 0, 255)
    if proto is None:
        return "malformed", f"PROTO={raw_proto} is not a protocol"
    if proto == "icmp" and src.version == 6:
        proto = "icmpv6"
    record = {
        "head": text[:match.start("prefix")],
        "prefix": match.group("prefix"),
        "word": word,
        "decided_by": tag,
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
        "message": text[match.start("prefix"):].rstrip(),
    }
    if proto in ("tcp", "udp"):
        port = values.get("DPT", "")
        record["dport"] = read_number(port, 1, 65535)
        if record["dport"] is None:
            return "malformed", f"a {proto} line with DPT={port or '(none)'} (cut short?)"
    elif proto in ("icmp", "icmpv6"):
        kind = values.get("TYPE", "")
        number = read_number(kind)
        if number is None:
            return "malformed", f"an {proto} line with TYPE={kind or '(none)'} (cut short?)"
        record["icmp_type"] = ICMP_NAMES.get((proto, number), number)
    short = _complete(proto, order) if isinstance(proto, str) else None
    if short:
        return "malformed", short
    for key in ("uid", "gid"):
        record[key] = read_number(values.get(key.upper()))
    return "flow", record


def parse_line(line: str, prefixes: Iterable[str] = DEFAULT_PREFIXES, year: int | None = None) -> tuple[str, dict | str]:
    """``parse_message`` for a line of text that may carry journald's or syslog's prefix in
    front (``2026-12-02T10:00:01+0000 mail1 kernel: [ 12.3] ``), with its ``time``. Text says
    nothing of who wrote it: ``collect`` reads journal records, this serves a person's look."""
    kind, record = parse_message(line, prefixes, anchored=False)
    if kind == "flow":
        record["time"] = _timestamp(record.pop("head"), year or datetime.datetime.now(datetime.timezone.utc).year)
    return kind, record


def _stamp_of(value: object) -> str | None:
    """journald's ``__REALTIME_TIMESTAMP`` (microseconds since the epoch) as ISO 8601 UTC."""
    micro = read_number(value, 0, LAST_MICROSECOND) if isinstance(value, str) else None
    if micro is None:
        return None
    return datetime.datetime.fromtimestamp(micro / 1e6, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def journal_entry(item: object) -> tuple[str, Mapping | str]:
    """``("record", the record)`` for a journal record (a line of ``journalctl -o json``, or the
    record itself; a ``MESSAGE`` journald gave as bytes, because it is not UTF-8, as text),
    else ``("not_a_record", why)``."""
    if isinstance(item, str):
        text = item.strip()
        if not text.startswith("{"):
            return "not_a_record", "a line of text, not a journal record: nothing says who wrote it"
        try:
            item = json.loads(text)
        except ValueError:
            return "not_a_record", "not a journal record (its JSON does not parse)"
    if not isinstance(item, Mapping):
        return "not_a_record", f"not a journal record: {item!r}"[:200]
    message = item.get("MESSAGE")
    if isinstance(message, list) and all(isinstance(b, int) and 0 <= b < 256 for b in message):
        item = {**item, "MESSAGE": bytes(message).decode("utf-8", "replace")}
    return "record", item


def read_record(item: object) -> tuple[str, dict | str]:
    """One entry of a host's gathered log: ``("record", {message, kernel, why, time, micros, identity})``
    for a journal record (a line of ``journalctl -o json``, or the record itself), else
    ``("not_a_record", why)``. ``kernel`` says whether the kernel wrote it: ``_TRANSPORT=kernel``
    and facility 0 (``SYSLOG_FACILITY``; journald before v236 wrote none for the kernel's own
    lines, only ``SYSLOG_IDENTIFIER=kernel``). ``time`` and ``micros`` are when journald stored
    it (to the second, and in microseconds); ``identity`` is the kernel's stamp of the line
    (boot and monotonic time), the same in every copy of one kernel line."""
    kind, item = journal_entry(item)
    if kind != "record":
        return kind, item
    message = item.get("MESSAGE")
    if not isinstance(message, str):
        return "not_a_record", "a journal record without a MESSAGE"
    transport, facility = item.get("_TRANSPORT"), item.get("SYSLOG_FACILITY")
    kernel = transport == "kernel" and (str(facility) == "0" if facility is not None else item.get("SYSLOG_IDENTIFIER") == "kernel")
    why = None if kernel else (f"not written by the kernel (_TRANSPORT={transport}, SYSLOG_FACILITY={facility}"
                               + ("; the kernel gives what user space writes to /dev/kmsg facility 1 or more)" if transport == "kernel" else ")"))
    boot, mono = item.get("_BOOT_ID"), item.get("_SOURCE_MONOTONIC_TIMESTAMP")
    realtime = item.get("__REALTIME_TIMESTAMP")
    return "record", {"message": message.rstrip("\r\n"), "kernel": kernel, "why": why, "time": _stamp_of(realtime),
                      "micros": read_number(realtime, 0, LAST_MICROSECOND) if isinstance(realtime, str) else None,
                      "identity": (str(boot), str(mono)) if boot and mono else None}


def flow_key(record: Mapping) -> tuple:
    """What makes two records the same flow: where it was seen, by which hook, its tuple, and
    why it is nobody's when it is not."""
    return (record["reporter"], record["iif"] is not None, record["src"], record["dst"], str(record["proto"]),
            record["dport"] if record["dport"] is not None else record["icmp_type"], record.get("uid"),
            (record.get("attribution") or {}).get("class"))


def log_text(value: object) -> tuple[object, str | None]:
    """A host's gathered log: its text (or list of records) and None, or None and why there is none.
    ``value`` is the text, a list, ``{"failed": why}``, or a registered command result."""
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


def _one_per_kernel_line(entries: list[dict]) -> list[list[dict]]:
    """The entries ``{host, line, time, message, identity, ...}`` of every host grouped per
    kernel line: one group per kernel stamp, or, for records without one, the same message in
    the logs of several hosts within ``SHARED_SECONDS``. Hosts that do not share a kernel log
    never hold the same kernel stamp and text, so nothing is grouped for them."""
    by_key: dict[tuple, list[dict]] = {}
    for entry in entries:
        key = ("stamp", *entry["identity"], entry["message"]) if entry["identity"] else ("text", entry["message"])
        by_key.setdefault(key, []).append(entry)
    out = []
    for key, group in by_key.items():
        if key[0] == "stamp" or len({e["host"] for e in group}) == 1:
            out.extend([group] if key[0] == "stamp" else [[e] for e in group])
            continue
        clusters: list[dict] = []
        for entry in sorted(group, key=lambda e: (e["time"] or "", e["host"])):
            when = _seconds(entry["time"])
            for cluster in clusters:
                if entry["host"] not in cluster["hosts"] and (when is None or cluster["when"] is None or abs(when - cluster["when"]) <= SHARED_SECONDS):
                    cluster["hosts"].add(entry["host"])
                    cluster["entries"].append(entry)
                    break
            else:
                clusters.append({"when": when, "hosts": {entry["host"]}, "entries": [entry]})
        out.extend(c["entries"] for c in clusters)
    return out


def undecided(record: Mapping, seen_on: list[str]) -> dict:
    """Without a site to decide by: a line in one host's log is that host's; a line in several
    hosts' logs (a shared kernel log) is nobody's, a finding."""
    if len(seen_on) == 1:
        return {"reporter": seen_on[0]}
    why = f"in the shared kernel log of {', '.join(seen_on)}: nothing says whose policy wrote it"
    return {"reporter": None, "finding": {"class": "owner_undecided", "why": why}}


def intersect(known: Mapping[str, Mapping] | None, found: Mapping[str, Mapping]) -> dict[str, dict]:
    """The names answered before each of a flow's lines: those of every line so far and this one's."""
    if known is None:
        return {name: {"times": set(value["times"]), "via": set(value["via"])} for name, value in found.items()}
    return {name: {"times": value["times"] | found[name]["times"], "via": value["via"] | found[name]["via"]}
            for name, value in known.items() if name in found}


def _count(stats: dict, problems: dict, kind: str, entry: Mapping, why: str) -> None:
    stats[kind] += 1
    if len(problems[kind]) < 5:
        problems[kind].append({"host": entry["host"], "line": entry["line"], "why": why, "text": str(entry["message"])[:200]})


def collect(logs: Mapping[str, object], prefixes: Iterable[str] = DEFAULT_PREFIXES, year: int | None = None,
            owner: Callable | None = None, answered: Callable | None = None) -> dict:
    """Read every host's journal records and merge repeated records of one flow.

    ``logs`` maps each host the records were gathered from to ``journalctl -o json``'s output
    (a string, one record per line, or a list of records), to ``{"failed": "why"}`` for a host
    whose log could not be read, or to the registered result of the command that read it (see
    ``log_text``). ``year`` is not used (records carry their time). A kernel line found in the
    logs of several hosts (containers sharing a kernel log) is read once; ``owner(record,
    seen_on)`` says whose it is, as ``{"reporter": host or None, "finding": {class, why} or
    None, "reject": (kind, why) or None}`` (default ``undecided``): a finding makes the flow
    one that is never suggested, a rejection counts the line as that kind. ``answered(reporter,
    record, micros)`` (optional) gives the names the reporter's resolver answered the line's
    destination for before it (``learn.resolver``); a flow keeps, in ``_names``, those answered
    before every one of its lines.

    Returns ``flows`` (each with ``reporter``, ``count``, ``first_seen``, ``last_seen``,
    ``words``, ``seen_on`` and ``attribution``), per-host ``hosts`` statistics (``lines`` read,
    then each line once: ``flows`` and every kind of ``KINDS`` on the host it is counted for,
    ``copies`` of a line counted on another host), ``problems`` (up to five samples of each
    kind) and ``shared`` (the copies)."""
    prefixes = tuple(prefixes)
    owner = owner or undecided
    hosts: dict[str, dict] = {}
    problems: dict[str, list] = {kind: [] for kind in KINDS}
    entries: list[dict] = []
    for host in sorted(logs):
        stats = {"lines": 0, "flows": 0, **{kind: 0 for kind in KINDS}, "copies": 0, "first": None, "last": None, "failed": None}
        hosts[host] = stats
        text, failed = log_text(logs[host])
        if failed is not None:
            stats["failed"] = failed
            continue
        items = text.splitlines() if isinstance(text, str) else list(text or [])
        for number, item in enumerate(items, 1):
            if isinstance(item, str) and not item.strip():
                continue
            stats["lines"] += 1
            kind, value = read_record(item)
            if kind != "record":
                _count(stats, problems, kind, {"host": host, "line": number, "message": item}, value)
                continue
            entries.append({"host": host, "line": number, **value})
    flows: dict[tuple, dict] = {}
    shared = 0
    for group in _one_per_kernel_line(entries):
        first = min(group, key=lambda e: (e["time"] or "", e["host"], e["line"]))
        seen_on = sorted({e["host"] for e in group})
        for entry in group:
            if entry is not first:
                hosts[entry["host"]]["copies"] += 1
                shared += 1
        counted = hosts[first["host"]]
        kind, result = parse_message(first["message"], prefixes)
        if kind == "foreign" or not first["kernel"]:
            loose = LINE_RE.search(first["message"])
            ours = loose is not None and loose.group("prefix") in prefixes
            if not first["kernel"]:
                kind, result = ("not_kernel", first["why"]) if ours else ("foreign", "not ours, and not written by the kernel")
            elif ours:
                kind, result = "not_kernel", "a line of ours inside another kernel message, not at its start"
        if kind == "flow" and result["decided_by"] is not None and (result["decided_by"] == "edge") != (result["iif"] is not None):
            kind, result = "not_this_policy", (f"audit[{result['decided_by']}] with IN={result['iif'] or ''}: the {result['decided_by']} policy "
                                               f"logs {'forwarded' if result['decided_by'] == 'edge' else 'outgoing'} packets")
        if kind == "flow":
            decision = owner(result, seen_on)
            if decision.get("reject"):
                kind, result = decision["reject"]
                counted = hosts.get(decision.get("reporter"), counted)
        if kind != "flow":
            _count(counted, problems, kind, first, result)
            continue
        reporter = decision.get("reporter")
        counted = hosts.get(reporter, counted)
        counted["flows"] += 1
        stamp, word = first["time"], result.pop("word")
        for end in ("first", "last"):
            if stamp is not None and (counted[end] is None or (stamp < counted[end]) == (end == "first")):
                counted[end] = stamp
        record = dict(result, reporter=reporter, seen_on=seen_on, attribution=decision.get("finding"))
        del record["head"], record["message"]
        if len(seen_on) > 1:
            record["shared"] = True
        key = flow_key(record)
        flow = flows.get(key)
        if flow is None:
            flow = flows[key] = dict(record, count=0, first_seen=stamp, last_seen=stamp, words=[])
        flow["seen_on"] = sorted(set(flow["seen_on"]) | set(seen_on))
        if record.get("shared"):
            flow["shared"] = True
        if answered is not None:
            flow["_names"] = intersect(flow.get("_names"), answered(reporter, record, first["micros"]))
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
    ordered = sorted(flows.values(), key=lambda f: (f["reporter"] or "", f["src"], f["dst"], str(f["proto"]), f["dport"] or 0))
    return {"flows": ordered, "hosts": hosts, "problems": problems, "shared": shared}
