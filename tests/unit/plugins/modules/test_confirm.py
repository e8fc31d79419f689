"""The confirmed apply, one contract for the three apply modules, run for real: nftables and
iptables in a network namespace of their own, pf against the lab's pfctl stand-in.

A load with confirm_timeout is put back by the target itself unless confirmed: exactly the
rules, boot files and record of before (also when nothing was loaded); a confirmation keeps
it and writes the boot files and record; a late confirmation, a confirmation with nothing
pending, a second load while one waits, a restart while one waits and a rollback that cannot
be armed each end in a defined state. Under ``ip netns exec`` the rollback is always the
detached process (a systemd unit would run in the root namespace); the systemd timer is
exercised in the Molecule scenario 'lockout'."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import threading
import time

import pytest
from apply_box import Box, read, snapshot
from netns import Pair, sh

OWNER = {"nft_apply": "inet-warden_egress", "iptables_apply": "iptables-warden_egress", "pf_apply": "pf-warden_egress"}


def path_of(box: Box, suffix: str) -> str:
    return os.path.join(box.state, OWNER[box.module] + suffix)


def wait_for_rollback(box: Box, limit: float) -> dict:
    """The note the rollback leaves, once it is there (at most ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while True:
        text = read(path_of(box, ".rolled-back"))
        if text:
            return json.loads(text)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    raise AssertionError(f"no rollback within {limit} s")


def job_pid(box: Box) -> int:
    with open(path_of(box, ".rollback.pid"), encoding="utf-8") as handle:
        return int(handle.read())


def kill_job(box: Box) -> None:
    """What a restart does to the detached rollback process."""
    os.killpg(job_pid(box), signal.SIGKILL)
    with open(path_of(box, ".rollback.pid"), encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)  # returns once the killed process let go of it


def boot(box: Box) -> None:
    """A restart: empty the kernel, then load the boot files as the boot-time unit would."""
    if box.module == "pf_apply":
        store = os.path.join(box.tmp, "pf", "anchors", "warden_egress.conf")
        if os.path.exists(store):
            os.unlink(store)
        subprocess.run(["pfctl", "-a", "warden_egress", "-f", box.boot_files()[0]], env=box.env, check=True)
        return
    box.pair.unload()
    if box.module == "nft_apply":
        sh("nft", "-f", box.boot_files()[0], ns=box.ns)
        return
    ipset, ipv4, ipv6 = box.boot_files()
    sh("ipset", "-exist", "restore", "-file", ipset, ns=box.ns)
    sh("iptables-restore", "--noflush", ipv4, ns=box.ns)
    sh("ip6tables-restore", "--noflush", ipv6, ns=box.ns)


def test_an_unconfirmed_load_is_put_back_exactly_by_the_target(box):
    assert box.run(box.args("mail1"))["changed"]
    before = snapshot(box)
    result = box.run(box.args("dns1"), confirm_timeout=2)
    assert result["pending_confirmation"] and result["changed"] and result["ruleset_changed"], result
    assert result["rollback_by"].startswith("detached process"), result  # never a systemd unit under ip netns exec
    assert "confirm_timeout: 2 seconds is less than the 15 seconds a controller may need to reconnect" in json.dumps(result["warnings"])
    kernel, boot_files, records = snapshot(box)
    assert "role dns_resolver" in kernel
    assert (boot_files, records) == before[1:]  # only a confirmation writes the boot files and the record
    note = wait_for_rollback(box, 8)
    assert note["ok"] and 2 <= note["seconds"] < 5, note
    assert snapshot(box) == before
    late = box.run({}, confirm=True)
    assert late.get("failed") and late["msg"].startswith("too late: the host put the previous") and late["rolled_back"], late
    assert "no confirmation within 2 s" in late["msg"] and "\n" not in late["msg"]
    assert not box.run(box.args("mail1"), check=True)["changed"]
    assert snapshot(box) == before


def test_nothing_loaded_before_is_put_back_as_nothing(box):
    before = snapshot(box)
    assert box.run(box.args("dns1"), confirm_timeout=1)["pending_confirmation"]
    assert "role dns_resolver" in box.kernel()
    wait_for_rollback(box, 8)
    assert snapshot(box) == before
    assert [read(path) for path in box.boot_files()] == [None] * len(box.boot_files())


def test_a_confirmed_load_stays_and_reaches_the_boot_files(box):
    box.run(box.args("mail1"))
    loaded = time.monotonic()
    assert box.run(box.args("dns1"), confirm_timeout=6)["pending_confirmation"]
    time.sleep(3.2)
    confirmed = box.run({}, confirm=True)
    assert confirmed["changed"] and confirmed["file_changed"] and not confirmed["pending_confirmation"], confirmed
    assert confirmed["confirmed_after"] >= 3.2 and "more than half of its 6 s window" in json.dumps(confirmed["warnings"]), confirmed
    time.sleep(max(0.0, loaded + 7 - time.monotonic()))  # past the window: nothing is put back
    kernel, boot_files, records = snapshot(box)
    assert "role dns_resolver" in kernel and "role mail_server" not in kernel
    assert "role dns_resolver" in "".join(boot_files) and "role mail_server" not in "".join(boot_files)
    assert not os.path.exists(path_of(box, ".rolled-back")) and not os.path.exists(path_of(box, ".pending"))
    assert not box.run(box.args("dns1"))["changed"]
    again = box.run({}, confirm=True)
    assert again.get("failed") and "nothing to confirm" in again["msg"], again


def test_a_confirmation_with_nothing_pending_fails_clearly(box):
    box.run(box.args("mail1"))
    before = snapshot(box)
    for check in (False, True):
        result = box.run({}, check=check, confirm=True)
        assert result.get("failed") and result["msg"] == f"nothing to confirm: no load of {label(box)} is waiting for confirmation", result
    assert snapshot(box) == before


def label(box: Box) -> str:
    return {"nft_apply": "table inet warden_egress", "iptables_apply": "iptables chains warden_egress-*", "pf_apply": "anchor warden_egress"}[box.module]


def test_check_mode_confirmation_says_what_would_happen_and_changes_nothing(box):
    box.run(box.args("mail1"))
    assert box.run(box.args("dns1"), confirm_timeout=30)["pending_confirmation"]
    pending = snapshot(box)
    checked = box.run({}, check=True, confirm=True)
    assert checked["changed"] and checked["pending_confirmation"] and checked["file_changed"], checked
    assert snapshot(box) == pending and os.path.exists(path_of(box, ".pending"))
    assert box.run({}, confirm=True)["changed"]


def test_a_second_load_waits_for_the_pending_one_and_never_stacks_rollbacks(box):
    box.run(box.args("mail1"))
    assert box.run(box.args("dns1"), confirm_timeout=3)["pending_confirmation"]
    pending = snapshot(box)
    for extra in ({}, {"confirm_timeout": 30}):
        refused = box.run(box.args("proxy1"), lock_timeout=0, **extra)
        assert refused.get("failed") and f"a load of {label(box)} waits for confirmation until" in refused["msg"], refused
        assert "confirm it (confirm: true) or let it roll back" in refused["msg"] and "nothing was changed" in refused["msg"]
        assert snapshot(box) == pending
    started = time.monotonic()
    second = box.run(box.args("proxy1"), lock_timeout=30)
    waited = time.monotonic() - started
    assert second["changed"] and not second["pending_confirmation"] and waited >= 1.5, (second, waited)
    assert wait_for_rollback(box, 0)["ok"]  # the first load was put back before the second one loaded
    time.sleep(3.5)  # past any second rollback
    kernel, boot_files, records = snapshot(box)
    assert "role web_proxy" in kernel and "role dns_resolver" not in kernel
    assert not box.run(box.args("proxy1"))["changed"]


def test_a_second_load_proceeds_once_the_first_is_confirmed(box):
    box.run(box.args("mail1"))
    assert box.run(box.args("dns1"), confirm_timeout=30)["pending_confirmation"]
    runs = {}
    second = threading.Thread(target=lambda: runs.update(proxy1=box.run(box.args("proxy1"), confirm_timeout=30)))
    second.start()
    time.sleep(1)
    assert "proxy1" not in runs and "role dns_resolver" in box.kernel()
    assert box.run({}, confirm=True)["changed"]
    second.join()
    assert runs["proxy1"]["pending_confirmation"], runs
    assert box.run({}, confirm=True)["changed"]
    assert "role web_proxy" in box.kernel() and not os.path.exists(path_of(box, ".rolled-back"))


@pytest.fixture()
def bystander():
    """A live process in a process group of its own, like the rollback process."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def test_a_restart_while_a_load_waits_brings_back_the_previous_rules(box, bystander):
    """The boot files are still the previous ones, so the restart loads those. The leftover
    plan has no rollback armed any more: a confirmation fails and puts the previous rules back
    (which they are), and the process whose number the leftover pid file now names is left alone."""
    box.run(box.args("mail1"))
    before = snapshot(box)
    assert box.run(box.args("dns1"), confirm_timeout=60)["pending_confirmation"]
    kill_job(box)
    with open(path_of(box, ".rollback.pid"), "w", encoding="utf-8") as handle:
        handle.write(f"{bystander.pid}\n")
    boot(box)
    assert snapshot(box) == before
    late = box.run({}, confirm=True)
    assert late.get("failed") and "too late" in late["msg"] and "no longer armed" in late["msg"], late
    assert bystander.poll() is None, "the process named in the leftover pid file was signalled"
    assert snapshot(box) == before
    assert box.run(box.args("dns1"))["changed"] and "role dns_resolver" in box.kernel()


def test_a_leftover_plan_is_put_back_by_the_next_load(box):
    box.run(box.args("mail1"))
    before = snapshot(box)
    assert box.run(box.args("dns1"), confirm_timeout=60)["pending_confirmation"]
    kill_job(box)  # the rollback process is gone, and nothing was restarted: the unconfirmed rules are still loaded
    result = box.run(box.args("proxy1"), check=True)
    assert result["changed"] and os.path.exists(path_of(box, ".pending"))
    result = box.run(box.args("mail1"))
    assert "waited for a confirmation that never came" in json.dumps(result.get("warnings", [])), result
    assert not result["changed"] and snapshot(box) == before  # put back first: the wanted rules are those


def test_a_rollback_that_cannot_be_armed_puts_the_previous_rules_back_at_once(box):
    box.run(box.args("mail1"))
    before = snapshot(box)
    with open(path_of(box, ".rollback.pid"), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # held by something else
        result = box.run(box.args("dns1"), confirm_timeout=30)
    assert result.get("failed") and result["msg"].startswith("could not arm the rollback") and "is held by another rollback process" in result["msg"], result
    assert "the host put the previous" in result["msg"]
    assert snapshot(box) == before


def test_a_boot_file_that_cannot_be_written_on_confirmation_leaves_the_rollback_armed(box):
    box.run(box.args("mail1"))
    before = snapshot(box)
    assert box.run(box.args("dns1"), confirm_timeout=2)["pending_confirmation"]
    target = box.boot_files()[-1]
    os.unlink(target)
    os.makedirs(target)
    result = box.run({}, confirm=True)
    assert result.get("failed") and "is a directory" in result["msg"] and "not confirmed: the host puts the previous rules back at" in result["msg"], result
    wait_for_rollback(box, 8)
    os.rmdir(target)
    assert snapshot(box)[0] == before[0]


@pytest.mark.parametrize(("args", "message"), [
    ({"confirm": True, "state": "absent"}, "confirm: true confirms the pending load"),
    ({"confirm_timeout": -1}, "confirm_timeout: -1 must be 0 or more seconds"),
])
def test_bad_input_is_refused_clearly(box, args, message):
    load = box.args("mail1") if "confirm_timeout" in args else {}
    result = box.run({**load, **args})
    assert result.get("failed") and message in result["msg"], result
    assert box.kernel() == "" or "role mail_server" not in box.kernel()


def test_a_confirmation_cannot_carry_a_ruleset(box):
    result = box.run(box.args("mail1"), confirm=True)
    assert result.get("failed") and "confirm: true confirms the pending load" in result["msg"], result


@pytest.mark.parametrize(("wrap", "same"), [([], True), (["unshare", "--net"], False), (["unshare", "--mount"], False)])
def test_systemd_is_used_only_in_pid_1s_namespaces(wrap, same):
    """A transient unit runs in PID 1's namespaces: a module under ip netns exec or in another
    mount namespace must not hand its rollback to systemd. Here a process started in the
    namespaces at hand (or in new ones) stands in for PID 1."""
    from ansible_collections.warden.egress.plugins.module_utils._apply_confirm import _same_namespaces

    init = subprocess.Popen(wrap + ["sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{init.pid}/exe").endswith("unshare") and time.monotonic() < deadline:
            time.sleep(0.01)  # until unshare has made the namespaces and run sleep
        assert _same_namespaces(init.pid) is same
    finally:
        init.kill()
        init.wait()


def test_iptables_jump_goes_back_to_its_place_and_the_old_sets_keep_their_members():
    """Exactly as before: a foreign rule had been inserted above the collection's jump, and the
    rollback puts the jump back below it; the load's new sets are destroyed, the old ones kept."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, Pair() as pair:
        made = Box("iptables_apply", tmp)
        made.pair, made.ns = pair, pair.host
        made.run(made.args("mail1"))
        sh("iptables", "-I", "OUTPUT", "1", "-d", "203.0.113.9", "-j", "ACCEPT", ns=pair.host)
        before = snapshot(made)
        assert made.run(made.args("dns1"), confirm_timeout=1)["pending_confirmation"]
        assert sh("iptables", "-S", "OUTPUT", ns=pair.host).stdout.splitlines()[1].endswith("-j warden_egress-output")
        wait_for_rollback(made, 8)
        assert snapshot(made) == before
        assert sh("iptables", "-S", "OUTPUT", ns=pair.host).stdout.splitlines()[2].endswith("-j warden_egress-output")


def test_the_window_is_strict_even_when_the_rollback_has_not_run_yet(box):
    """The rollback process is held up (stopped) past the window: a confirmation that comes
    then is refused, and the previous rules are put back at once."""
    box.run(box.args("mail1"))
    before = snapshot(box)
    assert box.run(box.args("dns1"), confirm_timeout=2)["pending_confirmation"]
    group = job_pid(box)
    os.killpg(group, signal.SIGSTOP)
    try:
        time.sleep(2.6)
        checked = box.run({}, check=True, confirm=True)
        assert checked.get("failed") and "too late: the 2-second window of the load" in checked["msg"], checked
        assert checked["pending_confirmation"] and checked["since_load"] >= 2.6, checked
        late = box.run({}, confirm=True)
    finally:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGCONT)
    assert late.get("failed") and late["msg"].startswith("too late: the host put the previous") and late["rolled_back"], late
    assert "no confirmation within 2 s; one came" in late["msg"] and not late["pending_confirmation"], late
    assert snapshot(box) == before
    assert not os.path.exists(path_of(box, ".pending"))


