"""What the three apply modules share, run for real: a boot file that cannot be written stops
the run before anything is loaded; a rename that fails after the load puts the kernel (and
the other boot files) back; directories created under umask 000 get explicit modes; and one
apply at a time, through a lock in the state directory.

nftables and iptables run in a network namespace of their own, pf against the lab's pfctl
stand-in (lab/files/fake-pfctl.py)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from netns import TOP, Pair, sh
from sample import compile_for

from ansible_collections.warden.egress.plugins.plugin_utils import render_iptables, render_nftables, render_pf

MODULES = ("nft_apply", "iptables_apply", "pf_apply")
IPT_FILES = ("warden_egress.ipset", "warden_egress.rules.v4", "warden_egress.rules.v6")


class Box:
    """One backend in a place of its own, with its boot files under ``tmp/etc`` and its state
    under ``tmp/state``."""

    def __init__(self, module: str, tmp: str) -> None:
        self.module, self.tmp = module, tmp
        self.etc, self.state = os.path.join(tmp, "etc"), os.path.join(tmp, "state")
        self.bin = os.path.join(tmp, "bin")
        os.makedirs(self.bin)
        self.env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        self.ns = None
        self.pair = None

    def args(self, host: str) -> dict:
        policy = compile_for(host)
        if self.module == "nft_apply":
            return {"content": render_nftables.render(policy)}
        if self.module == "iptables_apply":
            files = render_iptables.render(policy)
            return {key: files[key] for key in ("ipset", "ipv4", "ipv6")}
        return {"content": render_pf.render(policy)}

    def boot_args(self, etc: str | None = None) -> dict:
        etc = etc or self.etc
        if self.module == "iptables_apply":
            return {"directory": etc}
        return {"path": os.path.join(etc, "warden_egress.nft" if self.module == "nft_apply" else "warden_egress")}

    def boot_files(self, etc: str | None = None) -> list[str]:
        etc = etc or self.etc
        if self.module == "iptables_apply":
            return [os.path.join(etc, name) for name in IPT_FILES]
        return [self.boot_args(etc)["path"]]

    def kernel(self) -> str:
        """Everything loaded, without counters."""
        if self.module == "nft_apply":
            return sh("nft", "-s", "list", "ruleset", ns=self.ns).stdout
        if self.module == "iptables_apply":
            saved = [line.split(" [", 1)[0] for tool in ("iptables-save", "ip6tables-save")
                     for line in sh(tool, "-t", "filter", ns=self.ns).stdout.splitlines() if not line.startswith("#")]
            return "\n".join(saved) + "\n" + sh("ipset", "save", ns=self.ns).stdout
        store = os.path.join(self.tmp, "pf", "anchors")
        return "".join(f"## {name}\n{read(os.path.join(store, name))}" for name in sorted(os.listdir(store))) if os.path.isdir(store) else ""

    def real(self, tool: str) -> str:
        """The tool the module would find without this box's own bin directory first."""
        return shutil.which(tool, path=os.environ["PATH"]) if self.module != "pf_apply" else os.path.join(self.tmp, "pfbin", "pfctl")

    def run(self, args: dict, check: bool = False, wrap: list | None = None, umask: int | None = None, **extra) -> dict:
        """Run the module as Ansible runs it (a process reading its arguments file), inside
        ``wrap`` (a command prefix) and under ``umask`` when given."""
        args = {**self.boot_args(), "state_dir": self.state, **args, **extra}
        handle, path = tempfile.mkstemp(dir=self.tmp, suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}, out)
        command = (wrap or []) + (["ip", "netns", "exec", self.ns] if self.ns else [])
        command += [sys.executable, os.path.join(TOP, "plugins", "modules", f"{self.module}.py"), path]
        env = {**self.env, "PYTHONPATH": os.path.join(TOP, ".build", "collections")}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env,
                              preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
        try:
            return json.loads(done.stdout)
        except ValueError:
            raise AssertionError(f"no module result (rc {done.returncode}): {done.stdout!r} {done.stderr[-2000:]!r}") from None


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


