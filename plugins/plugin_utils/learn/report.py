# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The learn analysis as a person reads it: a one-minute Markdown report and the suggested
inventory change as commented YAML (private to the collection)."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from ansible_collections.warden.egress.plugins.plugin_utils.learn.collect import KINDS
from ansible_collections.warden.egress.plugins.plugin_utils.learn.resolver import KIND_TEXT as RESOLVER_TEXT
from ansible_collections.warden.egress.plugins.plugin_utils.learn.resolver import KINDS as RESOLVER_KINDS
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import _what
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import plain

# What each kind of line that is never read as a flow is, in the report's words.
KIND_TEXT = {
    "foreign": "not ours",
    "not_kernel": "not written by the kernel",
    "not_a_record": "text with no record of who wrote it",
    "not_this_policy": "not what the policy of their host writes (prefix, tag or word)",
    "malformed": "malformed or cut short",
}

SUGGESTION_HEADER = """\
# Suggested by warden.egress.learn from the audit log lines of {window}.
# Nothing has been changed: review, then copy what you accept into your inventory
# (group_vars/all.yml). egress_roles entries list the whole role (built-in allows included),
# because a role of the same name replaces the built-in one whole.
# Every exception's reason, owner and expires is left empty on purpose: the compiler
# refuses an exception until a person has filled them in.
# Findings (alert classes, undesignated DNS/NTP/SMTP servers, never-leave destinations,
# unknown sources, lines no host's policy can be shown to have written) are in the report
# and never here.
"""

NAMES_HEADER = """\
# Names: a dns: entry stands for a learned address that the resolver of the host that sent
# the flow answered for that name before the flow, every time it was seen (report.md,
# "Names from the resolvers' logs"). Addresses are suggested only where no name is known.
"""


def _evidence(entry: Mapping) -> str:
    """One name's evidence: whose resolver answered it, how often, when, along which chain."""
    when = entry["first_answer"] if entry["answers"] == 1 else f"{entry['first_answer']} to {entry['last_answer']}"
    via = f", via CNAME to {', '.join(entry['via'])}" if entry["via"] else ""
    return f"{entry['resolver']}'s resolver, {entry['answers']} answer{'s' if entry['answers'] != 1 else ''} {when}{via}"


def _several(flow: Mapping) -> str:
    names = [entry["name"] for entry in flow["dns_names"]]
    return f"{flow['dst']} was answered for {len(names)} names ({', '.join(names)}): each is suggested; keep those its clients use"


def names_comment(result: Mapping) -> str:
    """The suggestion's names and where each came from, as YAML comments."""
    notes = result.get("names") or []
    if not notes:
        return ""
    out = [NAMES_HEADER]
    for note in notes:
        for flow in note["flows"]:
            evidence = "; ".join(f"{e['name']}: {_evidence(e)}" for e in flow["dns_names"])
            out.append(f"#   {note['upstream']}: {flow['src']} -> {flow['dst']} {flow['what']} ({evidence})\n")
            if len(flow["dns_names"]) > 1:
                out.append(f"#     {_several(flow)}\n")
    return "".join(out)


def _window(result: Mapping) -> str:
    first, last = result["window"]["first"], result["window"]["last"]
    return f"{first} to {last}" if first else "an empty window"


def suggestion_yaml(result: Mapping) -> str:
    """The suggested change as YAML with a header saying what it is and what it is not."""
    header = SUGGESTION_HEADER.format(window=_window(result)) + names_comment(result)
    if not result["suggestion"]:
        return header + "# No flow to allow: nothing to suggest.\n{}\n"
    return header + yaml.safe_dump(plain(result["suggestion"]), sort_keys=False, default_flow_style=False)


def replay_sentence(replay: Mapping) -> str:
    judged = replay["flows"] - len(replay["not_replayed"])
    text = (f"Enforcing today would deny {replay['denied_now']} of the {judged} flows seen; "
            f"with the suggestion, {replay['denied_suggested']}.")
    if replay["not_replayed"]:
        text += f" {len(replay['not_replayed'])} flows could not be replayed (see Not replayed)."
    return text


def _cell(value: object) -> str:
    return str(value if value is not None else "").replace("|", "\\|")


def _who(reporter: str | None) -> str:
    return reporter if reporter is not None else "no owner"


