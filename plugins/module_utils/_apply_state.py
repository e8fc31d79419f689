# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the record of what was last applied on a target.

A backend loads a generated ruleset atomically, then records its hash together with
the ruleset as the kernel lists it back. The next run compares: same hash and same
kernel listing means nothing to do. Any hand edit of the collection's own rules shows
as a listing that differs from the record, and is put right.

The record is written after the load and before the boot files are renamed into place
(see ``_apply_files``); a run that fails after the load puts the previous record back.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible_collections.warden.egress.plugins.module_utils import _apply_rollback as rollback
from ansible_collections.warden.egress.plugins.module_utils._apply_files import WriteError, why, write_atomic


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_record(path: str) -> dict | None:
    return rollback.read_json(path, ("sha256", "listing", "content"))


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _write_json(path: str, record: dict) -> None:
    write_atomic(path, json.dumps(record, indent=1, sort_keys=True) + "\n", mode=0o600)


def write_record(path: str, content: str, listing: str, **extra) -> None:
    _write_json(path, {"sha256": sha256(content), "listing": listing, "content": content, **extra})


def put_back_record(path: str, record: dict | None) -> None:
    """Write ``record`` (what was recorded before this run) again; without one, or when it
    cannot be written, remove the file, so that no record claims rules that are not loaded."""
    try:
        if record is not None:
            _write_json(path, record)
            return
    except (OSError, WriteError):
        pass
    try:
        remove(path)
    except OSError:
        pass


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
    """``module.run_command(argv + [a temporary file holding text])``; the file is removed
    afterwards. A file that cannot be written fails the run."""
    try:
        return rollback.run_with_file(argv, text, suffix, runner=module.run_command)
    except OSError as exc:
        module.fail_json(msg=f"cannot write a temporary file for {os.path.basename(argv[0])}: {why(exc)}")


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
        if path and os.path.isdir(path):
            module.fail_json(msg=f"path: {path} is a directory, not the boot file; nothing was removed", **result)
        if listing is not None:
            unload()
        remove_files(module, result, [path] if path else [])
    if not module.check_mode:
        remove_files(module, result, [record_path])
    module.exit_json(**result)


def remove_files(module, result: dict, paths: list) -> None:
    """Remove files (``state: absent``); a path that cannot be removed fails the run clearly."""
    for path in paths:
        try:
            remove(path)
        except OSError as exc:
            module.fail_json(msg=f"cannot remove {path}: {why(exc)}", **result)


def diff_before(record: dict | None, listing: str | None) -> str:
    """What to show as 'before': the last applied file if the kernel still matches it."""
    if listing is None:
        return ""
    if record is not None and record["listing"] == listing:
        return record["content"]
    return listing
