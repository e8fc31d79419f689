"""Reading back an IOS router's ACLs in the network_acl role's apply mode, old path against
new, on a simulated router (tests/unit/network/fake_ios.py, over SSH, with the real cisco.ios
modules, cliconf and network_cli) holding the collection's ACLs with N entries in all:

* old: ``cisco.ios.ios_acls`` ``state: gathered`` (what the role ran before 0.5.0's change);
* new: ``cisco.ios.ios_command`` ``show running-config | section access-list`` and the
  collection's strict reader (``warden.egress.network_acl_step`` ``step: read_acls``), as
  ``roles/network_acl/tasks/ios_gather.yml`` runs them.

Both run in one ansible-playbook each, after a ``show version`` that opens the connection; the
time is that of the read tasks alone (timestamps taken in the play), and the wall time of
the whole run. Both readings are then held to each other: the collection's ACLs, read as the
role's plan reads them (``read_ios``), must be the same.

    nice python3 benchmarks/ios_readback.py --entries 1000,5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "unit", "network"))
sys.path.insert(0, os.path.join(TOP, ".build", "collections"))

from fake_ios import Device  # noqa: E402
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import read_ios  # noqa: E402

PORTS = ["www", "443", "domain", "smtp", "22", "8080"]
READS = {
    "old": [{"name": "Read the ACLs (cisco.ios.ios_acls, gathered)", "cisco.ios.ios_acls": {"state": "gathered"}, "register": "read"}],
    "new": [{"name": "Read the running configuration", "cisco.ios.ios_command": {"commands": ["show running-config | section access-list"]},
             "register": "running"},
            {"name": "Read the collection's ACLs in it", "warden.egress.network_acl_step": {"step": "read_acls", "text": "{{ running.stdout[0] }}"},
             "register": "read"}],
}


def acl_lines(entries: int) -> dict:
    """The collection's generation 1, ``entries`` entries in all (three fifths IPv4), in the
    shapes the role renders: object groups, hosts, prefixes, ports and ranges, replies, logged
    denies, a remark heading each block of IPv4 entries."""
    v4, v6 = [], []
    count4 = entries * 3 // 5
    for index in range(count4):
        seq, port, host = (index + 1) * 10, PORTS[index % len(PORTS)], f"203.0.{index // 250 % 250}.{index % 250 + 1}"
        if index % 8 == 0:
            v4.append(f" {seq} remark role-{index // 8:04d}")
        shape = index % 5
        if shape == 0:
            v4.append(f" {seq} permit tcp object-group WARDEN-EGRESS-V4-1-{index:010X} host {host} eq {port}")
        elif shape == 1:
            v4.append(f" {seq} permit udp 198.51.100.0 0.0.0.127 object-group WARDEN-EGRESS-V4-1-{index:010X} eq domain")
        elif shape == 2:
            v4.append(f" {seq} permit tcp host 198.51.100.{index % 120 + 1} 203.0.113.0 0.0.0.255 range 8000 8080")
        elif shape == 3:
            v4.append(f" {seq} deny ip any 10.{index % 250}.0.0 0.0.255.255 log")
        else:
            v4.append(f" {seq} permit tcp 198.51.100.0 0.0.0.127 any established")
    for index in range(entries - count4):
        seq, port = (index + 1) * 10, PORTS[index % len(PORTS)]
        shape = index % 3
        if shape == 0:
            v6.append(f" sequence {seq} permit tcp 2001:db8:10::/120 host 2001:db8:5100::{index:x} eq {port}")
        elif shape == 1:
            v6.append(f" sequence {seq} permit udp object-group WARDEN-EGRESS-V6-1-{index:010X} 2001:db8:{index:x}::/48 eq domain")
        else:
            v6.append(f" sequence {seq} deny ipv6 any 2001:db8:{index:x}::/48 log")
    return {"ipv4": v4, "ipv6": v6}


def router(entries: int) -> Device:
    device = Device(interfaces=("GigabitEthernet0/0", "GigabitEthernet0/1"))
    lines = acl_lines(entries)
    device.acls = {
        "MGMT-IN": {"afi": "ipv4", "lines": [" 10 permit tcp 192.0.2.0 0.0.0.255 any eq 22", " 20 deny ip any any log"]},
        "WARDEN-EGRESS-V4-1": {"afi": "ipv4", "lines": lines["ipv4"]},
        "WARDEN-EGRESS-V6-1": {"afi": "ipv6", "lines": lines["ipv6"]},
    }
    device.bound = {"GigabitEthernet0/0": {("ipv4", "in"): "MGMT-IN"},
                    "GigabitEthernet0/1": {("ipv4", "out"): "WARDEN-EGRESS-V4-1", ("ipv6", "out"): "WARDEN-EGRESS-V6-1"}}
    return device


def run(work: str, device: Device, path: str, timeout: int) -> dict:
    """One ansible-playbook reading the router by ``path``: its wall time, the read tasks' time, what they read."""
    out = os.path.join(work, f"{path}.json")
    play = [{"name": f"Read back ({path})", "hosts": "edge1", "gather_facts": False, "tasks": [
        {"name": "Open the connection", "cisco.ios.ios_command": {"commands": ["show version"]}},
        {"name": "Start", "ansible.builtin.set_fact": {"started": "{{ now().timestamp() }}"}},
        *READS[path],
        {"name": "Stop", "ansible.builtin.set_fact": {"stopped": "{{ now().timestamp() }}"}},
        {"name": "Write what was read", "ansible.builtin.copy": {
            "content": "{{ {'seconds': stopped | float - started | float, 'acls': read.gathered} | to_json }}", "dest": out, "mode": "0600"},
         "delegate_to": "localhost"},
    ]}]
    inventory = {"all": {"hosts": {"edge1": {
        "ansible_host": "127.0.0.1", "ansible_port": device.port, "ansible_user": "netops", "ansible_password": "lab",
        "ansible_connection": "ansible.netcommon.network_cli", "ansible_network_os": "cisco.ios.ios", "ansible_network_cli_ssh_type": "paramiko",
        "ansible_buffer_read_timeout": 0.01, "ansible_command_timeout": timeout, "ansible_connect_timeout": 60,
        "ansible_python_interpreter": sys.executable}}}}
    with open(os.path.join(work, f"{path}.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle, sort_keys=False)
    with open(os.path.join(work, "hosts.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_HOST_KEY_CHECKING": "false",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "false", "ANSIBLE_LOCAL_TEMP": os.path.join(work, "ansible-local"),
           "ANSIBLE_PERSISTENT_COMMAND_TIMEOUT": str(timeout)}
    start = time.monotonic()
    try:
        result = subprocess.run(["ansible-playbook", "-i", os.path.join(work, "hosts.yml"), os.path.join(work, f"{path}.yml")],
                                capture_output=True, text=True, env=env, cwd=work, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": f"did not finish in {timeout} s"}
    wall = time.monotonic() - start
    if result.returncode != 0:
        return {"status": "failed", "output": result.stdout[-3000:]}
    with open(out, encoding="utf-8") as handle:
        data = json.load(handle)
    return {"status": "ok", "wall": wall, "read": data["seconds"], "acls": data["acls"]}


def ours(acls: list) -> dict:
    """The collection's ACLs, as the plan reads them."""
    return {key: entries for key, entries in read_ios(acls).items() if key[1].startswith("WARDEN-EGRESS-")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--entries", default="1000,5000", help="comma-separated entry counts (default 1000,5000)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds one ansible-playbook may take")
    parser.add_argument("--skip-old", default=0, type=int, help="do not run the old path above this many entries (0: always run it)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", file=sys.stderr)
    rows = []
    for entries in [int(n) for n in args.entries.split(",")]:
        device = router(entries)
        device.port = device.serve()
        try:
            with tempfile.TemporaryDirectory(prefix="ios-readback-") as work:
                results = {}
                for path in ("new", "old"):
                    if path == "old" and args.skip_old and entries > args.skip_old:
                        results[path] = {"status": "not run"}
                        continue
                    results[path] = run(work, device, path, args.timeout)
                    shown = f"{results[path]['read']:.2f} s (wall {results[path]['wall']:.1f} s)" if results[path]["status"] == "ok" \
                        else results[path]["status"]
                    print(f"{entries} entries, {path}: {shown}", file=sys.stderr)
                    if results[path]["status"] == "failed":
                        print(results[path]["output"], file=sys.stderr)
        finally:
            device.stop()
        new, old = results["new"], results["old"]
        same = "-"
        if new["status"] == old["status"] == "ok":
            same = "yes" if ours(new["acls"]) == ours(old["acls"]) else "NO"
        held = sum(len(entries) for entries in ours(new["acls"]).values()) if new["status"] == "ok" else "-"

        def show(result):
            return f"{result['read']:.2f} s" if result["status"] == "ok" else result["status"]

        ratio = f"{old['read'] / new['read']:.0f}x" if new["status"] == old["status"] == "ok" else "-"
        rows.append(f"| {entries:,} | {held:,} | {show(old)} | {show(new)} | {ratio} | {same} |" if isinstance(held, int)
                    else f"| {entries:,} | - | {show(old)} | {show(new)} | {ratio} | {same} |")
    print("| entries on the router | entries read (new) | old: ios_acls gathered | new: ios_command + read_acls | old / new | same ACLs read |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(f"load average at end: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