def test_a_confirmation_signals_only_the_rollback_of_its_load(box, bystander):
    """The pid file is locked, but by something else, and it names another process group
    leader: the confirmation must not signal that group."""
    box.run(box.args("mail1"))
    assert box.run(box.args("dns1"), confirm_timeout=60)["pending_confirmation"]
    kill_job(box)
    with open(path_of(box, ".rollback.pid"), "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(f"{bystander.pid}\n")
        handle.flush()
        result = box.run({}, confirm=True)
    assert result.get("failed") and "does not run the rollback of this load" in result["msg"] and "nothing was signalled" in result["msg"], result
    assert bystander.poll() is None, "a process that is not the rollback was signalled"
    assert "role dns_resolver" in box.kernel() and not result.get("changed"), result


def test_a_killed_rollback_process_still_rolls_back(box):
    """Killing the process the pid file names (not its group) leaves its twin, which rolls
    back when the window ends; a confirmation still stops both."""
    box.run(box.args("mail1"))
    before = snapshot(box)
    assert box.run(box.args("dns1"), confirm_timeout=3)["pending_confirmation"]
    os.kill(job_pid(box), signal.SIGKILL)
    note = wait_for_rollback(box, 10)
    assert note["ok"] and "no confirmation within 3 s" in note["message"], note
    assert snapshot(box) == before
    assert box.run(box.args("dns1"), confirm_timeout=30)["pending_confirmation"]
    group = job_pid(box)
    assert len(alive_in(group)) == 2
    assert box.run({}, confirm=True)["changed"]
    assert alive_in(group) == []


def alive_in(group: int) -> list:
    """The live (not zombie) processes of a process group."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(entry))
    return found
