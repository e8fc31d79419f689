# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification report rows -> a readable table (private to the collection)."""

from __future__ import annotations

COLUMNS = (
    ("host", "host"),
    ("flow", "name"),
    ("from", "src"),
    ("to", "dst"),
    ("service", "service"),
    ("expected", "expected"),
    ("observed", "observed"),
    ("result", "result"),
    ("decided by", "reason"),
)


def service(row: dict) -> str:
    return f"{row.get('proto', 'tcp')}/{row.get('port')}"


def result(row: dict) -> str:
    """One row's verdict: ok, MISMATCH, INCONCLUSIVE (fails), or 'accepted' (an inconclusive
    outcome the flow declared acceptable with inconclusive_ok)."""
    inconclusive = row.get("observed") == "inconclusive"
    if row.get("ok"):
        return "accepted" if inconclusive else "ok"
    return "INCONCLUSIVE" if inconclusive else "MISMATCH"


def flow_table(rows: list) -> str:
    """Render rows (dicts with host, name, src, dst, proto, port, expect, observed, outcome, ok)."""
    table = []
    for row in rows:
        table.append({
            "host": str(row.get("host", "")),
            "name": str(row.get("name") or ""),
            "src": str(row.get("src") or "(host)"),
            "dst": str(row.get("dst", "")),
            "service": service(row),
            "expected": str(row.get("expect", "")),
            "observed": f"{row.get('observed', '')} ({row.get('outcome', '')})",
            "result": result(row),
            "reason": str(row.get("reason") or ""),
        })
    widths = {key: max([len(title)] + [len(r[key]) for r in table]) for title, key in COLUMNS}
    lines = ["  ".join(title.ljust(widths[key]) for title, key in COLUMNS).rstrip()]
    lines.append("  ".join("-" * widths[key] for title, key in COLUMNS))
    for r in table:
        lines.append("  ".join(r[key].ljust(widths[key]) for title, key in COLUMNS).rstrip())
    counts = {verdict: sum(1 for r in table if r["result"] == verdict) for verdict in ("ok", "accepted", "INCONCLUSIVE", "MISMATCH")}
    summary = f"{len(rows)} flows: {counts['ok']} as expected, {counts['MISMATCH']} mismatched"
    if counts["accepted"] or counts["INCONCLUSIVE"]:
        summary += (f", {counts['accepted'] + counts['INCONCLUSIVE']} inconclusive"
                    f" ({counts['accepted']} accepted by inconclusive_ok, {counts['INCONCLUSIVE']} failing)")
    lines.append(summary)
    return "\n".join(lines) + "\n"
