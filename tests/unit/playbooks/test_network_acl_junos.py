"""network_acl on Junos, apply mode: the filters handed to junos_config are written on the
controller in a private directory (made by mkdtemp: a random name, mode 0700), never at a path another user
of the controller could predict and plant first, and that directory is gone afterwards,
also when the device cannot be reached.

The router's NETCONF port refuses, so the run gets as far as the first device task and no
further; that is what can be shown with no device (molecule/network covers render mode)."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(TOP, "tests", "unit", "network", "junos_apply.yml")
SITE = {
    "egress_trusted_prefixes": ["198.51.100.0/25", "2001:db8:10::/120"],
    "egress_upstreams": {"smtp_relays": ["203.0.113.25", "2001:db8:5100::25"]},
}


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_apply(tmp_path, check: bool) -> tuple[subprocess.CompletedProcess, dict]:
    inventory = {"all": {"vars": SITE, "hosts": {"junos1": {
        "ansible_host": "127.0.0.1", "ansible_port": closed_port(), "ansible_user": "nobody", "ansible_password": "none",
        "ansible_connection": "ansible.netcommon.netconf", "ansible_network_os": "junipernetworks.junos.junos",
        "ansible_connect_timeout": 5, "ansible_command_timeout": 10,
        "egress_platform": "junos", "network_acl_mode": "apply",
        "egress_edge": {"inside": [{"interface": "ge-0/0/0", "prefixes": ["198.51.100.0/25", "2001:db8:10::/120"]}],
                        "outside": "ge-0/0/1", "conn_limit": False},
    }}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    out = tmp_path / "out.json"
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_DEPRECATION_WARNINGS": "false", "ANSIBLE_PYTHON_INTERPRETER": "auto_silent", "ANSIBLE_HOST_KEY_CHECKING": "false",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
           "TMPDIR": str(tmp_path / "controller-tmp")}
    result = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), PLAYBOOK, "-e", f"out_file={out}"] + (["--check"] if check else []),
                            capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result, json.loads(out.read_text())


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check-mode"])
def test_inet6_filter_goes_through_a_private_directory_that_is_removed(tmp_path, check):
    controller_tmp = tmp_path / "controller-tmp"
    controller_tmp.mkdir()
    # What a local user could have planted at the path the role used to write to.
    planted = controller_tmp / "warden-egress-junos1-inet6.xml"
    planted.write_text("<configuration>planted</configuration>\n")
    result, seen = run_apply(tmp_path, check)

    # The run got as far as the device, and no further.
    assert seen["failed_task"] == "Read the router's commit list (junipernetworks.junos.junos_command; read only)", result.stdout[-3000:]
    # The filters were written, as they are loaded, in a directory of its own under the
    # controller's temporary directory ...
    scratch, written = seen["scratch"]["path"], seen["written"]
    assert os.path.dirname(scratch) == str(controller_tmp)
    assert os.path.basename(scratch).startswith("warden-egress-") and os.path.basename(scratch) != "warden-egress-"
    assert written["dest"] == os.path.join(scratch, "filters.xml")
    assert written["mode"] == "0600"
    assert written["checksum"] == seen["expected_sha1"]
    assert written["size"] > 100
    # ... which is gone, with the file in it; the planted file was neither read nor touched.
    assert not os.path.exists(scratch)
    assert sorted(os.listdir(controller_tmp)) == [planted.name]
    assert planted.read_text() == "<configuration>planted</configuration>\n"
