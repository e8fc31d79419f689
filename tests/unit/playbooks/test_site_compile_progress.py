"""warden.egress.site_compile says how far it is on a large site: a count every so many hosts
(or seconds), at normal verbosity, and nothing on a small site."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import PROGRESS_EVERY, PROGRESS_MIN_TARGETS

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(TOP, "benchmarks"))
from sitegen import generate  # noqa: E402

PLAYBOOK = """
- name: Compile the site
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Compile
      warden.egress.site_compile:
        dest: "{{ dest }}"
"""


def compile_generated(tmp_path, hosts: int) -> tuple[int, str]:
    """The site compile of a generated site of ``hosts`` hosts (site-wide variables in
    group_vars/all.yml), its exit code and its output."""
    site = generate(hosts, roles=5, prefixes=40)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "ansible_connection": "containers.podman.podman", "ansible_host": "warden-test-does-not-exist", **site["variables"]}))
    inventory = {"all": {
        "hosts": {h: {"egress_role": site["host_roles"][h], "egress_addresses": site["addresses"][h]} for h in site["addresses"]},
        "children": {g: {"hosts": {h: None for h in members}} for g, members in site["groups"].items() if members},
    }}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "compile.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0")
    result = subprocess.run(["ansible-playbook", "-i", "hosts.yml", "compile.yml", "-e", f"dest={tmp_path / 'out'}"],
                            capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    return result.returncode, result.stdout + result.stderr


def test_a_large_site_prints_a_count_per_batch(tmp_path):
    hosts = PROGRESS_MIN_TARGETS + PROGRESS_EVERY + 500
    rc, out = compile_generated(tmp_path, hosts)
    assert rc == 0, out[-3000:]
    assert re.search(rf"warden\.egress: compiling {hosts} hosts \(their variables read in \d+ s\)", out), out[-3000:]
    counts = [int(m.group(1)) for m in re.finditer(rf"warden\.egress: compiled (\d+)/{hosts} hosts \(\d+ s\)", out)]
    # every batch of PROGRESS_EVERY, and the end; lines for time alone may come in between on a slow machine
    assert {PROGRESS_EVERY, 2 * PROGRESS_EVERY, hosts} <= set(counts), out[-3000:]
    assert counts == sorted(counts) and counts[-1] == hosts
    assert len(counts) < hosts / 100  # a count per batch, not a line per host


def test_a_small_site_prints_no_progress(tmp_path):
    rc, out = compile_generated(tmp_path, 50)
    assert rc == 0, out[-3000:]
    assert "warden.egress: compil" not in out