@pytest.fixture(params=MODULES)
def box(request):
    with tempfile.TemporaryDirectory() as tmp:
        made = Box(request.param, tmp)
        if request.param != "pf_apply":
            with Pair() as pair:
                made.pair, made.ns = pair, pair.host
                yield made
            return
        pfbin = os.path.join(tmp, "pfbin")
        os.makedirs(pfbin)
        shutil.copy(os.path.join(TOP, "lab", "files", "fake-pfctl.py"), pfbin)
        shutil.copy(os.path.join(TOP, "plugins", "plugin_utils", "pf_grammar.py"), pfbin)
        write_script(os.path.join(pfbin, "pfctl"), f'exec {sys.executable} {os.path.join(pfbin, "fake-pfctl.py")} "$@"')
        made.env["PATH"] = f"{made.bin}:{pfbin}:{os.environ['PATH']}"
        made.env["WARDEN_FAKE_PF_DIR"] = os.path.join(tmp, "pf")
        yield made


def write_script(path: str, body: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"#!/bin/sh\n{body}\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)


def snapshot(box: Box) -> tuple:
    """The kernel, the boot files and the record: what must not change when a run fails."""
    records = {name: read(os.path.join(box.state, name)) for name in sorted(os.listdir(box.state)) if name.endswith(".json")}
    return box.kernel(), [read(path) for path in box.boot_files()], records


# A write error found before the load: the path is a directory, the directory is on a
# read-only file system, or on a full one. Each wraps the second run.
def _directory(box: Box) -> list:
    target = box.boot_files()[-1]
    os.unlink(target)
    os.makedirs(target)
    return []


def _read_only(box: Box) -> list:
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', box.etc]


def _full(box: Box) -> list:
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o size=16k tmpfs "$0" && { head -c 1048576 /dev/zero > "$0/.fill"; exec "$@"; }', box.etc]


@pytest.mark.parametrize(("trouble", "reason"), [(_directory, "is a directory"), (_read_only, "Read-only file system"),
                                                 (_full, "No space left on device")])
def test_a_boot_file_that_cannot_be_written_stops_the_run_before_the_load(box, trouble, reason):
    assert box.run(box.args("mail1"))["changed"]
    wrap = trouble(box)
    before = snapshot(box)
    result = box.run(box.args("dns1"), wrap=wrap)
    assert result.get("failed") and reason in result["msg"] and "nothing was loaded or written" in result["msg"], result
    assert "\n" not in result["msg"] and "exception" not in result
    assert snapshot(box) == before


# A rename that fails after the load: the tool that loads turns a boot file into a directory
# just after its real, successful load (the kind of thing a concurrent hand edit does).
LOADERS = {
    "nft_apply": ("nft", 'case " $* " in *" -c "*|*" list "*) exit 0;; esac'),
    "iptables_apply": ("ip6tables-restore", 'case " $* " in *" --test "*) exit 0;; esac; ip link show eth0 >/dev/null 2>&1 || exit 0'),
    "pf_apply": ("pfctl", 'case " $* " in *" -n "*|*" -s "*|*" -T "*|*" -F "*) exit 0;; esac'),
}


def test_a_rename_that_fails_after_the_load_puts_the_kernel_back(box):
    assert box.run(box.args("mail1"))["changed"]
    before = snapshot(box)
    tool, not_a_load = LOADERS[box.module]
    target, mark = box.boot_files()[-1], os.path.join(box.tmp, "sabotaged")
    write_script(os.path.join(box.bin, tool), f'{box.real(tool)} "$@" || exit $?\n{not_a_load}\n'
                                              f'[ -e {mark} ] && exit 0\ntouch {mark}; rm -f {target}; mkdir {target}')
    result = box.run(box.args("dns1"))
    assert result.get("failed") and f"cannot replace {target}" in result["msg"], result
    assert "back" in result["msg"] and "\n" not in result["msg"]
    os.unlink(os.path.join(box.bin, tool))
    os.rmdir(target)
    kernel, boot, records = snapshot(box)
    assert kernel == before[0] and records == before[2]
    assert boot[:-1] == before[1][:-1]  # iptables: the files renamed before the failure were put back
    again = box.run(box.args("mail1"))
    assert not again["ruleset_changed"] and again["file_changed"], again


def test_directories_get_explicit_modes_under_umask_000(box):
    etc, state_dir = os.path.join(box.tmp, "new", "etc", "warden"), os.path.join(box.tmp, "new", "var", "lib", "warden")
    assert box.run({**box.args("mail1"), **box.boot_args(etc), "state_dir": state_dir}, umask=0)["changed"]
    modes = {"new": stat.S_IMODE(os.stat(os.path.join(box.tmp, "new")).st_mode)}
    for root, dirs, names in os.walk(os.path.join(box.tmp, "new")):
        modes.update({os.path.relpath(os.path.join(root, name), box.tmp): stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
                      for name in dirs + names})
    wanted = {"new": 0o755, "new/etc": 0o755, "new/etc/warden": 0o755, "new/var": 0o755, "new/var/lib": 0o755,
              "new/var/lib/warden": 0o700, "new/var/lib/warden/apply.lock": 0o600}
    wanted.update({os.path.relpath(path, box.tmp): 0o600 if path.endswith(".ipset") else 0o644 for path in box.boot_files(etc)})
    record = {"nft_apply": "inet-warden_egress.json", "iptables_apply": "iptables-warden_egress.json", "pf_apply": "pf-warden_egress.json"}
    wanted[f"new/var/lib/warden/{record[box.module]}"] = 0o600
    assert {path: oct(mode) for path, mode in modes.items()} == {path: oct(mode) for path, mode in wanted.items()}


@contextlib.contextmanager
def holding_the_lock(box: Box):
    os.makedirs(box.state, exist_ok=True)
    with open(os.path.join(box.state, "apply.lock"), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield handle


def test_a_run_waits_for_the_lock_and_gives_up_with_a_clear_error(box):
    assert box.run(box.args("mail1"))["changed"]
    before = snapshot(box)
    with holding_the_lock(box) as handle:
        result = box.run(box.args("dns1"), lock_timeout=1)
        assert result.get("failed") and "another warden.egress apply holds" in result["msg"] and "lock_timeout" in result["msg"], result
        assert snapshot(box) == before
        release = threading.Timer(1.5, lambda: fcntl.flock(handle, fcntl.LOCK_UN))
        release.start()
        started = time.monotonic()
        result = box.run(box.args("dns1"), lock_timeout=30)
        waited = time.monotonic() - started
        release.join()
    assert result["changed"] and waited >= 1.5, (result, waited)
    assert "role dns_resolver" in box.kernel()


@pytest.mark.parametrize("box", ["nft_apply"], indirect=True)
def test_two_runs_at_once_follow_one_another(box):
    """The first run is slowed down just after its load (a wrapper around nft); the second
    starts meanwhile. Unserialised, the second loads in that gap, and the first then lists the
    second's table back as its own and writes its own boot file over the second's: kernel,
    boot file and record disagree. With the lock the second waits and both end consistent."""
    write_script(os.path.join(box.bin, "nft"), f'{box.real("nft")} "$@" || exit $?\n'
                                               'case " $* " in *" -c "*|*" list "*) exit 0;; esac\n'
                                               'for last; do :; done; grep -q "role mail_server" "$last" && sleep 2; exit 0')
    runs = {}
    first = threading.Thread(target=lambda: runs.update(mail1=box.run(box.args("mail1"))))
    first.start()
    deadline = time.monotonic() + 20
    while "role mail_server" not in box.pair.nft("list", "ruleset").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    runs["dns1"] = box.run(box.args("dns1"))
    first.join()
    assert runs["mail1"]["changed"] and runs["dns1"]["changed"], runs
    boot = read(box.boot_files()[0])
    kernel = box.pair.nft("list", "table", "inet", "warden_egress").stdout
    assert ("role dns_resolver" in boot) == ("role dns_resolver" in kernel) and ("role mail_server" in boot) == ("role mail_server" in kernel)
    again = box.run({"content": boot})
    assert not again["changed"], again
    other = box.args("mail1" if "role dns_resolver" in boot else "dns1")
    assert box.run(other, check=True)["ruleset_changed"]
