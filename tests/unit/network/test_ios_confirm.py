"""network_acl, apply mode, on IOS: the role's whole sequence run by the real cisco.ios
modules, cliconf and network_cli over SSH against a simulated IOS command line
(fake_ios.py: not IOS, a model of what the sequence touches).

What is checked is the role's side of the contract: the gather, one change under
'configure terminal revert timer', the rebinding by replacement (the outside interface is
never without an ACL), a NEW SSH connection for 'configure confirm', older generations
deleted only after it, nothing loaded when the live generation holds the policy; and, when
the controller cannot confirm, a run that fails saying the router rolls back by itself,
with the simulated router's timer restoring exactly the configuration from before."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import yaml
from fake_ios import Device

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(TOP, "tests", "unit", "network", "apply.yml")
INSIDE, OUTSIDE = "GigabitEthernet0/0", "GigabitEthernet0/1"
PLAIN = {"ipv4": "WARDEN-EGRESS-V4", "ipv6": "WARDEN-EGRESS-V6"}
GEN = {n: {"ipv4": f"WARDEN-EGRESS-V4-{n}", "ipv6": f"WARDEN-EGRESS-V6-{n}"} for n in (1, 2)}


def device_from_0_4(**options) -> Device:
    """A router as 0.4.0 left it: the plain-named ACLs (an older policy) bound out on the
    outside interface, and an ACL of the administrator's own bound in on the inside one."""
    device = Device(interfaces=(INSIDE, OUTSIDE), **options)
    device.acls = {
        "MGMT-IN": {"afi": "ipv4", "lines": [" 10 permit tcp 192.0.2.0 0.0.0.255 any eq 22", " 20 deny ip any any log"]},
        PLAIN["ipv4"]: {"afi": "ipv4", "lines": [" 10 permit tcp 198.51.100.0 0.0.0.127 any established", " 20 deny ip any any log"]},
        PLAIN["ipv6"]: {"afi": "ipv6", "lines": [" sequence 10 permit tcp 2001:db8:10::/120 any established", " sequence 20 deny ipv6 any any log"]},
    }
    device.bound = {INSIDE: {("ipv4", "in"): "MGMT-IN"}, OUTSIDE: {("ipv4", "out"): PLAIN["ipv4"], ("ipv6", "out"): PLAIN["ipv6"]}}
    return device


def run(tmp_path, device: Device, never_leave=None, check: bool = False, **host) -> subprocess.CompletedProcess:
    edge = {"inside": [{"interface": INSIDE, "prefixes": ["198.51.100.0/25", "2001:db8:10::/120"]}], "outside": OUTSIDE, "conn_limit": False}
    if never_leave:
        edge["never_leave"] = never_leave
    inventory = {"all": {
        "vars": {"egress_trusted_prefixes": ["198.51.100.0/25", "2001:db8:10::/120"],
                 "egress_upstreams": {"smtp_relays": ["203.0.113.25", "2001:db8:5100::25"]}},
        "hosts": {"edge1": {
            "ansible_host": "127.0.0.1", "ansible_port": device.port, "ansible_user": "netops", "ansible_password": "lab",
            "ansible_connection": "ansible.netcommon.network_cli", "ansible_network_os": "cisco.ios.ios", "ansible_network_cli_ssh_type": "paramiko",
            "egress_platform": "ios", "egress_edge": edge, "network_acl_confirm_timeout": 60, "network_acl_check_flows": 300,
            # network_cli waits this long after each prompt for more output (0.1 s by default: a tenth of
            # a second per command sent); the simulator sends each reply whole, so 0.01 s loses nothing
            "ansible_buffer_read_timeout": 0.01, **host,
        }},
    }}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_HOST_KEY_CHECKING": "false",
           "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "false", "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "TMPDIR": str(tmp_path)}
    command = ["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), PLAYBOOK] + (["--check"] if check else [])
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))


@pytest.fixture
def router():
    devices = []

    def make(**options) -> Device:
        device = device_from_0_4(**options)
        device.port = device.serve()
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.stop()


