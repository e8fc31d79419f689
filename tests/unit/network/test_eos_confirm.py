"""network_acl, apply mode, on EOS: the role's whole sequence run by the real arista.eos
modules, cliconf and network_cli over SSH against a simulated EOS command line
(fake_eos.py: not EOS, a model of what the sequence touches).

Checked: the bindings read from EOS's indented running configuration; the change made as
one configuration session committed with 'commit timer'; 'configure session NAME commit'
sent over a new SSH session; older generations deleted and the configuration saved only
after it; nothing sent when the live generation holds the policy; and a switch the change
cuts off failing the run while its timer restores the configuration from before."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
import yaml
from fake_eos import EOSDevice

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(TOP, "tests", "unit", "network", "apply.yml")
INSIDE, OUTSIDE = "Ethernet1", "Ethernet2"
PLAIN = {"ipv4": "WARDEN-EGRESS-V4", "ipv6": "WARDEN-EGRESS-V6"}
GEN1 = {"ipv4": "WARDEN-EGRESS-V4-1", "ipv6": "WARDEN-EGRESS-V6-1"}


def switch_from_0_4(**options) -> EOSDevice:
    device = EOSDevice(interfaces=(INSIDE, OUTSIDE), **options)
    device.acls = {
        "MGMT-IN": {"afi": "ipv4", "lines": ["   10 permit tcp 192.0.2.0/24 any eq ssh", "   20 deny ip any any log"]},
        PLAIN["ipv4"]: {"afi": "ipv4", "lines": ["   10 permit tcp 198.51.100.0/25 any established", "   20 deny ip any any log"]},
        PLAIN["ipv6"]: {"afi": "ipv6", "lines": ["   10 permit tcp 2001:db8:10::/120 any established", "   20 deny ipv6 any any log"]},
    }
    device.bound = {INSIDE: {("ipv4", "in"): "MGMT-IN"}, OUTSIDE: {("ipv4", "out"): PLAIN["ipv4"], ("ipv6", "out"): PLAIN["ipv6"]}}
    return device


def run(tmp_path, device: EOSDevice) -> subprocess.CompletedProcess:
    edge = {"inside": [{"interface": INSIDE, "prefixes": ["198.51.100.0/25", "2001:db8:10::/120"]}], "outside": OUTSIDE, "conn_limit": False}
    inventory = {"all": {
        "vars": {"egress_trusted_prefixes": ["198.51.100.0/25", "2001:db8:10::/120"]},
        "hosts": {"sw1": {
            "ansible_host": "127.0.0.1", "ansible_port": device.port, "ansible_user": "netops", "ansible_password": "lab",
            "ansible_connection": "ansible.netcommon.network_cli", "ansible_network_os": "arista.eos.eos", "ansible_network_cli_ssh_type": "paramiko",
            "egress_platform": "eos", "egress_edge": edge, "network_acl_confirm_timeout": 60, "network_acl_check_flows": 300,
            # network_cli waits this long after each prompt for more output (0.1 s by default: a tenth of
            # a second per command sent); the simulator sends each reply whole, so 0.01 s loses nothing
            "ansible_buffer_read_timeout": 0.01,
        }},
    }}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_HOST_KEY_CHECKING": "false",
           "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "false", "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "TMPDIR": str(tmp_path)}
    return subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), PLAYBOOK], capture_output=True, text=True, env=env, check=False,
                          cwd=str(tmp_path))


@pytest.fixture
def switch():
    devices = []

    def make(**options) -> EOSDevice:
        device = switch_from_0_4(**options)
        device.port = device.serve()
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.stop()


def sent(device) -> list:
    return [command for session in device.sessions for command in session]


def faults(device) -> list:
    bad = ("-> None", "WHILE BOUND", "(no such ACL)", "SIMULATOR ERROR", "WHILE A CHANGE WAITS")
    return [what for dummy, what in device.events if any(mark in what for mark in bad)]


def test_one_session_with_a_commit_timer_confirmed_over_a_new_connection(tmp_path, switch):
    device = switch()
    before = device.state()
    result = run(tmp_path, device)
    assert result.returncode == 0, (result.stdout[-3000:], device.events, [r for r in device.replies if r[0].startswith("show run")][-2:])
    commands = sent(device)
    opened = next(c for c in commands if re.fullmatch(r"configure session warden-egress-\d{14}", c))
    name = opened.split()[-1]
    start = commands.index(opened)
    timer = commands.index(f"configure session {name} commit timer 00:01:00")
    session = commands[start + 1:timer]
    assert session[0] == f"ip access-list {GEN1['ipv4']}" and f"ipv6 access-list {GEN1['ipv6']}" in session
    assert session[-4:] == [f"interface {OUTSIDE}", f"ip access-group {GEN1['ipv4']} out", f"ipv6 access-group {GEN1['ipv6']} out", "end"]
    assert not any(c.startswith("no ") for c in session)
    # Confirmed over a later SSH session, after reading that the session still waits.
    change = next(i for i, s in enumerate(device.sessions) if opened in s)
    confirm = next(i for i, s in enumerate(device.sessions) if f"configure session {name} commit" in s)
    assert confirm > change
    assert "show configuration sessions detail | json" in device.sessions[confirm]
    later = commands[commands.index(f"configure session {name} commit"):]
    assert f"no ip access-list {PLAIN['ipv4']}" in later and f"no ipv6 access-list {PLAIN['ipv6']}" in later
    assert later[-1] == "copy running-config startup-config"
    state = device.state()
    assert state["bound"][OUTSIDE] == {("ipv4", "out"): GEN1["ipv4"], ("ipv6", "out"): GEN1["ipv6"]}
    assert state["bound"][INSIDE] == before["bound"][INSIDE] and set(state["acls"]) == {"MGMT-IN", GEN1["ipv4"], GEN1["ipv6"]}
    assert device.pending is None and device.saved == state and faults(device) == []

    # The same policy again: nothing is sent in any configuration mode.
    device.sessions.clear()
    again = run(tmp_path, device)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-4000:]
    assert not any(c.startswith(("configure", "no ", "copy")) for c in sent(device)) and device.state() == state


def test_a_switch_that_cannot_be_reached_again_rolls_back_by_itself(tmp_path, switch):
    device = switch(minute=10)  # a 60 s timer lasting 10 s: the refused login comes 2-3 s after the commit
    device.refuse_while_pending = True
    before = device.state()
    result = run(tmp_path, device)
    assert result.returncode != 0
    assert "the new ACLs were NOT confirmed (Reach the switch over a new connection" in result.stdout, result.stdout[-4000:]
    assert not any(re.fullmatch(r"configure session \S+ commit", c) for c in sent(device)) and device.saved is None
    deadline = time.monotonic() + 30
    while device.pending is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    armed = next(t for t, what in device.events if "committed with a timer" in what)
    rolled = next(t for t, what in device.events if what.startswith("rolled back"))
    assert device.state() == before and 9 <= rolled - armed <= 11
    print(f"\nrolled back {rolled - armed:.1f} s after the commit (timer 10 s)")
