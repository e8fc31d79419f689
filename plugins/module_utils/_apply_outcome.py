# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: why a confirmed apply was not confirmed, from what the
controller saw and what the target said (the ``unconfirmed_reason`` filter; the Linux role).

The controller's times are seconds since just before the load task began (its own clock);
the target's are seconds since the load (its clock). The two are related only through the
confirmation call: the target received it ``since_load`` seconds after the load, somewhere
between the moment the controller sent it (``asked``) and the moment the answer came back
(``answered``). So the load happened, on the controller's clock, between
``asked - since_load`` and ``answered - since_load`` (and between 0 and ``load_returned``),
and the target's rollback ``rollback_seconds`` after that. A conclusion is drawn only when
those bounds settle it; otherwise the reason says what was measured.
"""

from __future__ import annotations

import re

UNCONFIRMED = {
    "window": "the confirmation window, seconds",
    "unconfirmed": "why the role did not try to confirm ('' when it did)",
    "load_returned": "when the load task returned",
    "reconnected": "when the new connection (after the load) completed, or None",
    "asked": "when the confirmation call was sent, or None",
    "answered": "when its answer had come back, or None",
    "confirm": "the confirmation task's registered result",
}


def _number(observed: dict, key: str, optional: bool = True) -> float | None:
    value = observed.get(key)
    if value is None or value == "":
        if optional:
            return None
        raise ValueError(f"{key}: missing ({UNCONFIRMED[key]})")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: {value!r} is not a number of seconds ({UNCONFIRMED[key]})") from None


def _message(result: dict) -> str:
    text = " ".join(str(result.get("msg", "")).split())
    return re.sub(r"[.]$", "", re.sub(r"^Task failed: ", "", text))


def load_bounds(observed: dict, confirm: dict) -> tuple[float, float]:
    """When the load happened on the controller's clock: (earliest, latest)."""
    returned = _number(observed, "load_returned", optional=False)
    earliest, latest = 0.0, returned
    since = confirm.get("since_load")
    asked, answered = _number(observed, "asked"), _number(observed, "answered")
    if isinstance(since, (int, float)) and asked is not None and answered is not None:
        earliest, latest = max(earliest, asked - since), min(latest, answered - since)
    return earliest, max(earliest, latest)


def unconfirmed_reason(observed: dict) -> str:
    """Why the load was not confirmed, in one clause (no final full stop)."""
    if not isinstance(observed, dict):
        raise ValueError(f"expected a dictionary of what was observed, got {type(observed).__name__}")
    if observed.get("unconfirmed"):
        return str(observed["unconfirmed"])
    confirm = observed.get("confirm") or {}
    if not isinstance(confirm, dict):
        raise ValueError(f"confirm: expected the confirmation task's result, got {type(confirm).__name__}")
    if confirm.get("unreachable") or not confirm.get("rolled_back"):
        return f"the confirmation failed: {_message(confirm)}"
    window = _number(observed, "window", optional=False)
    returned = _number(observed, "load_returned", optional=False)
    rollback = confirm.get("rollback_seconds")
    rollback = float(rollback) if isinstance(rollback, (int, float)) else window
    earliest, latest = load_bounds(observed, confirm)
    reconnected = _number(observed, "reconnected")
    if returned > latest + rollback:
        return (f"the connection the rules were loaded over stopped answering until the host had rolled them back: the load task returned"
                f" {returned:.1f} s after it began, after the rollback ({rollback:.1f} s after the load)")
    if reconnected is not None and returned < earliest + window and reconnected > latest + window:
        return (f"new connections did not complete under the new rules: the first one, opened {returned:.1f} s after the load began,"
                f" took {reconnected - returned:.1f} s, past the {window:g}-second window (a login that waits for something the rules deny,"
                " such as sshd's reverse DNS lookup with UseDNS, does this; a longer window only delays the same rollback)")
    since = confirm.get("since_load")
    if reconnected is not None and returned < earliest + rollback and reconnected < earliest + window and isinstance(since, (int, float)):
        return (f"the confirmation came too late, {since:.1f} s after the load, after the {window:g}-second window, though a new connection"
                f" had completed {reconnected:.1f} s after the load began (raise linux_egress_confirm_timeout)")
    measured = f"the load task returned {returned:.1f} s after it began"
    if reconnected is not None:
        measured += f", a new connection completed {reconnected:.1f} s after it began"
    return f"no confirmation reached the host within the {window:g}-second window ({measured}; the host rolled the rules back {rollback:.1f} s after the load)"