def _seen_on(flows: list[Mapping]) -> dict[tuple, list[str]]:
    """Per role row (role, service, destination): whose logs its lines were read from."""
    out: dict[tuple, set] = {}
    for flow in flows:
        out.setdefault((flow["role"], _what(flow), flow["dst"]), set()).add(_who(flow["reporter"]))
    return {key: sorted(value) for key, value in out.items()}


def _not_replayed(result: Mapping) -> list[str]:
    """Each flow the replay could not judge, by its reporter, source and destination."""
    by_ends: dict[tuple, list[Mapping]] = {}
    for flow in result["flows"]:
        by_ends.setdefault((flow["reporter"], flow["src"], flow["dst"]), []).append(flow)
    out = []
    for entry in result["replay"]["not_replayed"]:
        flows = by_ends.get((entry["reporter"], entry["src"], entry["dst"])) or [{}]
        flow = flows.pop(0) if len(flows) > 1 else flows[0]
        what = f" {_what(flow)}" if flow else ""
        why = entry["why"] if entry["reporter"] is not None else "no host's policy can be shown to have written it"
        out.append(f"* {entry['src']} → {entry['dst']}{what} (on {_who(entry['reporter'])}): {why}")
    return out


def report_markdown(result: Mapping) -> str:
    """Per role what it would allow, what was flagged, which hosts reported, over what window."""
    hosts = result["hosts"]
    reported = sorted(h for h, s in hosts.items() if not s["failed"])
    failed = sorted(h for h, s in hosts.items() if s["failed"])
    silent = sorted(set(result["targets"]) - set(hosts))
    total = {key: sum(s.get(key, 0) for s in hosts.values()) for key in ("lines", "flows", "copies", *KINDS)}
    out = ["# warden.egress learn report", "",
           f"Window: {_window(result)}. Hosts reported: {len(reported)} of {len(set(result['targets']) | set(hosts))} "
           f"({', '.join(reported) or 'none'}).", ""]
    if not reported:
        out += ["**No host's log could be read: nothing was learned.**", ""]
    if failed:
        out += ["Hosts whose log could not be read: " + "; ".join(f"{h} ({hosts[h]['failed']})" for h in failed) + ".", ""]
    if silent:
        out += [f"Targets not gathered: {', '.join(silent)}.", ""]
    kinds = [f"{total[k]} {KIND_TEXT[k]}" for k in KINDS if total[k] or k in ("foreign", "malformed")]
    out += [f"Lines read: {total['lines']}: {total['flows']} of ours, {', '.join(kinds)}. Distinct flows: {len(result['flows'])}.", ""]
    if result.get("shared"):
        out += [f"{result['shared']} lines were copies of a kernel line already read on another host (containers share one kernel log): "
                "each counts once, for the host whose policy wrote it.", ""]
    out += _resolver_lines(result)
    out += [f"**{replay_sentence(result['replay'])}**", ""]
    if result["findings"]:
        out += [f"## Findings ({len(result['findings'])}): never suggested, look at these first", "",
                "| source | role | destination | what | count | why |", "|---|---|---|---|---|---|"]
        for f in result["findings"]:
            out.append(f"| {_cell(f['source'])} (on {_cell(_who(f['reporter']))}) | {_cell(f['role'])} | {_cell(f['dst'])} | {_cell(f['what'])} | "
                       f"{f['count']} | {_cell(f['why'])} |")
        out.append("")
    seen = _seen_on(result["flows"])
    for role, rows in result["roles"].items():
        out += [f"## Role {role}", "", "| service | destination | hosts | seen on | count | first seen | last seen | outcome |",
                "|---|---|---|---|---|---|---|---|"]
        for row in rows:
            outcome = "finding: " + ", ".join(row["findings"]) if row["findings"] else "suggested"
            dest = f"{row['destination']} ({row['upstream']})" if row["upstream"] else row["destination"]
            if row.get("names"):
                dest += " = " + ", ".join(f"dns:{name}" for name in row["names"])
            logs = ", ".join(seen.get((role, row["service"], row["destination"]), []))
            out.append(f"| {_cell(row['service'])} | {_cell(dest)} | {row['hosts']} ({_cell(', '.join(row['sources']))}) | {_cell(logs)} | "
                       f"{row['count']} | {_cell(row['first_seen'])} | {_cell(row['last_seen'])} | {outcome} |")
        out.append("")
    out += _names_section(result)
    if result["review"]:
        out += ["## Left for a person", ""] + [f"* {r['src']} → {r['dst']} {r['what']} (on {_who(r['reporter'])}): {r['why']}" for r in result["review"]] + [""]
    if result["replay"]["still_denied"]:
        out += ["## Still denied with the suggestion", ""]
        out += [f"* {s['src']} → {s['dst']} {s['what']} (on {_who(s['reporter'])}): {s['rule']}" for s in result["replay"]["still_denied"]] + [""]
    if result["replay"]["not_replayed"]:
        out += ["## Not replayed", ""] + _not_replayed(result) + [""]
    samples = [(kind, p) for kind in KINDS if kind != "foreign" for p in result["problems"].get(kind, [])]  # lines not ours: counted only
    if samples:
        out += ["## Lines not read as flows (samples)", ""]
        out += [f"* {p['host']} line {p['line']}, {KIND_TEXT[kind]}: {p['why']}: `{_cell(p['text'][:120]).replace('`', chr(39))}`" for kind, p in samples]
        out += [""]
    resolver = result.get("resolver") or {"problems": {}}
    samples = [(kind, p) for kind in RESOLVER_KINDS if kind != "other" for p in resolver["problems"].get(kind, [])]
    if samples:
        out += ["## Resolver records not read as answers (samples)", ""]
        out += [f"* {p['host']} record {p['line']}, {RESOLVER_TEXT[kind]}: {p['why']}: `{_cell(p['text'][:120]).replace('`', chr(39))}`"
                for kind, p in samples]
        out += [""]
    return "\n".join(out)


