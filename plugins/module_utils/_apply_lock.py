# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: one apply at a time per state directory.

Every apply module (nftables, iptables, pf) takes an exclusive ``flock`` on
``STATE_DIR/apply.lock`` before it reads what is loaded, and keeps it until it exits, so
two runs on one host (two playbooks, or a run and pf's rollback job) follow one another
instead of interleaving their loads, records and boot files. A run waits at most
``lock_timeout`` seconds, then fails naming the lock and the process that holds it.
Check mode takes a shared lock, and only when the lock file exists: it writes nothing.

Every command the run starts while it holds the lock inherits the lock (``tie()``): a
command that outlives a killed run (an ``nft -f`` still loading) keeps the next run, and the
rollback, waiting until it has finished, instead of landing after them.
"""

from __future__ import annotations

import fcntl
import functools
import os
import time

from ansible_collections.warden.egress.plugins.module_utils import _apply_rollback as rollback
from ansible_collections.warden.egress.plugins.module_utils._apply_files import STATE_DIR_MODE, WriteError, make_dirs, why

LOCK_NAME = "apply.lock"


def lock_path(state_dir: str) -> str:
    return os.path.join(state_dir, LOCK_NAME)


def _holder(fd: int) -> str:
    """' (held by pid N)' from what the holder wrote into the lock file, when it did."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (held by pid {text})" if text.isdigit() else ""


def hold(module, state_dir: str, timeout: int, result: dict | None = None) -> int | None:
    """Take the apply lock of ``state_dir`` for the rest of the run; returns its descriptor
    (None in check mode when there is no lock file). Fails the run on timeout."""
    path = lock_path(state_dir)
    shared = module.check_mode
    if shared and not os.path.exists(path):
        return None
    try:
        if not shared:
            make_dirs(state_dir, STATE_DIR_MODE)
        fd = os.open(path, (os.O_RDONLY if shared else os.O_RDWR | os.O_CREAT) | os.O_CLOEXEC, 0o600)
    except (OSError, WriteError) as exc:
        module.fail_json(msg=f"state_dir: cannot open the lock file {path}: {why(exc)}; nothing was changed", **(result or {}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                module.fail_json(msg=f"another warden.egress apply holds {path}{_holder(fd)}; gave up waiting after {timeout} seconds"
                                     " (lock_timeout); nothing was changed", **(result or {}))
            time.sleep(0.1)
    if not shared:
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError as exc:
            os.close(fd)
            module.fail_json(msg=f"state_dir: cannot write to the lock file {path}: {why(exc)}; nothing was changed", **(result or {}))
    tie(module, fd)
    return fd


def tie(module, fd: int) -> None:
    """Have every command the module runs from now on inherit the lock ``fd`` (run_command,
    and the rollback's own commands when the module rolls back itself). A flock belongs to the
    open file, so the lock stays held until the last of them has exited."""
    module.run_command = functools.partial(module.run_command, pass_fds=(fd,))
    rollback.HOLDING = (fd,)
