# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the files the apply modules write, and the order they write them in.

The kernel and the boot files must never disagree, so a boot file is written in two steps:
``stage()`` writes the new text under a temporary name beside its final path *before* the
ruleset is loaded (a full disk, a path naming a directory or a parent that is a file stops
the run there, with nothing changed), and ``commit()`` renames the staged files into place
after the load, with ``AnsibleModule.atomic_move`` (which keeps the owner and the SELinux
context of the file it replaces). Should a rename still fail, the files already renamed are
put back and ``finish()`` has the caller roll the kernel back.

Directories are created with an explicit mode, whatever the umask: the state directory is
private (0700), boot file directories and any missing parents are 0755.
"""

from __future__ import annotations

import os
import tempfile

STATE_DIR_MODE = 0o700
BOOT_DIR_MODE = 0o755


class WriteError(Exception):
    """A file could not be written; the message names the path and the reason."""


def why(exc: BaseException) -> str:
    """The reason in an OSError (or the message of anything else), on one line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())


def make_dirs(path: str, mode: int) -> None:
    """Create ``path`` with exactly ``mode`` and its missing parents with 0755, whatever the
    umask; leave existing directories alone."""
    missing = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        if os.path.lexists(current):
            raise WriteError(f"{current} exists and is not a directory")
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if os.path.isdir(directory):
                continue
            raise WriteError(f"{directory} exists and is not a directory") from None
        except OSError as exc:
            raise WriteError(f"cannot create the directory {directory}: {why(exc)}") from None
        os.chmod(directory, mode if directory == missing[0] else BOOT_DIR_MODE)


def _write_temp(directory: str, name: str, text: str, mode: int) -> str:
    """Write ``text`` to a new temporary file in ``directory``, flushed to disk; return its path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".warden-new", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: str, text: str, mode: int = 0o600, dir_mode: int = STATE_DIR_MODE) -> None:
    """Write a file of the state directory through a temporary file and a rename."""
    directory = os.path.dirname(path) or "."
    make_dirs(directory, dir_mode)
    try:
        os.replace(_write_temp(directory, os.path.basename(path), text, mode), path)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {why(exc)}") from None


class Staged:
    """One boot file written under a temporary name, waiting for ``commit()``."""

    def __init__(self, path: str, tmp: str, mode: int) -> None:
        self.path, self.tmp, self.mode = path, tmp, mode
        self.backup: str | None = None


def stage(module, path: str, text: str, mode: int = 0o644) -> Staged:
    """Write ``text`` beside ``path``; raise WriteError when it cannot be written there.
    The temporary file is removed when the module exits, unless ``commit()`` moved it."""
    if os.path.isdir(path):
        raise WriteError(f"cannot write {path}: it is a directory")
    directory = os.path.dirname(path) or "."
    make_dirs(directory, BOOT_DIR_MODE)
    try:
        tmp = _write_temp(directory, os.path.basename(path), text, mode)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {why(exc)}") from None
    module.add_cleanup_file(tmp)
    return Staged(path, tmp, mode)


def unchanged(result: dict) -> dict:
    """``result`` for a run that fails before it changed anything: what it planned to change
    (``changed``, ``ruleset_changed``, ``file_changed``) did not happen."""
    return {**result, "changed": False, "ruleset_changed": False, "file_changed": False}


def stage_all(module, result: dict, wanted: list) -> list:
    """Stage ``[(path, text, mode), ...]`` before anything is loaded; fail the run if one
    cannot be written (nothing has been changed yet)."""
    try:
        return [stage(module, path, text, mode) for path, text, mode in wanted]
    except WriteError as exc:
        module.fail_json(msg=f"{exc}; nothing was loaded or written", **unchanged(result))


def _move(module, src: str, dest: str) -> None:
    """``module.atomic_move``, its failure raised as WriteError. ansible-core before 2.19
    reports a failed move with ``fail_json`` from inside it, so that is turned into an
    exception for the duration of the call. The umask is tightened meanwhile, so a file that
    did not exist before is never readable by others, even for a moment."""
    def refuse(msg: str = "", **kwargs) -> None:
        raise WriteError(msg)

    module.fail_json = refuse
    umask = os.umask(0o077)
    try:
        module.atomic_move(src, dest)
    except WriteError:
        raise
    except Exception as exc:
        raise WriteError(why(exc.__cause__ if exc.__cause__ is not None else exc)) from None
    finally:
        os.umask(umask)
        del module.fail_json


def commit(module, staged: list) -> None:
    """Rename every staged file into place. If one cannot be, the ones already renamed are
    put back as they were and WriteError is raised: the boot files are never a mix."""
    try:
        for item in staged:
            if os.path.isfile(item.path):
                item.backup = f"{item.tmp}.previous"
                os.link(item.path, item.backup)
                module.add_cleanup_file(item.backup)
    except OSError as exc:
        raise WriteError(f"cannot keep a copy of {item.path} while replacing it: {why(exc)}") from None
    done = []
    for item in staged:
        try:
            _move(module, item.tmp, item.path)
            os.chmod(item.path, item.mode)
        except (OSError, WriteError) as exc:
            raise WriteError(f"cannot replace {item.path}: {why(exc)}{_put_back(done)}") from None
        done.append(item)
    for item in staged:
        if item.backup:
            os.unlink(item.backup)


def _put_back(done: list) -> str:
    """Undo the renames of ``done``; say what was done, for the error message."""
    if not done:
        return ""
    failed = []
    for item in reversed(done):
        try:
            if item.backup:
                os.replace(item.backup, item.path)
            else:
                os.unlink(item.path)
        except OSError as exc:
            failed.append(f"{item.path} ({why(exc)})")
    if failed:
        return f"; could not put back {', '.join(failed)}"
    return f"; {', '.join(item.path for item in done)} put back as before"


def finish(module, result: dict, staged: list, write_record=None, roll_back=None, undo_record=None) -> None:
    """After a successful load: write the record (``write_record()``), then rename the staged
    boot files into place. When either fails, ``roll_back()`` loads the previous rules again
    and returns what it did, in words, ``undo_record()`` puts the previous record back, and
    the run fails with one line that says all of it. Without ``roll_back`` this run did not
    change the kernel."""
    def fail(problem: str, recorded: bool) -> None:
        undone = roll_back() if roll_back else "the loaded rules were not changed"
        if recorded and undo_record is not None:
            undo_record()
        module.fail_json(msg=f"{problem}; {undone}; the boot files were left as they were", **result)

    if write_record is not None:
        try:
            write_record()
        except (OSError, WriteError) as exc:
            fail(f"cannot write the record of what was applied: {why(exc)}", False)
    try:
        commit(module, staged)
    except WriteError as exc:
        fail(str(exc), write_record is not None)