def faults(device: Device) -> list:
    """Events that must never happen: the outside interface left without an ACL, an ACL
    deleted while bound, a binding to an ACL that does not exist, a simulator fault."""
    bad = ("-> None", "WHILE BOUND", "(no such ACL)", "SIMULATOR ERROR", "WHILE A CHANGE WAITS")
    return [what for dummy, what in device.events if any(mark in what for mark in bad)]


def session_with(device: Device, command: str) -> list:
    """The one SSH session that sent ``command``."""
    found = [session for session in device.sessions if command in session]
    assert len(found) == 1, (command, device.sessions)
    return found[0]


def sent(device: Device) -> list:
    """Every command, in the order sent (SSH sessions follow one another)."""
    return [command for session in device.sessions for command in session]


def configuring(session: list) -> list:
    return [c for c in session if c.startswith("configure") or c.startswith("no ") or c == "end"]


def test_confirmed_over_a_new_connection_then_nothing_to_do_then_the_next_generation(tmp_path, router):
    device = router()
    before = device.state()

    # Check mode: read, render, check; nothing is configured.
    result = run(tmp_path, device, check=True)
    assert result.returncode == 0, result.stdout[-4000:]
    assert not any(configuring(s) for s in device.sessions) and device.state() == before
    # The ACLs are read from the running configuration by the collection's reader, not by
    # cisco.ios.ios_acls gathered (which also lists 'show access-lists'), before the bindings.
    shown = [c for c in sent(device) if c.startswith("show ")]
    read = shown[:shown.index("show running-config | include ^interface|ip access-group|ipv6 traffic-filter")]
    assert "show running-config | section access-list" in read and "show access-lists | include access list" not in read, read

    # First apply: generation 1 under the revert timer, rebound by replacement, confirmed
    # over a second SSH session, and the plain-named ACLs deleted only after that.
    device.sessions.clear()
    result = run(tmp_path, device)
    assert result.returncode == 0, result.stdout[-4000:]
    change, confirm = session_with(device, "configure terminal revert timer 1"), session_with(device, "configure confirm")
    assert device.sessions.index(confirm) > device.sessions.index(change), "confirmed over a later SSH session than the change"
    timer = change.index("configure terminal revert timer 1")
    # the object groups the new generation names, then its ACLs
    first_acl = change.index(f"ip access-list extended {GEN[1]['ipv4']}")
    assert change[timer + 1].startswith(f"object-group network {GEN[1]['ipv4']}-") and f"ipv6 access-list {GEN[1]['ipv6']}" in change
    assert all(line.startswith("object-group ") or not line.startswith(("ip ", "ipv6 ", "interface ")) for line in change[timer + 1:first_acl])
    assert change[-4:] == [f"interface {OUTSIDE}", f"ip access-group {GEN[1]['ipv4']} out", f"ipv6 traffic-filter {GEN[1]['ipv6']} out", "end"]
    assert "configure confirm" not in change
    assert confirm.index("show archive config rollback timer") < confirm.index("configure confirm")
    later = sent(device)[sent(device).index("configure confirm"):]
    assert configuring(later) == ["configure confirm", "configure terminal", f"no ip access-list extended {PLAIN['ipv4']}",
                                  f"no ipv6 access-list {PLAIN['ipv6']}", "end"]
    assert later[-1] == "copy running-config startup-config"  # saved last, once confirmed and cleaned up
    state = device.state()
    assert device.saved == state
    assert state["bound"][OUTSIDE] == {("ipv4", "out"): GEN[1]["ipv4"], ("ipv6", "out"): GEN[1]["ipv6"]}
    assert state["bound"][INSIDE] == before["bound"][INSIDE] and state["acls"]["MGMT-IN"] == before["acls"]["MGMT-IN"]
    assert set(state["acls"]) == {"MGMT-IN", GEN[1]["ipv4"], GEN[1]["ipv6"]}
    assert state["groups"] and all(name.startswith((GEN[1]["ipv4"] + "-", GEN[1]["ipv6"] + "-")) for name in state["groups"])
    assert device.pending is None and faults(device) == []
    assert "confirmed" in [what for dummy, what in device.events]

    # Second apply, same policy: the live generation holds it; nothing is configured.
    device.sessions.clear()
    result = run(tmp_path, device)
    assert result.returncode == 0 and "changed=0" in result.stdout, result.stdout[-4000:]
    assert not any(configuring(s) for s in device.sessions) and device.state() == state

    # A changed policy: generation 2, and generation 1 deleted after the confirmation.
    device.sessions.clear()
    result = run(tmp_path, device, never_leave=["203.0.113.128/25"])
    assert result.returncode == 0, result.stdout[-4000:]
    after = device.state()
    assert after["bound"][OUTSIDE] == {("ipv4", "out"): GEN[2]["ipv4"], ("ipv6", "out"): GEN[2]["ipv6"]}
    assert set(after["acls"]) == {"MGMT-IN", GEN[2]["ipv4"], GEN[2]["ipv6"]}
    assert any(line == " 203.0.113.128 255.255.255.128" for group in after["groups"].values() for line in group["lines"])
    assert sent(device).index("configure confirm") < sent(device).index(f"no ip access-list extended {GEN[1]['ipv4']}")
    # generation 1's object groups go once no ACL names them, and nothing else does
    assert after["groups"] and all(name.startswith((GEN[2]["ipv4"] + "-", GEN[2]["ipv6"] + "-")) for name in after["groups"])
    gone = [line for line in sent(device) if line.startswith("no object-group ")]
    assert {line.split()[-1] for line in gone} == set(state["groups"])
    assert min(sent(device).index(line) for line in gone) > sent(device).index(f"no ipv6 access-list {GEN[1]['ipv6']}")
    assert faults(device) == []


