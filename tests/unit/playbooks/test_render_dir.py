"""network_acl in render mode writes its review files beside the user's inventory, or in
the current directory when no inventory file defines the router; never beside the playbook
(which, run as warden.egress.site, is inside the installed collection). site.yml runs for
real: the vendor's module renders offline and no device is contacted."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROUTER = {
    "egress_platform": "ios", "network_acl_mode": "render", "network_acl_check_flows": 200,
    "ansible_connection": "ansible.netcommon.network_cli", "ansible_network_os": "cisco.ios.ios", "ansible_host": "198.51.100.250",
    "egress_edge": {"inside": [{"interface": "GigabitEthernet0/0", "prefixes": ["198.51.100.0/25"]}],
                    "outside": "GigabitEthernet0/1", "conn_limit": False},
}
SITE = {"egress_trusted_prefixes": ["198.51.100.0/25"], "egress_upstreams": {"smtp_relays": ["203.0.113.25"]}}
FILES = ["edge-ios.acls.txt", "edge-ios.config.yml", "edge-ios.interfaces.txt"]


def run_site(tmp_path, inventory_args: list[str], cwd, *options: str) -> subprocess.CompletedProcess:
    os.makedirs(cwd, exist_ok=True)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_DEPRECATION_WARNINGS": "false", "HOME": str(tmp_path), "PWD": str(cwd),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local")}
    return subprocess.run(["ansible-playbook", *inventory_args, os.path.join(TOP, "playbooks", "site.yml"), *options],
                          capture_output=True, text=True, env=env, check=False, cwd=str(cwd))


@pytest.fixture()
def playbook_dir_untouched():
    """The playbook's directory has no review files before or after (the old default)."""
    old = os.path.join(TOP, "playbooks", "rendered-acls")
    assert not os.path.exists(os.path.join(old, "edge-ios.acls.txt"))
    yield
    assert not os.path.exists(os.path.join(old, "edge-ios.acls.txt")), f"review files written in {old}"


def inventory_tree(tmp_path):
    inventory = tmp_path / "project" / "inventory"
    inventory.mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"vars": SITE, "hosts": {"edge-ios": ROUTER}}}))
    return inventory


def test_review_files_go_beside_an_inventory_file(tmp_path, playbook_dir_untouched):
    inventory = inventory_tree(tmp_path)
    result = run_site(tmp_path, ["-i", str(inventory / "hosts.yml")], tmp_path / "elsewhere")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert sorted(os.listdir(inventory / "rendered-acls")) == FILES
    assert "ip access-list extended" in (inventory / "rendered-acls" / "edge-ios.acls.txt").read_text()
    assert not (tmp_path / "elsewhere" / "rendered-acls").exists()


def test_review_files_go_beside_an_inventory_directory_not_inside_it(tmp_path, playbook_dir_untouched):
    """Inside, Ansible would read them as inventory on the next run (the .txt files with
    the ini plugin, the .yml file as groups)."""
    inventory = inventory_tree(tmp_path)
    result = run_site(tmp_path, ["-i", str(inventory)], tmp_path / "elsewhere")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "project" / "rendered-acls")) == FILES
    assert sorted(os.listdir(inventory)) == ["hosts.yml"]
    # The next run reads the same inventory as the first (reading it is all that is looked at
    # here: --list-hosts reads it as a run does, and says which hosts it found).
    again = run_site(tmp_path, ["-i", str(inventory)], tmp_path / "elsewhere", "--list-hosts")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "not a valid group definition" not in again.stderr and "Failed to parse" not in again.stderr, again.stderr[-2000:]
    assert "    hosts (1):\n      edge-ios\n" in again.stdout, again.stdout[-3000:]


def test_review_files_go_to_the_current_directory_without_an_inventory_file(tmp_path, playbook_dir_untouched):
    variables = tmp_path / "router.yml"
    variables.write_text(yaml.safe_dump({**SITE, **ROUTER}))
    result = run_site(tmp_path, ["-i", "edge-ios,", "-e", f"@{variables}"], tmp_path / "work")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "work" / "rendered-acls")) == FILES


def test_control_an_explicit_directory_still_wins(tmp_path, playbook_dir_untouched):
    inventory = inventory_tree(tmp_path)
    result = run_site(tmp_path, ["-i", str(inventory), "-e", f"network_acl_render_dir={tmp_path / 'review'}"], tmp_path / "elsewhere")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "review")) == FILES
    assert not (inventory / "rendered-acls").exists() and not (tmp_path / "project" / "rendered-acls").exists()
