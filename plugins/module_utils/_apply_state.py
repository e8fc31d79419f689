# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the record of what was last applied on a target.

A backend loads a generated ruleset atomically, then records its hash together with
the ruleset as the kernel lists it back. The next run compares: same hash and same
kernel listing means nothing to do. Any hand edit of the collection's own rules shows
as a listing that differs from the record, and is put right.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_record(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not {"sha256", "listing", "content"} <= set(record):
        return None
    return record


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def write_atomic(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".warden-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_record(path: str, content: str, listing: str, **extra) -> None:
    record = {"sha256": sha256(content), "listing": listing, "content": content, **extra}
    write_atomic(path, json.dumps(record, indent=1, sort_keys=True) + "\n", mode=0o600)


def remove(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def in_sync(record: dict | None, content: str, listing: str | None) -> bool:
    """True when ``content`` is what was applied last and the kernel still holds it."""
    return record is not None and listing is not None and record["sha256"] == sha256(content) and record["listing"] == listing


def run_with_file(module, argv: list, text: str, suffix: str) -> tuple:
    """Run ``argv`` + [a temporary file holding ``text``]; the file is removed afterwards."""
    fd, tmp = tempfile.mkstemp(prefix="warden-egress-", suffix=suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return module.run_command(list(argv) + [tmp])
    finally:
        os.unlink(tmp)


def plan(module, result: dict, record: dict | None, content: str, listing: str | None, file_changed: bool, name: str) -> None:
    """Fill ``result`` with what loading ``content`` would change, and the diff."""
    result["sha256"] = sha256(content)
    result["ruleset_changed"] = not in_sync(record, content, listing)
    result["file_changed"] = file_changed
    result["changed"] = result["ruleset_changed"] or file_changed
    if module._diff and result["changed"]:
        result["diff"] = {
            "before": diff_before(record, listing),
            "after": content,
            "before_header": f"{name} (loaded)",
            "after_header": f"{name} (wanted)",
        }


def remove_all(module, result: dict, record: dict | None, listing: str | None, record_path: str, path: str | None, unload) -> None:
    """``state: absent``: take the ruleset out of the kernel (``unload()``, only when
    ``listing`` says it is there) and remove the boot file and the record; exits."""
    result["ruleset_changed"] = listing is not None
    result["file_changed"] = bool(path) and os.path.exists(path)
    result["changed"] = result["ruleset_changed"] or result["file_changed"]
    if module._diff:
        result["diff"] = {"before": diff_before(record, listing), "after": ""}
    if result["changed"] and not module.check_mode:
        if listing is not None:
            unload()
        if path:
            remove(path)
    if not module.check_mode:
        remove(record_path)
    module.exit_json(**result)


def diff_before(record: dict | None, listing: str | None) -> str:
    """What to show as 'before': the last applied file if the kernel still matches it."""
    if listing is None:
        return ""
    if record is not None and record["listing"] == listing:
        return record["content"]
    return listing
