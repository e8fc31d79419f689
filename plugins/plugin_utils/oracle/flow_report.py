# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification report rows -> a JUnit XML file and a self-contained HTML page (private to the
collection). Shared by the flow_junit and flow_html filters; the verdict of a row is the one
the text table shows (report.result)."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from ansible_collections.warden.egress.plugins.plugin_utils.oracle.report import result, service

SUITE = "warden.egress verify"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# Characters XML 1.0 cannot hold at all, not even escaped.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
NO_COMMIT = "not a git checkout"
MISSING = "(no result)"
MISSING_WHY = "the host failed or was unreachable before its flows were tried"


class ReportError(ValueError):
    """Bad input to a report builder: names the argument and the value."""


def check_run(name: str, rows, run) -> dict:
    """The run metadata, checked (fails closed naming the key and the value), with defaults."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ReportError(f"warden.egress.{name}: input must be a list of result rows, got {type(rows).__name__}")
    if not isinstance(run, dict):
        raise ReportError(f"warden.egress.{name}: run must be a dict of run metadata, got {run!r}")
    unknown = sorted(set(run) - {"time", "inventory", "commits", "hosts", "missing", "pending"})
    if unknown:
        raise ReportError(f"warden.egress.{name}: run.{unknown[0]} is not a known key (time, inventory, commits, hosts, missing, pending)")
    time = run.get("time")
    if not isinstance(time, str) or not TIME.fullmatch(time):
        raise ReportError(f"warden.egress.{name}: run.time: {time!r} must be a UTC time as YYYY-MM-DDTHH:MM:SS")
    out = {"time": time}
    for key in ("inventory", "hosts", "missing", "pending"):
        value = run.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ReportError(f"warden.egress.{name}: run.{key}: {value!r} must be a list of strings")
        out[key] = list(value)
    commits = run.get("commits", [])
    if not isinstance(commits, list):
        raise ReportError(f"warden.egress.{name}: run.commits: {commits!r} must be a list of {{dir, commit}}")
    out["commits"] = []
    for i, entry in enumerate(commits):
        if not isinstance(entry, dict) or not isinstance(entry.get("dir"), str) or set(entry) - {"dir", "commit"}:
            raise ReportError(f"warden.egress.{name}: run.commits[{i}]: {entry!r} must be {{dir: PATH, commit: HASH or null}}")
        commit = entry.get("commit")
        if commit is not None and (not isinstance(commit, str) or not COMMIT.fullmatch(commit)):
            raise ReportError(f"warden.egress.{name}: run.commits[{i}].commit: {commit!r} must be a git commit hash or null")
        out["commits"].append({"dir": entry["dir"], "commit": commit})
    return out


def commit_text(entry: dict) -> str:
    return f"{entry['dir']}: {entry['commit'] or NO_COMMIT}"


def source_host(row: dict) -> str:
    """The host the probe ran on: the inbound flow's opener, or the host itself."""
    return str(row.get("from_host") or row.get("host", ""))


def case_name(row: dict) -> str:
    name = str(row.get("name") or f"{service(row)} to {row.get('dst', '')}")
    return f"{name} (inbound to {row.get('host', '')})" if row.get("from_host") else name


def observed_text(row: dict) -> str:
    detail = f": {row['detail']}" if row.get("detail") else ""
    return f"observed {row.get('observed', '')} ({row.get('outcome', '')}{detail})"


def expected_text(row: dict) -> str:
    return f"expected {row.get('expect', '')} (decided by {row.get('reason') or 'no rule given'})"


def describe(row: dict) -> str:
    """Every fact of one flow, one per line."""
    lines = [f"flow: {service(row)} from {row.get('src') or '(host address)'} to {row.get('dst', '')}",
             expected_text(row), observed_text(row)]
    if row.get("user") is not None:
        lines.append(f"sent as user {row['user']}" + (f", group {row['group']}" if row.get("group") is not None else ""))
    if row.get("inconclusive_ok"):
        lines.append("inconclusive_ok: an inconclusive outcome is accepted")
    return "\n".join(lines) + "\n"


def counts(rows: list, missing: list) -> dict:
    """JUnit's counts: a mismatch is a failure, an inconclusive outcome that fails the host
    and a host with no result are errors, an inconclusive outcome accepted by inconclusive_ok
    is skipped (it proves nothing, and fails nothing)."""
    verdicts = [result(r) for r in rows]
    return {"tests": len(rows) + len(missing), "failures": verdicts.count("MISMATCH"),
            "errors": verdicts.count("INCONCLUSIVE") + len(missing), "skipped": verdicts.count("accepted")}


def _xml(value) -> str:
    return NOT_XML.sub("\ufffd", str(value))


