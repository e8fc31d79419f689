"""playbooks/site.yml stops on a bad inventory value before it touches any host.

The hosts point at containers that do not exist: had the play tried to reach one, the
run would end 'unreachable' rather than with the compiler's message."""

from __future__ import annotations

import datetime
import os
import subprocess

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def site(relay: str = "203.0.113.26") -> dict:
    return {
        "egress_trusted_prefixes": ["198.51.100.0/25"],
        "egress_upstreams": {"smtp_relays": ["203.0.113.25", relay], "internal_resolvers": ["203.0.113.53"]},
    }


def run_site(tmp_path, site_vars: dict, host_vars: dict | None = None, extra_hosts: dict | None = None) -> subprocess.CompletedProcess:
    inventory = {"all": {
        "vars": {"ansible_connection": "containers.podman.podman", "ansible_host": "warden-test-does-not-exist", **site_vars},
        "hosts": {
            "mail1": {"egress_role": "mail_server", "egress_addresses": ["198.51.100.11"], **(host_vars or {})},
            "ws1": {"egress_role": "isolated"},
            **(extra_hosts or {}),
        },
    }}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(
        ["ansible-playbook", "-i", str(path), os.path.join(TOP, "playbooks", "site.yml")],
        capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path),
    )


@pytest.mark.parametrize(("site_vars", "host_vars", "extra_hosts", "message"), [
    (site(relay="198.51.100.300"), {}, {}, "egress_upstreams.smtp_relays[1]: '198.51.100.300' is not an IP address or prefix"),
    (site(), {"egress_role": "mailserver"}, {}, "egress_role: 'mailserver' is not a known role"),
    (site(), {"egress_platform": "junos"}, {}, "egress_role: 'mail_server' is for hosts; egress_platform junos enforces only a site edge"),
    (site(), {}, {"edge1": {"egress_platform": "ios", "egress_edge": {
        "inside": [{"interface": "Gi0/0", "prefixes": ["198.51.100.0/26"]}, {"interface": "Gi0/2", "prefixes": ["198.51.100.64/26"]}],
        "outside": "Gi0/1"}}},
     "egress_edge.inside: ['Gi0/0', 'Gi0/2'] must be one interface for egress_platform ios"),
], ids=["bad-address", "unknown-role", "router-with-a-host-role", "router-with-two-inside-interfaces"])
def test_bad_value_stops_before_any_host_is_touched(tmp_path, site_vars, host_vars, extra_hosts, message):
    result = run_site(tmp_path, site_vars, host_vars, extra_hosts)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    assert "unreachable=1" not in output and "UNREACHABLE" not in output
    assert "Egress policy on Linux hosts" not in output


def test_control_a_good_inventory_does_try_to_reach_the_hosts(tmp_path):
    """The same run with good values gets as far as the hosts (and finds them missing)."""
    result = run_site(tmp_path, site())
    output = result.stdout + result.stderr
    assert "Egress policy on Linux hosts" in output
    assert "UNREACHABLE" in output or "unreachable=1" in output


def test_expiring_and_expired_exceptions_are_reported_before_any_host_is_touched(tmp_path):
    soon = (datetime.date.today() + datetime.timedelta(days=3)).isoformat()
    exceptions = [
        {"hosts": ["mail1"], "service": "https", "to": ["203.0.113.80"], "reason": "portal", "owner": "finance-it", "expires": "2020-01-01"},
        {"hosts": ["mail1"], "service": "https", "to": ["203.0.113.81"], "reason": "vendor", "owner": "ops-team", "expires": soon},
    ]
    result = run_site(tmp_path, {**site(), "egress_exceptions": exceptions})
    output = " ".join((result.stdout + result.stderr).split())  # the yaml result format folds long lines
    expired = output.find("egress_exceptions[0] (https for mail1) on mail1 expired on 2020-01-01 and is not applied; owner finance-it")
    expiring = output.find(f"egress_exceptions[1] (https for mail1) on mail1 expires on {soon}, in 3 days; owner ops-team")
    hosts_play = output.find("Egress policy on Linux hosts")
    assert -1 < expired < hosts_play and -1 < expiring < hosts_play, output[-3000:]
