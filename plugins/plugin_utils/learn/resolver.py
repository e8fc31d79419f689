# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which name a learned address was answered for: a host's local resolver log, read back
(private to the collection).

The local dnsmasq (render/dns.py, ``egress_dns.log_answers``) logs every query and answer
with ``log-queries=extra`` through syslog into the journal, under its unit. Every line of one
query carries the query's serial number and its client:

    7 127.0.0.1/41234 query[A] www.example.com from 127.0.0.1
    7 127.0.0.1/41234 forwarded www.example.com to 203.0.113.53
    7 127.0.0.1/41234 reply www.example.com is <CNAME>
    7 127.0.0.1/41234 reply edge.example.net is <CNAME>
    7 127.0.0.1/41234 reply node.cdn.example.net is 203.0.113.77

The name an address was answered for is **the name asked** (``www.example.com``), what
dnsmasq matches its ``nftset`` lines against (docs/dns.md, "CNAME chain"), never a chain's
target alone: an answer counts only when its query line is in the log (same process and
serial) and, along a chain, the first answer line names the name asked.

**Provenance.** A host's resolver log is that host's text: it may only name addresses of
that host's own learned flows, and only records journald itself attributes to the unit's
dnsmasq count: ``_SYSTEMD_UNIT`` (the process's control group), ``_COMM`` and ``_EXE``
(read from /proc), ``_PID`` and ``_UID`` (the socket's credentials), ``_TRANSPORT=syslog``.
``SYSLOG_IDENTIFIER`` is what the writer says and counts for nothing. A record that is not
dnsmasq's, or a line that is not exactly a query or reply line of that format, is counted by
kind (``KINDS``), never read; a name must be one ``model.dnsnames.parse_name`` takes, never
a wildcard (``*`` is no DNS label).
"""

from __future__ import annotations

import bisect
import datetime
import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.learn.collect import journal_entry, log_text
from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import PREFIX, parse_name
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import read_number

UNIT = "warden-egress-dns.service"
COMM = "dnsmasq"
# What the learn role asks journalctl for (besides __REALTIME_TIMESTAMP and _BOOT_ID, always given).
FIELDS = ("MESSAGE", "_SYSTEMD_UNIT", "_COMM", "_EXE", "_UID", "_PID", "_TRANSPORT", "SYSLOG_IDENTIFIER")
# The record the learn role's selection on the host ends with: how many records it left there.
LEFT_KEY = "WARDEN_EGRESS_LEFT_ON_HOST"
KINDS = ("not_a_record", "not_resolver", "other", "malformed", "unanchored")
KIND_TEXT = {
    "not_a_record": "text with no record of who wrote it",
    "not_resolver": "not written by the unit's dnsmasq (as journald attributes it)",
    "other": "other resolver lines (started, forwarded, cached, …)",
    "malformed": "malformed (a name no DNS name is, an address of the other family, no time)",
    "unanchored": "answers whose query, or the start of whose chain, is not in the log",
}
ADDRESS = r"[0-9A-Fa-f.:]{2,45}"
LINE_RE = re.compile(rf"\A(?P<serial>[0-9]{{1,10}}) (?P<client>{ADDRESS})/(?P<port>[0-9]{{1,5}}) "
                     rf"(?:query\[(?P<qtype>[A-Z0-9]{{1,10}})\] (?P<qname>\S{{1,254}}) from (?P<origin>{ADDRESS})"
                     r"|reply (?P<name>\S{1,254}) is (?P<value>\S{1,64}))\Z")
QTYPES = {"A": 4, "AAAA": 6}


def attributed(record: Mapping) -> str | None:
    """Why journald does not attribute ``record`` to the local resolver's dnsmasq (None: it does)."""
    unit, comm, exe = record.get("_SYSTEMD_UNIT"), record.get("_COMM"), record.get("_EXE")
    said = f" (SYSLOG_IDENTIFIER={record.get('SYSLOG_IDENTIFIER')} is what the writer says)" if record.get("SYSLOG_IDENTIFIER") else ""
    if unit != UNIT:
        return f"_SYSTEMD_UNIT={unit}: journald did not see it come from {UNIT}{said}"
    program = exe.rsplit("/", 1)[-1].removesuffix(" (deleted)") if isinstance(exe, str) and exe.startswith("/") else None
    if comm != COMM or program != COMM:
        return f"_COMM={comm} _EXE={exe}: not {COMM}{said}"
    if not all(isinstance(record.get(k), str) and read_number(record[k]) is not None for k in ("_PID", "_UID")):
        return "no _PID or _UID: journald could not say which process wrote it"
    if record.get("_TRANSPORT") != "syslog":
        return f"_TRANSPORT={record.get('_TRANSPORT')}: the resolver logs through syslog"
    return None


def _name(text: str) -> str | None:
    """A name dnsmasq logged, as ``parse_name`` takes it (lower case, no final dot); None when
    it is no DNS name (or a wildcard)."""
    if "*" in text:
        return None
    try:
        return parse_name(PREFIX + text, "resolver log")
    except PolicyError:
        return None


def _iso(micros: int) -> str:
    return datetime.datetime.fromtimestamp(micros / 1e6, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ResolverLog:
    """Every host's resolver records read: ``answers`` (host -> address -> sorted ``(time in
    microseconds, name asked, the chain's name that held the address or "")``), per-host
    statistics ``hosts`` and up to five ``problems`` of each kind."""

    def __init__(self, logs: Mapping[str, object]) -> None:
        self.answers: dict[str, dict[str, list[tuple[int, str, str]]]] = {}
        self.hosts: dict[str, dict] = {}
        self.problems: dict[str, list] = {kind: [] for kind in KINDS}
        for host in sorted(logs):
            self._read(host, logs[host])
        for by_address in self.answers.values():
            for entries in by_address.values():
                entries.sort()

    def _count(self, stats: dict, host: str, number: int, kind: str, why: str, text: object) -> None:
        stats[kind] += 1
        if len(self.problems[kind]) < 5:
            self.problems[kind].append({"host": host, "line": number, "why": why, "text": str(text)[:200]})

    def _read(self, host: str, value: object) -> None:
        stats = {"records": 0, "queries": 0, "answers": 0, "chain": 0, **{kind: 0 for kind in KINDS}, "left_on_host": 0, "failed": None}
        self.hosts[host] = stats
        text, failed = log_text(value)
        if failed is not None:
            stats["failed"] = failed
            return
        entries = []
        for number, item in enumerate(text.splitlines() if isinstance(text, str) else list(text or []), 1):
            if isinstance(item, str) and not item.strip():
                continue
            kind, record = journal_entry(item)
            if kind == "record" and set(record) == {LEFT_KEY}:
                stats["left_on_host"] += read_number(record[LEFT_KEY]) or 0
                continue
            stats["records"] += 1
            if kind != "record":
                self._count(stats, host, number, "not_a_record", record, item)
                continue
            if not isinstance(record.get("MESSAGE"), str):
                self._count(stats, host, number, "not_a_record", "a journal record without a MESSAGE", item)
                continue
            why = attributed(record)
            if why is not None:
                self._count(stats, host, number, "not_resolver", why, record.get("MESSAGE"))
                continue
            micros = read_number(record.get("__REALTIME_TIMESTAMP"))
            if micros is None:
                self._count(stats, host, number, "malformed", "no __REALTIME_TIMESTAMP: when it was written is not known", record["MESSAGE"])
                continue
            entries.append((micros, number, record))
        queries: dict[tuple, dict] = {}
        mine = self.answers.setdefault(host, {})
        for micros, number, record in sorted(entries, key=lambda e: (e[0], e[1])):
            message = record["MESSAGE"]
            match = LINE_RE.match(message)
            if match is None:
                self._count(stats, host, number, "other", "not a query or reply line of log-queries=extra", message)
                continue
            try:
                ipaddress.ip_address(match.group("client"))
            except ValueError:
                self._count(stats, host, number, "malformed", f"client {match.group('client')} is not an address", message)
                continue
            key = (record.get("_BOOT_ID"), record["_PID"], match.group("serial"))
            if match.group("qtype") is not None:
                queries.pop(key, None)
                if match.group("qtype") not in QTYPES:
                    self._count(stats, host, number, "other", f"a query for {match.group('qtype')} records (only A and AAAA fill the sets)", message)
                    continue
                asked = _name(match.group("qname"))
                if asked is None:
                    self._count(stats, host, number, "malformed", f"{match.group('qname')!r} is not a DNS name", message)
                    continue
                queries[key] = {"name": asked, "version": QTYPES[match.group("qtype")], "first": None}
                stats["queries"] += 1
                continue
            self._reply(stats, host, number, message, match, queries.get(key), mine, micros)

    def _reply(self, stats: dict, host: str, number: int, message: str, match, query: dict | None, mine: dict, micros: int) -> None:
        name, value = _name(match.group("name")), match.group("value")
        if name is None:
            self._count(stats, host, number, "malformed", f"{match.group('name')!r} is not a DNS name", message)
            return
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            address = None
        if address is None and value != "<CNAME>":
            self._count(stats, host, number, "other", f"an answer of {value}, not an address", message)
            return
        if query is None:
            self._count(stats, host, number, "unanchored", "its query line (same process and serial) is not in the log", message)
            return
        if query["first"] is None:
            query["first"] = name
        if address is None:
            stats["chain"] += 1
            return
        if address.version != query["version"]:
            self._count(stats, host, number, "malformed", f"an IPv{address.version} address answering a query for "
                                                          f"{'A' if query['version'] == 4 else 'AAAA'} records", message)
            return
        if name != query["name"] and query["first"] != query["name"]:
            self._count(stats, host, number, "unanchored", f"{name} is not {query['name']}, the name asked, and the chain's first line "
                                                           f"names {query['first']}", message)
            return
        stats["answers"] += 1
        mine.setdefault(str(address), []).append((micros, query["name"], name if name != query["name"] else ""))

    def answered(self, host: str | None, address: str, micros: int | None, seconds: int) -> dict[str, dict]:
        """The names ``host``'s own resolver answered ``address`` for in the ``seconds`` before
        ``micros`` (a flow's time): name -> ``{times, via}`` (the answers' times, and the
        chain's names that held the address). Empty for a flow of no host, or without a time."""
        if host is None or micros is None:
            return {}
        entries = self.answers.get(host, {}).get(str(ipaddress.ip_address(address)))
        if not entries:
            return {}
        low = bisect.bisect_left(entries, (micros - seconds * 1_000_000,))
        high = bisect.bisect_left(entries, (micros,))
        out: dict[str, dict] = {}
        for when, asked, via in entries[low:high]:
            found = out.setdefault(asked, {"times": set(), "via": set()})
            found["times"].add(when)
            if via:
                found["via"].add(via)
        return out


def flow_names(found: Mapping[str, Mapping], resolver: str) -> list[dict]:
    """A flow's names (what ``ResolverLog.answered`` found before every line of it), as the
    analysis keeps them: name, whose resolver, how many answers, first and last, via which
    names of a chain."""
    return [{"name": name, "resolver": resolver, "answers": len(value["times"]), "first_answer": _iso(min(value["times"])),
             "last_answer": _iso(max(value["times"])), "via": sorted(value["via"])} for name, value in sorted(found.items())]