def case_seconds(row: dict, index: int) -> float:
    """How long the probe took to try the flow (its ``seconds``); 0 for a row without it."""
    seconds = row.get("seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 86400:
        raise ReportError(f"warden.egress.flow_junit: input[{index}].seconds: {seconds!r} must be the probe's duration in seconds")
    return float(seconds)


def _time(seconds: float) -> str:
    """A JUnit time: seconds with a fraction (to the microsecond, so a fast probe is not 0)."""
    return f"{seconds:.6f}"


def junit_xml(rows: list, run: dict) -> str:
    """One testsuite, one testcase per flow (classname: the host that sent it, time: how long
    its probe took); the suite's and the document's time is the sum. ``skipped`` is counted
    on the testsuite only: the JUnit schema CI systems validate against has no such attribute
    on testsuites."""
    run = check_run("flow_junit", rows, run)
    seconds = [case_seconds(row, i) for i, row in enumerate(rows)]
    total = {k: str(v) for k, v in counts(rows, run["missing"]).items()}
    elapsed = _time(sum(seconds))
    root = ET.Element("testsuites", {"name": SUITE, **{k: v for k, v in total.items() if k != "skipped"}, "time": elapsed})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE, **total, "timestamp": run["time"], "time": elapsed})
    props = ET.SubElement(suite, "properties")
    for name, values in (("inventory", run["inventory"]), ("commit", [commit_text(c) for c in run["commits"]]),
                         ("hosts", run["hosts"]), ("hosts without a result", run["missing"]),
                         ("hosts still to go", run["pending"])):
        for value in values:
            ET.SubElement(props, "property", {"name": name, "value": _xml(value)})
    for row, took in zip(rows, seconds):
        case = ET.SubElement(suite, "testcase", {"classname": _xml(source_host(row)), "name": _xml(case_name(row)), "time": _time(took)})
        verdict = result(row)
        if verdict == "MISMATCH":
            element = ET.SubElement(case, "failure", {
                "type": "mismatch", "message": _xml(f"{expected_text(row)}, {observed_text(row)}")})
            element.text = _xml(describe(row))
        elif verdict == "INCONCLUSIVE":
            element = ET.SubElement(case, "error", {
                "type": "inconclusive",
                "message": _xml(f"inconclusive, proves nothing about the policy: {row.get('outcome', '')}"
                                f"{': ' + str(row['detail']) if row.get('detail') else ''}; {row.get('expect', '')} was expected")})
            element.text = _xml(describe(row))
        elif verdict == "accepted":
            ET.SubElement(case, "skipped", {
                "message": _xml(f"inconclusive ({row.get('outcome', '')}"
                                f"{': ' + str(row['detail']) if row.get('detail') else ''}), accepted by inconclusive_ok")})
        ET.SubElement(case, "system-out").text = _xml(describe(row))
    for host in run["missing"]:
        case = ET.SubElement(suite, "testcase", {"classname": _xml(host), "name": MISSING, "time": _time(0)})
        ET.SubElement(case, "error", {"type": "no result", "message": MISSING_WHY})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #eee; }
tr.ok td.result { background: #d9f2d9; }
tr.MISMATCH td { background: #f8d0d0; }
tr.INCONCLUSIVE td { background: #fde3b5; }
tr.accepted td { background: #f3f3c8; }
tr.missing td { background: #f8d0d0; font-style: italic; }
td.meta { white-space: pre-wrap; }
"""

HTML_COLUMNS = ("host", "flow", "from", "to", "service", "expected", "observed", "result", "decided by")


def _cells(row: dict) -> list:
    detail = f": {row['detail']}" if row.get("detail") else ""
    sender = f"{row['from_host']} " if row.get("from_host") else ""
    return [row.get("host", ""), row.get("name") or "", f"{sender}{row.get('src') or '(host)'}", row.get("dst", ""),
            service(row), row.get("expect", ""), f"{row.get('observed', '')} ({row.get('outcome', '')}{detail})",
            result(row), row.get("reason") or ""]


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def summary(rows: list, missing: list) -> str:
    verdicts = [result(r) for r in rows]
    text = (f"{len(rows)} flows: {verdicts.count('ok')} as expected, {verdicts.count('MISMATCH')} mismatched, "
            f"{verdicts.count('INCONCLUSIVE')} inconclusive and failing, {verdicts.count('accepted')} inconclusive"
            " accepted by inconclusive_ok")
    if missing:
        text += f"; {len(missing)} hosts without a result"
    return text


def html_page(rows: list, run: dict) -> str:
    """A page with no external reference: inline style, no script, every value escaped."""
    run = check_run("flow_html", rows, run)
    per_host = {}
    for row in rows:
        per_host[str(row.get("host", ""))] = per_host.get(str(row.get("host", "")), 0) + 1
    hosts = [f"{h} ({per_host.get(h, 0)} flows)" for h in run["hosts"]]
    meta = [("time (UTC)", [run["time"]]),
            ("inventory", run["inventory"] or ["(none given)"]),
            ("git commit", [commit_text(c) for c in run["commits"]] or ["(no directory)"]),
            ("hosts", hosts or ["(none)"])]
    if run["missing"]:
        meta.append(("hosts without a result", run["missing"]))
    if run["pending"]:
        meta.append(("hosts still to go (this report is partial)", run["pending"]))
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
           f"<title>{_e(SUITE)} report, {_e(run['time'])} UTC</title>", f"<style>{STYLE}</style>", '</head>', '<body>',
           f"<h1>{_e(SUITE)}</h1>", f"<p class=\"summary\">{_e(summary(rows, run['missing']))}</p>", '<table class="run">']
    for title, values in meta:
        out.append(f"<tr><th>{_e(title)}</th><td class=\"meta\">{_e(chr(10).join(values))}</td></tr>")
    out += ['</table>', '<table class="flows">', '<tr>' + ''.join(f"<th>{_e(c)}</th>" for c in HTML_COLUMNS) + '</tr>']
    for row in rows:
        cells = _cells(row)
        out.append(f"<tr class=\"{_e(result(row))}\">" + "".join(
            f"<td class=\"result\">{_e(c)}</td>" if title == "result" else f"<td>{_e(c)}</td>"
            for title, c in zip(HTML_COLUMNS, cells)) + "</tr>")
    for host in run["missing"]:
        out.append(f"<tr class=\"missing\"><td>{_e(host)}</td><td colspan=\"{len(HTML_COLUMNS) - 1}\">"
                   f"{_e(MISSING + ': ' + MISSING_WHY)}</td></tr>")
    out += ['</table>', '</body>', '</html>']
    return "\n".join(out) + "\n"
