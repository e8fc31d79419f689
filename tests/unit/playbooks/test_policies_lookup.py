"""warden.egress.policies under ansible-playbook: compiled here it returns what the policy and
edge_policy filters compile; read from a site compile directory, what the file holds, whose
text is never templated on its way through set_fact and on to a later task."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
EDGE = {"inside": [{"interface": "eth0", "prefixes": ["198.51.100.0/25"]}], "outside": "eth1"}
INVENTORY = {"all": {
    "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
             "egress_trusted_prefixes": ["198.51.100.0/25"],
             "egress_upstreams": {"smtp_relays": ["203.0.113.25"], "internal_resolvers": ["203.0.113.53"]}},
    "hosts": {"mail1": {"egress_role": "mail_server", "egress_addresses": ["198.51.100.11"]},
              "gw1": {"egress_edge": EDGE, "ansible_host": "198.51.100.1"},
              "both1": {"egress_role": "isolated", "egress_edge": EDGE, "egress_addresses": ["198.51.100.20"]}},
}}
PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: The policies, as the roles get them
      ansible.builtin.set_fact:
        __policies: "{{ query('warden.egress.policies', inventory_hostname, site_dir=egress_site_dir | default('')) }}"
        __gateway: "{{ lookup('warden.egress.policies', 'gw1', kind='edge', site_dir=egress_site_dir | default('')) }}"
    - name: Handed on, as a role hands them to its next task
      ansible.builtin.set_fact:
        __again: "{{ __policies }}"
    - name: Write them
      ansible.builtin.copy:
        content: "{{ {'policies': __again, 'gateway': __gateway} | to_json }}"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
    - name: The same as the filters compile
      ansible.builtin.copy:
        content: >-
          {{ {'policies': ([hostvars | warden.egress.policy(target=inventory_hostname, groups=groups)] if egress_role is defined else [])
                           + ([hostvars | warden.egress.edge_policy(target=inventory_hostname, groups=groups)] if egress_edge is defined else []),
              'gateway': hostvars | warden.egress.edge_policy(target='gw1', groups=groups)} | to_json }}
        dest: "{{ out_dir }}/{{ inventory_hostname }}.filters.json"
        mode: "0600"
      delegate_to: localhost
      when: egress_site_dir is not defined
"""


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(INVENTORY))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "out").mkdir(exist_ok=True)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"))
    return subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"),
                           "-e", f"out_dir={tmp_path / 'out'}", *args],
                          capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))


def read(tmp_path, name: str) -> dict:
    return json.loads((tmp_path / "out" / f"{name}.json").read_text())


def test_compiled_here_as_the_filters_compile(tmp_path):
    result = run(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    for host, kinds in (("mail1", ["host"]), ("gw1", ["edge"]), ("both1", ["host", "edge"])):
        got = read(tmp_path, host)
        assert got == read(tmp_path, f"{host}.filters")
        assert [ir["kind"] for ir in got["policies"]] == kinds and got["gateway"]["target"] == "gw1"


def test_read_from_the_site_directory_and_never_templated(tmp_path):
    result = run(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    site = tmp_path / "site"
    site.mkdir()
    marks = "{{ 6 * 7 }} {% if true %}x{% endif %} {{ lookup('ansible.builtin.env', 'HOME') }}"
    for host in ("mail1", "gw1", "both1"):
        irs = read(tmp_path, host)["policies"]
        irs[0]["rules"][0]["comment"] = marks
        (site / f"{host}.json").write_text(json.dumps(irs))
    result = run(tmp_path, "-e", f"egress_site_dir={site}")
    assert result.returncode == 0, result.stdout[-3000:]
    for host in ("mail1", "gw1", "both1"):
        got = read(tmp_path, host)
        assert got["policies"] == json.loads((site / f"{host}.json").read_text())
        assert got["policies"][0]["rules"][0]["comment"] == marks
        assert got["gateway"]["rules"][0]["comment"] == marks


def test_a_file_of_another_host_stops_the_play(tmp_path):
    result = run(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    site = tmp_path / "site"
    site.mkdir()
    for host in ("mail1", "gw1", "both1"):
        (site / f"{host}.json").write_text(json.dumps(read(tmp_path, "gw1" if host == "mail1" else host)["policies"]))
    result = run(tmp_path, "-e", f"egress_site_dir={site}", "--limit", "mail1")
    assert result.returncode != 0
    assert f"warden.egress.policies: {site}/mail1.json: [0] is the edge policy of 'gw1', not of 'mail1'" in result.stdout, result.stdout[-3000:]