def _many(count: int, one: str, more: str) -> str:
    return f"{count} {one if count == 1 else more}"


def _resolver_lines(result: Mapping) -> list[str]:
    """What was read from the hosts' resolver logs, by kind, and whose could not be read."""
    resolver = result.get("resolver")
    if resolver is None:
        return []
    hosts = resolver["hosts"]
    total = {key: sum(s.get(key, 0) for s in hosts.values()) for key in ("records", "queries", "answers", "chain", "left_on_host", *RESOLVER_KINDS)}
    kinds = [f"{total[k]} {RESOLVER_TEXT[k]}" for k in RESOLVER_KINDS if total[k]]
    named = sum(1 for flow in result["flows"] if flow.get("dns_names"))
    out = [f"Resolver records read: {total['records']}: {_many(total['queries'], 'query', 'queries')}, "
           f"{_many(total['answers'], 'answer', 'answers')} with an address, {_many(total['chain'], 'CNAME step', 'CNAME steps')}"
           + "".join(f", {k}" for k in kinds) + f". Flows whose name is known: {named} of {len(result['flows'])}."]
    if total["left_on_host"]:
        out[0] += f" {total['left_on_host']} records about no learned destination were left on the hosts."
    failed = sorted(h for h, s in hosts.items() if s["failed"])
    if failed:
        out.append("Resolver logs that could not be read: " + "; ".join(f"{h} ({hosts[h]['failed']})" for h in failed) + ".")
    return out + [""]


def _names_section(result: Mapping) -> list[str]:
    """Each learned flow whose name is known: the name, whose resolver answered it, and what
    the suggestion makes of it."""
    flows = [f for f in result["flows"] if f.get("dns_names")]
    if not flows:
        return []
    where = {(f["reporter"], f["src"], f["dst"], f["what"]): note["upstream"] for note in result.get("names") or [] for f in note["flows"]}
    out = ["## Names from the resolvers' logs", "",
           "Each name was answered by the resolver of the host that logged the flow, for the flow's destination, before every line of "
           "the flow (within the lifetime of an answer). The name asked is given, not a CNAME chain's target.", "",
           "| source | destination | what | name | from | suggested in |", "|---|---|---|---|---|---|"]
    for flow in flows:
        used = where.get((flow["reporter"], flow["src"], flow["dst"], _what(flow)))
        outcome = used or ("finding" if flow["findings"] else (flow["upstreams"] or ["-"])[0])
        for entry in flow["dns_names"]:
            out.append(f"| {_cell(flow['source']['name'])} (on {_cell(_who(flow['reporter']))}) | {_cell(flow['dst'])} | {_cell(_what(flow))} | "
                       f"dns:{_cell(entry['name'])} | {_cell(_evidence(entry))} | {_cell(outcome)} |")
        if len(flow["dns_names"]) > 1:
            out.append(f"| | | | | {_cell(_several(flow))} | |")
    return out + [""]
