# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the confirmed apply, shared by the apply modules.

With ``confirm_timeout`` a module saves what it owns before the load (also "nothing
loaded"), loads, and ``arm()``s a rollback that runs on the target without the controller
(``_apply_rollback``): a transient systemd timer where systemd runs the host and shares the
module's network and mount namespaces, a detached process and its twin holding a lock on
their pid file elsewhere. The record and the boot files are written by ``confirm()`` only, so a
restart while a load waits brings back the previous rules. The window is strict: ``confirm()``
refuses once it has passed, whether or not the rollback has run yet.

Files in the state directory, per owner NAME (``inet-warden_egress``, ``iptables-warden_egress``,
``pf-warden_egress``): ``NAME.pending`` (the plan, JSON: what to put back, and what to write on
confirmation), ``NAME.rollback.py`` (the program), ``NAME.rollback.pid`` (the detached process)
and ``NAME.rolled-back`` (what the rollback did, read by a late confirmation).

Only one load waits at a time per state directory: ``settle()`` makes a run wait (releasing
the apply lock meanwhile) until a pending load is confirmed or rolled back, and rolls back at
once a plan whose rollback is no longer armed (the host restarted, or the timer was stopped).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid

from ansible_collections.warden.egress.plugins.module_utils import _apply_files as files
from ansible_collections.warden.egress.plugins.module_utils import _apply_lock as lock
from ansible_collections.warden.egress.plugins.module_utils import _apply_rollback as rollback
from ansible_collections.warden.egress.plugins.module_utils import _apply_state as state
from ansible_collections.warden.egress.plugins.module_utils._apply_rollback import stamp

PLAN_SUFFIX = ".pending"
ARMED_STATES = ("active", "activating", "deactivating", "reloading")
# Below this, a controller may not manage a new SSH connection, privilege escalation and a few
# probes before the window ends, and a good policy gets rolled back.
RECONNECT_SECONDS = 15
STALE = "its rollback was no longer armed: the host restarted, or the timer or process was stopped"


def program_source() -> str:
    """The rollback program's own text (this collection's ``_apply_rollback``)."""
    loader = getattr(rollback, "__loader__", None)
    source = loader.get_source(rollback.__name__) if loader is not None and hasattr(loader, "get_source") else None
    if not source:
        raise files.WriteError("cannot read the rollback program's source")
    return source


def _same_namespaces(init: int = 1) -> bool:
    """True when this process shares PID 1's (``init``'s) network and mount namespaces, so that
    a unit started by systemd touches the same rules and files (not so under ``ip netns exec``).
    False when that cannot be read."""
    try:
        return all(os.stat(f"/proc/self/ns/{kind}").st_ino == os.stat(f"/proc/{init}/ns/{kind}").st_ino for kind in ("net", "mnt"))
    except OSError:
        return False


def systemd_tools(module) -> tuple[str, str] | None:
    """``(systemd-run, systemctl)`` when systemd runs this host and can run the rollback here."""
    if not os.path.isdir("/run/systemd/system") or not _same_namespaces():
        return None
    run, ctl = module.get_bin_path("systemd-run"), module.get_bin_path("systemctl")
    return (run, ctl) if run and ctl else None


def describe(plan: dict) -> str:
    runner = plan["runner"]
    if runner["kind"] == "systemd":
        return f"systemd timer {runner['unit']}.timer"
    return f"detached process (pid file {runner['pid_file']})"


def _pid_holder(pid_file: str) -> int | None:
    """The pid written in a pid file that a live process holds a lock on, or None (a file
    nobody holds a lock on is a leftover, whatever process its number names now)."""
    try:
        fd = os.open(pid_file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else -1


def _group_runs(module, pgid: int, needles: tuple) -> bool:
    """Whether a live process of process group ``pgid`` runs the rollback program: one of
    its arguments ends with ``needles[0]`` (the program's name) and another is ``needles[1]``
    (the plan's token). Read from /proc, or from ``ps`` where there is none."""
    name, token = needles
    found = []
    if os.path.isdir("/proc/self"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    group = int(handle.read().rsplit(b")", 1)[1].split()[2])
                if group != pgid:
                    continue
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    found.append([arg.decode("utf-8", "replace") for arg in handle.read().split(b"\0")])
            except (OSError, ValueError, IndexError):
                continue
    else:
        ps = module.get_bin_path("ps")
        rc, out, err = module.run_command([ps, "-A", "-o", "pgid=", "-o", "args="]) if ps else (1, "", "")
        for line in out.splitlines() if rc == 0 else []:
            words = line.split()
            if words[:1] == [str(pgid)]:
                found.append(words[1:])
    return any(token in args and any(arg.endswith(name) for arg in args) for args in found)


def armed(module, plan: dict) -> bool:
    """Whether the plan's rollback is still armed (waiting, or running)."""
    runner = plan["runner"]
    if runner["kind"] == "systemd":
        ctl = module.get_bin_path("systemctl")
        if not ctl:
            return False
        rc, out, err = module.run_command([ctl, "is-active", f"{runner['unit']}.timer", f"{runner['unit']}.service"])
        return any(line.strip() in ARMED_STATES for line in out.splitlines())
    return _pid_holder(runner["pid_file"]) is not None


def plans(state_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(glob.escape(state_dir), f"*{PLAN_SUFFIX}")))


class Pending:
    """One owner's load waiting for confirmation: its plan, rollback program and note."""

    def __init__(self, module, state_dir: str, name: str, label: str) -> None:
        self.module, self.state_dir, self.name, self.label = module, state_dir, name, label
        base = os.path.join(state_dir, name)
        self.plan_path, self.program, self.pid_file, self.marker = (base + suffix for suffix in (PLAN_SUFFIX, ".rollback.py", ".rollback.pid", ".rolled-back"))
        self.unit = "warden-egress-rollback-" + hashlib.sha256(os.path.abspath(base).encode("utf-8")).hexdigest()[:12]

    def plan(self) -> dict | None:
        return rollback.read_plan(self.plan_path)

    def note(self) -> dict | None:
        return rollback.read_json(self.marker)

    def arm(self, timeout: int, restore: dict, on_confirm: dict, result: dict) -> None:
        """After the load: write the plan and the program, and start the rollback. If that
        fails, what was loaded is put back at once and the run fails."""
        tools = systemd_tools(self.module)
        started = False
        now = time.time()
        plan = {
            "token": uuid.uuid4().hex, "label": self.label, "restore": restore, "confirm": on_confirm,
            "loaded_at": now, "loaded_mono": time.monotonic(), "timeout": timeout, "rollback_at": now + timeout,
            "lock": lock.lock_path(self.state_dir), "marker": self.marker, "plan": self.plan_path, "program": self.program,
            "runner": {"kind": "systemd", "unit": self.unit} if tools else {"kind": "process", "pid_file": self.pid_file},
        }
        try:
            state.remove(self.marker)
            files.write_atomic(self.program, program_source())
            files.write_atomic(self.plan_path, json.dumps(plan, indent=1, sort_keys=True) + "\n")
            problem = self._start_systemd(plan, tools) if tools else self._start_process(plan)
            started = problem is None
        except (OSError, files.WriteError) as exc:
            problem = files.why(exc)
        if started and not armed(self.module, plan):
            problem = f"{describe(plan)} is not running"
        if problem is not None:
            if started or tools:
                self.stop(plan)
            note = rollback.roll_back(plan, "the rollback could not be armed")
            state.remove(self.plan_path)
            self.module.fail_json(msg=f"could not arm the rollback ({problem}); {note['message']}", **result)
        result.update(pending_confirmation=True, rollback_by=describe(plan), rollback_at=stamp(plan["rollback_at"]))
        if timeout < RECONNECT_SECONDS:
            self.module.warn(f"confirm_timeout: {timeout} seconds is less than the {RECONNECT_SECONDS} seconds a controller may need to reconnect"
                             " and confirm (a new SSH connection, privilege escalation, probe flows); a slow confirmation rolls back a good policy")

    def _start_systemd(self, plan: dict, tools: tuple) -> str | None:
        self.stop(plan)
        run, dummy = tools
        argv = [run, f"--unit={self.unit}", f"--description=warden.egress: put back the previous {self.label} unless confirmed",
                f"--on-active={plan['timeout']}", "--timer-property=AccuracySec=100ms", "--timer-property=RemainAfterElapse=no",
                "--property=Type=oneshot", "--collect", "--quiet", "--", sys.executable, self.program, self.plan_path, plan["token"]]
        rc, out, err = self.module.run_command(argv)
        return None if rc == 0 else f"systemd-run failed: {(err or out).strip()}"

    def _start_process(self, plan: dict) -> str | None:
        files.make_dirs(self.state_dir, files.STATE_DIR_MODE)
        fd = os.open(self.pid_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return f"{self.pid_file} is held by another rollback process"
            os.ftruncate(fd, 0)
            job = subprocess.Popen([sys.executable, self.program, self.plan_path, plan["token"], "--wait", str(plan["timeout"])],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                                   start_new_session=True, pass_fds=(fd,))
            # the process writes its pid once its twin is forked: from then on, killing one of them leaves the other
            deadline = time.monotonic() + 10
            while os.pread(fd, 32, 0) != f"{job.pid}\n".encode("ascii"):
                if job.poll() is not None or time.monotonic() >= deadline:
                    return f"the rollback process {job.pid} did not start (exit status {job.poll()})"
                time.sleep(0.01)
        finally:
            os.close(fd)
        return None

    def stop(self, plan: dict) -> bool:
        """Stop the plan's rollback (waiting or running: the caller holds the apply lock, so a
        running one has done nothing yet). True when it is stopped."""
        runner = plan["runner"]
        if runner["kind"] == "systemd":
            ctl = self.module.get_bin_path("systemctl")
            if ctl:
                units = [f"{runner['unit']}.timer", f"{runner['unit']}.service"]
                self.module.run_command([ctl, "stop"] + units)
                self.module.run_command([ctl, "reset-failed"] + units)
            return not armed(self.module, plan)
        pid = _pid_holder(runner["pid_file"])
        if pid is not None:
            if pid <= 0 or not _group_runs(self.module, pid, (os.path.basename(self.program), plan["token"])):
                self.module.fail_json(msg=f"{runner['pid_file']} is locked, but process group {pid} does not run the rollback of this load"
                                          f" ({os.path.basename(self.program)} with its token); nothing was signalled")
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except OSError:
                    break
                try:
                    os.killpg(pid, signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued
                except OSError:
                    pass
                deadline = time.monotonic() + 5
                while _pid_holder(runner["pid_file"]) is not None and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _pid_holder(runner["pid_file"]) is None:
                    break
        stopped = _pid_holder(runner["pid_file"]) is None
        if stopped:
            state.remove(runner["pid_file"])
        return stopped

    def roll_back_now(self, plan: dict, why: str) -> dict:
        """Put back what the plan saved, now (the caller holds the apply lock), stop its
        rollback and leave the note for a late confirmation."""
        self.stop(plan)
        note = rollback.roll_back(plan, why)
        rollback.write_json(self.marker, note)
        return note


def _from_plan(module, path: str) -> tuple[Pending, dict] | tuple[None, None]:
    plan = rollback.read_plan(path)
    if plan is None:
        return None, None
    name = os.path.basename(path)[: -len(PLAN_SUFFIX)]
    return Pending(module, os.path.dirname(path), name, plan["label"]), plan


def settle(module, fd: int | None, state_dir: str, timeout: int, result: dict) -> None:
    """Before a load or a removal: wait until no load waits for confirmation in ``state_dir``
    (releasing the apply lock meanwhile, so that the confirmation or the rollback can run),
    at most ``timeout`` seconds. A plan whose rollback is no longer armed is rolled back now."""
    if fd is None:
        return
    deadline = time.monotonic() + timeout
    while True:
        waiting = None
        for path in plans(state_dir):
            pending, plan = _from_plan(module, path)
            if plan is None:
                continue
            if armed(module, plan):
                waiting = plan
                continue
            note = pending.roll_back_now(plan, STALE)
            module.warn(f"a load of {plan['label']} waited for a confirmation that never came; {note['message']}")
            if not note["ok"]:
                module.fail_json(msg=f"{note['message']}; nothing else was changed", **result)
        if waiting is None:
            return
        if time.monotonic() >= deadline:
            module.fail_json(msg=f"a load of {waiting['label']} waits for confirmation until {stamp(waiting['rollback_at'])} ({describe(waiting)});"
                                 f" gave up waiting for it after {timeout} seconds (lock_timeout): confirm it (confirm: true) or let it roll back,"
                                 " then run again; nothing was changed", **result)
        fcntl.flock(fd, fcntl.LOCK_UN)
        time.sleep(0.25)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline + 30:
                    module.fail_json(msg=f"another warden.egress apply holds {lock.lock_path(state_dir)}; gave up waiting; nothing was changed", **result)
                time.sleep(0.1)


def age(plan: dict) -> float:
    """Seconds since the plan's load, on this host's monotonic clock (the wall clock for a
    plan written without it)."""
    if isinstance(plan.get("loaded_mono"), (int, float)):
        return time.monotonic() - plan["loaded_mono"]
    return time.time() - plan["loaded_at"]


def _refuse_late(module, pending: Pending, plan: dict, waited: float, result: dict) -> None:
    """The window has passed, whether or not the rollback has run yet: refuse, and (not in
    check mode) put the previous rules back now, as the rollback would. Exits."""
    if module.check_mode:
        module.fail_json(msg=f"too late: the {plan['timeout']}-second window of the load of {pending.label} ended {waited - plan['timeout']:.1f} s ago;"
                             " the host puts the previous rules back", **{**result, "pending_confirmation": True})
    note = pending.roll_back_now(plan, f"no confirmation within {plan['timeout']} s; one came {waited:.1f} s after the load")
    rest = {k: v for k, v in result.items() if k not in ("changed", "pending_confirmation", "rollback_by", "rollback_at")}
    module.fail_json(msg=f"too late: {note['message']}", rolled_back=note["ok"], rolled_back_at=stamp(note["rolled_back_at"]),
                     rollback_seconds=note["seconds"], changed=note["ok"], pending_confirmation=not note["ok"], **rest)


def confirm(module, pending: Pending, result: dict, after=None) -> None:
    """``confirm: true``: keep the pending load. Stops the rollback, writes the record and the
    boot files the plan holds, then calls ``after(plan)`` (iptables destroys the previous
    sets). In check mode, says whether there is a load to confirm. Exits.

    The window is strict: once ``timeout`` seconds have passed since the load, the
    confirmation is refused even if the rollback has not run yet (it waits for the lock, or
    its timer is late), and the previous rules are put back at once. ``since_load`` in the
    result says how long after the load the target received the call."""
    plan = pending.plan()
    if plan is None:
        note = pending.note()
        if note is not None:
            module.fail_json(msg=f"too late: {note['message']}", rolled_back=note["ok"], rolled_back_at=stamp(note["rolled_back_at"]),
                             rollback_seconds=note["seconds"], since_load=round(time.time() - note["loaded_at"], 1), **result)
        module.fail_json(msg=f"nothing to confirm: no load of {pending.label} is waiting for confirmation", **result)
    result["since_load"] = round(age(plan), 1)
    if not armed(module, plan):
        if module.check_mode:
            module.fail_json(msg=f"too late: the load of {pending.label} can no longer be confirmed ({STALE}); the next run puts the previous rules back",
                             **result)
        note = pending.roll_back_now(plan, STALE)
        module.fail_json(msg=f"too late: {note['message']}", rolled_back=note["ok"], rolled_back_at=stamp(note["rolled_back_at"]),
                         rollback_seconds=note["seconds"], changed=note["ok"], **{k: v for k, v in result.items() if k != "changed"})
    if age(plan) > plan["timeout"]:
        _refuse_late(module, pending, plan, age(plan), result)
    wanted = plan["confirm"]
    boot = [item for item in wanted["boot"] if state.read_text(item["path"]) != item["text"]]
    result.update(changed=True, ruleset_changed=False, file_changed=bool(boot), pending_confirmation=True,
                  rollback_by=describe(plan), rollback_at=stamp(plan["rollback_at"]))
    if module.check_mode:
        module.exit_json(**result)
    try:
        staged = [files.stage(module, item["path"], item["text"], item["mode"]) for item in boot]
    except files.WriteError as exc:
        module.fail_json(msg=f"{exc}; not confirmed: the host puts the previous rules back at {stamp(plan['rollback_at'])}",
                         **files.unchanged(result))
    waited = age(plan)
    if waited > plan["timeout"]:
        _refuse_late(module, pending, plan, waited, files.unchanged(result))
    if not pending.stop(plan):
        module.fail_json(msg=f"could not stop the rollback ({describe(plan)}); not confirmed", **files.unchanged(result))
    record = wanted["record"]
    previous = state.read_record(record["path"])

    def undo() -> str:
        return pending.roll_back_now(plan, "the boot files could not be written on confirmation")["message"]

    files.finish(module, result, staged, write_record=lambda: state.write_record(record["path"], record["content"], record["listing"], **record["extra"]),
                 roll_back=undo, undo_record=lambda: state.put_back_record(record["path"], previous))
    for path in (pending.plan_path, pending.program):
        state.remove(path)
    result["confirmed_after"] = round(waited, 1)
    if waited > plan["timeout"] / 2:
        module.warn(f"the load was confirmed {waited:.1f} s after it was made, more than half of its {plan['timeout']} s window;"
                    " a slower reconnection would have rolled it back: raise confirm_timeout")
    result["pending_confirmation"] = False
    for key in ("rollback_by", "rollback_at"):
        result.pop(key)
    if after is not None:
        after(plan)
    module.exit_json(**result)
