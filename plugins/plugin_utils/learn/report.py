# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The learn analysis as a person reads it: a one-minute Markdown report and the suggested
inventory change as commented YAML (private to the collection)."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from ansible_collections.warden.egress.plugins.plugin_utils.learn.collect import KINDS
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


def _window(result: Mapping) -> str:
    first, last = result["window"]["first"], result["window"]["last"]
    return f"{first} to {last}" if first else "an empty window"


def suggestion_yaml(result: Mapping) -> str:
    """The suggested change as YAML with a header saying what it is and what it is not."""
    header = SUGGESTION_HEADER.format(window=_window(result))
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
            logs = ", ".join(seen.get((role, row["service"], row["destination"]), []))
            out.append(f"| {_cell(row['service'])} | {_cell(dest)} | {row['hosts']} ({_cell(', '.join(row['sources']))}) | {_cell(logs)} | "
                       f"{row['count']} | {_cell(row['first_seen'])} | {_cell(row['last_seen'])} | {outcome} |")
        out.append("")
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
    return "\n".join(out)
