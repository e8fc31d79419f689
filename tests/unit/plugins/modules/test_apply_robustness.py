"""What the three apply modules share, run for real: a boot file that cannot be written stops
the run before anything is loaded; a rename that fails after the load puts the kernel (and
the other boot files) back; directories created under umask 000 get explicit modes; and one
apply at a time, through a lock in the state directory.

nftables and iptables run in a network namespace of their own, pf against the lab's pfctl
stand-in (lab/files/fake-pfctl.py)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import time

import pytest
from apply_box import Box, read, snapshot, write_script


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


def _full(box: Box, where: str | None = None) -> list:
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o size=16k tmpfs "$0" && { head -c 1048576 /dev/zero > "$0/.fill"; exec "$@"; }', where or box.etc]


@pytest.mark.parametrize(("trouble", "reason"), [(_directory, "is a directory"), (_read_only, "Read-only file system"),
                                                 (_full, "No space left on device")])
def test_a_boot_file_that_cannot_be_written_stops_the_run_before_the_load(box, trouble, reason):
    assert box.run(box.args("mail1"))["changed"]
    wrap = trouble(box)
    before = snapshot(box)
    result = box.run(box.args("dns1"), wrap=wrap)
    assert result.get("failed") and reason in result["msg"] and "nothing was loaded or written" in result["msg"], result
    assert "\n" not in result["msg"] and "exception" not in result
    assert not result["changed"] and not result["ruleset_changed"] and not result["file_changed"], result  # it says nothing was loaded
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


def test_a_full_state_directory_fails_the_run_cleanly_naming_the_lock_file(box):
    """The lock file can be created (a full file system still has inodes) but not written."""
    os.makedirs(box.state)
    result = box.run(box.args("mail1"), wrap=_full(box, box.state))
    lock_file = os.path.join(box.state, "apply.lock")
    assert result.get("failed") and f"cannot write to the lock file {lock_file}: No space left on device" in result["msg"], result
    assert "exception" not in result and "\n" not in result["msg"] and not result["changed"], result
    assert box.kernel() == "" or "role mail_server" not in box.kernel()


@pytest.mark.parametrize("box", ["nft_apply"], indirect=True)
def test_a_loader_that_outlives_a_killed_run_holds_back_the_next_run(box):
    """The run is killed while its 'nft -f' still loads (a wrapper sleeps before the real load).
    That nft lands later; the next run must not read the kernel, find it in sync and leave,
    only to have the orphan's table land after it (kernel B, boot file and record A)."""
    assert box.run(box.args("mail1"))["changed"]
    before = snapshot(box)
    loading = os.path.join(box.tmp, "loading")
    write_script(os.path.join(box.bin, "nft"), 'case " $* " in *" -c "*|*" list "*) exec ' + box.real("nft") + ' "$@";; esac\n'
                                               f'for last; do :; done; grep -q "role dns_resolver" "$last" && {{ touch {loading}; sleep 3; }}\n'
                                               f'exec {box.real("nft")} "$@"')
    run = box.start(box.args("dns1"))
    deadline = time.monotonic() + 20
    while not os.path.exists(loading) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.path.exists(loading), "the load never began"
    run.kill()
    run.communicate()
    after = box.run(box.args("mail1"), lock_timeout=30)
    time.sleep(max(0.0, os.stat(loading).st_mtime + 4 - time.time()))  # past the orphan's load
    assert snapshot(box) == before, after
    assert not box.run(box.args("mail1"))["changed"]
