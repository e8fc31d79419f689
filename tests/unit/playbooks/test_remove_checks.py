"""playbooks/remove.yml, its first play (the checks before any host is touched), on inventories
as users write them: egress_platform left unset means nftables; a router or an unknown
platform stops the run naming the value. Only the plays' always-tagged tasks run (--tags
always): no host is contacted (the addresses are documentation addresses)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def remove_checks(tmp_path, hosts: dict) -> tuple[int, str]:
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", HOME=str(tmp_path))
    result = subprocess.run(["ansible-playbook", "warden.egress.remove", "-i", str(tmp_path / "hosts.yml"), "--tags", "always"],
                            capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def test_a_host_that_leaves_egress_platform_unset_is_taken_off_as_nftables(tmp_path):
    rc, out = remove_checks(tmp_path, {"web1": {"ansible_host": "192.0.2.10", "egress_role": "web_server"}})
    assert rc == 0, out[-3000:]
    assert "is undefined" not in out
    assert re.search(r"web1 : ok=\d+ changed=0 unreachable=0 failed=0", out), out[-3000:]
    # grouped as nftables: the Linux play has the host, the pf play none
    linux = out.split("PLAY [Take the egress policy off Linux hosts")[1].split("PLAY [")[0]
    assert "no hosts matched" not in linux, out[-3000:]
    assert "no hosts matched" in out.split("PLAY [Take the egress policy off pf boxes")[1]


@pytest.mark.parametrize(("platform", "message"), [
    ("ios", "web1 is a router (egress_platform ios); this playbook does not take ACLs off a device"),
    ("bsd", "egress_platform: 'bsd' on web1 is not nftables, iptables, pf, ios, eos or junos"),
])
def test_a_router_or_an_unknown_platform_stops_the_run_naming_it(tmp_path, platform, message):
    rc, out = remove_checks(tmp_path, {"web1": {"ansible_host": "192.0.2.10", "egress_role": "web_server", "egress_platform": platform}})
    assert rc != 0
    # ansible-core 2.17's output quotes the message as YAML (a quote doubled inside quotes)
    assert message in out.replace("''", "'"), out[-3000:]
