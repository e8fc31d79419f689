"""The verify role in check mode (``--check --diff``) on an inventory as users write it: each
host gives only ansible_host, no egress_addresses. Check mode sends no packet, so the hosts
are local connections and nothing leaves this machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SITE = {
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
    "egress_trusted_prefixes": ["198.51.100.0/25"],
    "egress_upstreams": {"smtp_relays": ["203.0.113.25"], "internal_resolvers": ["198.51.100.12"],
                         "internal_proxies": ["198.51.100.13"]},
}
FLOWS = [
    {"name": "smtp to relay", "dst": "203.0.113.25", "port": 25},
    {"name": "https out", "dst": "203.0.113.80", "port": 443},
    {"name": "smtp in from ws1", "direction": "inbound", "from_host": "ws1", "port": 25},
]


def verify_check(tmp_path) -> tuple[int, str]:
    """Run the role on mail1 with --check --diff; return the exit code and the output with the
    whitespace normalised."""
    inventory = {"all": {"vars": SITE, "hosts": {
        "mail1": {"ansible_host": "198.51.100.11", "egress_role": "mail_server", "egress_verify_flows": FLOWS},
        "ws1": {"ansible_host": "198.51.100.14", "egress_role": "client"},
    }}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Verify", "hosts": "mail1", "gather_facts": False,
        "roles": [{"role": "warden.egress.verify", "vars": {"verify_egress_report_dir": str(tmp_path / "report")}}],
    }]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"))
    result = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"), "--check", "--diff"],
                            capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def test_flows_leave_from_ansible_host_when_egress_addresses_is_unset(tmp_path):
    """egress_addresses defaults to ansible_host, as in the compile: an outbound flow with no
    src is judged from it, and an inbound flow goes to this host's and comes from the other's."""
    rc, out = verify_check(tmp_path)
    assert rc == 0, out[-4000:]
    assert "has no src" not in out and "is needed" not in out
    assert "smtp to relay: tcp/25 to 203.0.113.25, expected allowed (" in out, out[-4000:]
    assert "https out: tcp/443 to 203.0.113.80, expected denied (" in out, out[-4000:]
    assert "smtp in from ws1: tcp/25 to 198.51.100.11, expected " in out, out[-4000:]


def test_check_mode_writes_no_report_and_reports_no_change(tmp_path):
    rc, out = verify_check(tmp_path)
    assert rc == 0, out[-4000:]
    assert not (tmp_path / "report").exists()
    assert re.findall(r"mail1 : ok=\d+ changed=(\d+)", out) == ["0"], out[-4000:]