def test_an_acl_of_the_collection_the_reader_cannot_read_stops_the_run_before_any_change(tmp_path, router):
    """A line of the collection's ACLs on the router that the strict reader does not read
    whole (here a source port) stops the run, naming the line; it is never read as an ACL
    without that entry, nor as no ACL. Other people's ACLs are not read."""
    device = router()
    device.acls[PLAIN["ipv4"]]["lines"].insert(1, " 15 permit tcp any eq 80 any")
    device.acls["MGMT-IN"]["lines"].append(" 30 permit udp any eq 53 any log-input")
    before = device.state()
    result = run(tmp_path, device)
    output = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "read_acls: line 7 of the router's 'show running-config | section access-list' ('15 permit tcp any eq 80 any')" in output, output[-3000:]
    assert not any(configuring(s) for s in device.sessions) and device.state() == before and device.pending is None


def test_a_router_that_cannot_be_reached_again_rolls_back_by_itself(tmp_path, router):
    """The change cuts the management path: a new SSH login is refused while the timer runs.
    The run fails saying the router rolls back by itself; the timer (a minute lasting 10 s
    here: the refused login comes 2-3 s after the change) restores exactly the configuration
    from before, and logins work again."""
    device = router(minute=10)
    device.refuse_while_pending = True
    before = device.state()
    result = run(tmp_path, device)
    failed_at = time.monotonic()
    assert result.returncode != 0
    assert "the new ACLs were NOT confirmed (Reach the router over a new connection" in result.stdout, result.stdout[-4000:]
    assert "The device rolls the change back by itself 60 s after it was made" in result.stdout
    change = session_with(device, "configure terminal revert timer 1")
    assert change is device.sessions[-1] and not any("configure confirm" in session for session in device.sessions) and device.saved is None
    armed = next(t for t, what in device.events if what.startswith("revert timer armed"))
    deadline = time.monotonic() + 30
    while device.pending is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    rolled = next(t for t, what in device.events if what.startswith("rolled back"))
    assert device.state() == before, "the router holds exactly what it held before the run"
    assert 9 <= rolled - armed <= 11
    print(f"\nrolled back {rolled - armed:.1f} s after the change (timer 10 s), {time.monotonic() - failed_at:.1f} s after the run failed")
    # Reachable again: the next run gets in, and (the policy unchanged) applies it again.
    device.refuse_while_pending, device.minute = False, 60.0
    device.sessions.clear()
    again = run(tmp_path, device)
    assert again.returncode == 0, again.stdout[-4000:]
    assert device.state()["bound"][OUTSIDE] == {("ipv4", "out"): GEN[1]["ipv4"], ("ipv6", "out"): GEN[1]["ipv6"]}


