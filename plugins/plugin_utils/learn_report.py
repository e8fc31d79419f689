# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The learn analysis as a person reads it: a one-minute Markdown report and the suggested
inventory change as commented YAML (private to the collection)."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from ansible_collections.warden.egress.plugins.plugin_utils.inventory import plain

SUGGESTION_HEADER = """\
# Suggested by warden.egress.learn from the audit log lines of {window}.
# Nothing has been changed: review, then copy what you accept into your inventory
# (group_vars/all.yml). egress_roles entries list the whole role (built-in allows included),
# because a role of the same name replaces the built-in one whole.
# Every exception's reason, owner and expires is left empty on purpose: the compiler
# refuses an exception until a person has filled them in.
# Findings (alert classes, undesignated DNS/NTP/SMTP servers, never-leave destinations,
# unknown sources) are in the report and never here.
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
        text += f" {len(replay['not_replayed'])} flows could not be replayed (no policy of that host)."
    return text


def _cell(value: object) -> str:
    return str(value if value is not None else "").replace("|", "\\|")


def report_markdown(result: Mapping) -> str:
    """Per role what it would allow, what was flagged, which hosts reported, over what window."""
    hosts = result["hosts"]
    reported = sorted(h for h, s in hosts.items() if not s["failed"])
    failed = sorted(h for h, s in hosts.items() if s["failed"])
    silent = sorted(set(result["targets"]) - set(hosts))
    total = {key: sum(s[key] for s in hosts.values()) for key in ("lines", "flows", "foreign", "malformed")}
    out = ["# warden.egress learn report", "",
           f"Window: {_window(result)}. Hosts reported: {len(reported)} of {len(set(result['targets']) | set(hosts))} "
           f"({', '.join(reported) or 'none'}).", ""]
    if failed:
        out += ["Hosts whose log could not be read: " + "; ".join(f"{h} ({hosts[h]['failed']})" for h in failed) + ".", ""]
    if silent:
        out += [f"Targets not gathered: {', '.join(silent)}.", ""]
    out += [f"Lines read: {total['lines']}: {total['flows']} of ours, {total['foreign']} not ours, {total['malformed']} malformed. "
            f"Distinct flows: {len(result['flows'])}.", ""]
    if result.get("shared"):
        out += [f"{result['shared']} lines were copies of a kernel line already read on another host (containers share one kernel log): "
                "each counts once, for the host whose policy wrote it.", ""]
    out += [f"**{replay_sentence(result['replay'])}**", ""]
    if result["findings"]:
        out += [f"## Findings ({len(result['findings'])}): never suggested, look at these first", "",
                "| source | role | destination | what | count | why |", "|---|---|---|---|---|---|"]
        for f in result["findings"]:
            out.append(f"| {_cell(f['source'])} (on {_cell(f['reporter'])}) | {_cell(f['role'])} | {_cell(f['dst'])} | {_cell(f['what'])} | "
                       f"{f['count']} | {_cell(f['why'])} |")
        out.append("")
    for role, rows in result["roles"].items():
        out += [f"## Role {role}", "", "| service | destination | hosts | count | first seen | last seen | outcome |", "|---|---|---|---|---|---|---|"]
        for row in rows:
            outcome = "finding: " + ", ".join(row["findings"]) if row["findings"] else "suggested"
            dest = f"{row['destination']} ({row['upstream']})" if row["upstream"] else row["destination"]
            out.append(f"| {_cell(row['service'])} | {_cell(dest)} | {row['hosts']} ({_cell(', '.join(row['sources']))}) | {row['count']} | "
                       f"{_cell(row['first_seen'])} | {_cell(row['last_seen'])} | {outcome} |")
        out.append("")
    if result["review"]:
        out += ["## Left for a person", ""] + [f"* {r['src']} → {r['dst']} {r['what']} (on {r['reporter']}): {r['why']}" for r in result["review"]] + [""]
    if result["replay"]["still_denied"]:
        out += ["## Still denied with the suggestion", ""]
        out += [f"* {s['src']} → {s['dst']} {s['what']} (on {s['reporter']}): {s['rule']}" for s in result["replay"]["still_denied"]] + [""]
    problems = result["problems"]["malformed"]  # lines not ours are most of a kernel log: counted only
    if problems:
        out += ["## Sample malformed lines", ""] + [f"* {p['host']} line {p['line']}: {p['why']}" for p in problems] + [""]
    return "\n".join(out)