def test_a_confirmation_after_the_rollback_fails_clearly(tmp_path, router):
    """The timer ends between the change and the new connection: the router no longer waits,
    and the role neither confirms nor deletes anything."""
    device = router()
    device.expire_on_disconnect = True
    before = device.state()
    result = run(tmp_path, device)
    assert result.returncode != 0
    assert "NOT confirmed (Stop if the device no longer waits for this confirmation: the device no longer waits" in result.stdout, result.stdout[-4000:]
    assert "configure confirm" not in sent(device) and not any(c.startswith("no ") for c in sent(device))
    assert device.state() == before and faults(device) == []


def test_a_change_already_waiting_for_confirmation_is_not_stacked(tmp_path, router):
    device = router()
    device.arm(5)  # someone else's change, still waiting
    before = device.pending["snapshot"]
    result = run(tmp_path, device)
    assert result.returncode != 0
    assert "Existing rollback change already pending" in result.stdout, result.stdout[-4000:]
    assert not any(c.startswith("configure terminal") for s in device.sessions for c in s)
    assert device.state() == before and device.pending is not None


def test_a_bad_timeout_stops_the_run_before_the_router_is_reached(tmp_path, router):
    device = router()
    result = run(tmp_path, device, network_acl_confirm_timeout=9000)
    assert result.returncode != 0
    assert "network_acl_confirm_timeout: 9000 is above the 7200 seconds ios allows" in result.stdout, result.stdout[-3000:]
    assert device.sessions == []


@pytest.mark.parametrize("value, message", [
    (0, "network_acl_parse_lines: 0 is not a positive whole number of entries"),
    (-5, "network_acl_parse_lines: -5 is not a positive whole number of entries"),
    (True, "network_acl_parse_lines: true is not a positive whole number of entries"),
    ("12x", "argument 'network_acl_parse_lines' is of type str and we were unable to convert to int"),  # the role's argument_specs
])
def test_a_bad_parse_sample_size_stops_the_run_before_the_router_is_reached(tmp_path, router, value, message):
    device = router()
    result = run(tmp_path, device, network_acl_parse_lines=value)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert device.sessions == []


def test_a_parse_sample_size_given_as_text_counts(tmp_path, router):
    """-e network_acl_parse_lines=30 arrives as text; render mode reaches no router."""
    device = router()
    result = run(tmp_path, device, network_acl_parse_lines="30", network_acl_mode="render", network_acl_render_dir=str(tmp_path / "acls"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "flows decided as the policy decides them" in result.stdout
    assert device.sessions == []


def test_acls_larger_than_the_device_holds_stop_the_run_before_the_router_is_reached(tmp_path, router):
    device = router()
    result = run(tmp_path, device, network_acl_max_entries=5)
    output = " ".join(result.stdout.split())  # the yaml result format folds long lines
    assert result.returncode != 0
    assert "the ios ACLs would hold" in output and "more than the 5 the device is taken to hold" in output, output[-3000:]
    assert "network_acl_max_entries" in output and "egress_segments" in output
    assert device.sessions == []
    # within the limit, render mode says how many entries against which limit
    result = run(tmp_path, device, network_acl_max_entries="500", network_acl_mode="render", network_acl_render_dir=str(tmp_path / "acls"))
    output = " ".join(result.stdout.split())
    assert result.returncode == 0, output[-3000:]
    assert "of the 500 the device is taken to hold (network_acl_max_entries)" in output
