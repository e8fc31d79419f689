"""warden.egress.site_compile under ansible-playbook: one compile for the run, each host's file
holding exactly what the per-host filters compile, templated values templated, a bad value
failing the task with the host, variable and value."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - warden.egress.site_compile:
        dest: "{{ dest }}"
      run_once: true
      register: site
    - name: Each file holds what the filters compile for its host
      ansible.builtin.assert:
        that: >-
          (lookup('ansible.builtin.file', site.dir ~ '/' ~ inventory_hostname ~ '.json') | from_json)
          == ([hostvars | warden.egress.policy(target=inventory_hostname, groups=groups)] if egress_role is defined else [])
             + ([hostvars | warden.egress.edge_policy(target=inventory_hostname, groups=groups)] if egress_edge is defined else [])
      when: egress_role is defined or egress_edge is defined
    - ansible.builtin.copy:
        content: "{{ site | to_json }}"
        dest: "{{ dest }}/result.json"
        mode: "0600"
      run_once: true
"""


def inventory(tmp_path, mail_address: str = "{{ mail_address_var }}", **site) -> str:
    group_vars = tmp_path / "group_vars"
    group_vars.mkdir(exist_ok=True)
    (group_vars / "all.yml").write_text(yaml.safe_dump({
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "egress_trusted_prefixes": ["198.51.100.0/25", "2001:db8:10::/120"],
        "egress_upstreams": {"smtp_relays": ["203.0.113.25"], "dns_forwarders": ["203.0.113.53"], "internal_resolvers": "group:dns_resolvers"},
        "egress_segments": {"lan": {"prefixes": ["198.51.100.64/28"], "role": "isolated"}},
        **site,
    }))
    hosts = {
        "mail1": {"egress_role": "mail_server", "egress_addresses": [mail_address], "mail_address_var": "198.51.100.11"},
        "ws1": {"egress_role": "isolated", "egress_addresses": ["198.51.100.14"], "egress_verify_flows": [{"dst": "203.0.113.9", "port": 443}]},
        "ws2": {"egress_role": "isolated", "egress_addresses": ["198.51.100.15"], "egress_platform": "iptables"},
        "ws3": {"egress_role": "isolated", "egress_addresses": ["198.51.100.16"]},
        "dns1": {"egress_role": "dns_resolver", "ansible_host": "198.51.100.12", "egress_platform": "pf"},
        "gw1": {"egress_edge": {"inside": [{"interface": "eth0", "prefixes": ["198.51.100.0/25"]}], "outside": "eth1"},
                "egress_verify_flows": []},
        "printer": {"egress_verify_flows": []},
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "children": {"dns_resolvers": {"hosts": {"dns1": None}}}}}))
    return str(path)


def run(tmp_path, inv: str, *options: str) -> subprocess.CompletedProcess:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(["ansible-playbook", "-i", inv, str(playbook), "-e", f"dest={tmp_path / 'site'}", *options],
                          capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))


def test_each_host_reads_what_the_filters_compile(tmp_path):
    result = run(tmp_path, inventory(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    site = json.loads((tmp_path / "site" / "result.json").read_text())
    assert site["targets"] == 6
    written = sorted(os.listdir(site["dir"]))
    assert written == ["dns1.json", "gw1.json", "mail1.json", "ws1.json", "ws2.json", "ws3.json"]
    assert stat.S_IMODE(os.stat(site["dir"]).st_mode) == 0o700
    assert all(stat.S_IMODE(os.stat(os.path.join(site["dir"], f)).st_mode) == 0o600 for f in written)
    mail = json.loads((tmp_path / "site" / os.path.basename(site["dir"]) / "mail1.json").read_text())
    edge = json.loads((tmp_path / "site" / os.path.basename(site["dir"]) / "gw1.json").read_text())[0]
    # The templated address reached the edge as mail1's source.
    assert edge["sets"]["src_mail_server"]["ipv4"] == ["198.51.100.11/32"]
    assert [ir["kind"] for ir in mail] == ["host"]
    # The hosts of site.yml's plays, listed by the compile (no group_by task per host), in
    # inventory order; the canaries are each play's first host per role and platform.
    # (safe_dump sorts the hosts by name: that is the inventory's order here)
    assert site["plays"] == {"linux": ["gw1", "mail1", "ws1", "ws2", "ws3"], "pf": ["dns1"], "routers": [], "verify": ["gw1", "printer", "ws1"]}
    assert site["canaries"] == {"linux": ["gw1", "mail1", "ws1", "ws2"], "pf": ["dns1"], "routers": []}


def test_a_bad_value_fails_the_task_naming_host_variable_and_value(tmp_path):
    result = run(tmp_path, inventory(tmp_path, mail_address="198.51.100.300"))
    assert result.returncode != 0
    assert "warden.egress: edge gw1: hostvars[mail1].egress_addresses[0]: '198.51.100.300' is not an IP address or prefix" in result.stdout
    assert not [d for d in os.listdir(tmp_path / "site") if d.startswith("site-")]


def test_an_inventory_short_of_the_site_compiles_nothing(tmp_path):
    """egress_site_hosts: the hosts the site has. An inventory holding fewer or more (an AWX
    job slice, a dynamic source that failed) compiles nothing; --limit keeps the inventory
    whole, so a limited run compiles."""
    result = run(tmp_path, inventory(tmp_path, egress_site_hosts=8))
    assert result.returncode != 0
    assert "egress_site_hosts: 8 says the site has 8 hosts, but this inventory holds 7" in result.stdout, result.stdout[-3000:]
    assert not [d for d in os.listdir(tmp_path / "site") if d.startswith("site-")]
    result = run(tmp_path, inventory(tmp_path, egress_site_hosts="7"), "--limit", "mail1")
    assert result.returncode == 0, result.stdout[-3000:]
    assert json.loads((tmp_path / "site" / "result.json").read_text())["targets"] == 6


def test_the_dns_settings_reach_the_compile_of_hosts_and_edges(tmp_path):
    """egress_dns is read from the inventory by the site compile and by the filters alike:
    the lifetime of the answered addresses is the inventory's, on the host and the edge."""
    upstreams = {"smtp_relays": ["dns:smtp.example.net"], "dns_forwarders": ["203.0.113.53"], "internal_resolvers": "group:dns_resolvers"}
    result = run(tmp_path, inventory(tmp_path, egress_upstreams=upstreams, egress_dns={"cache_ttl": 30, "grace": 5, "upstream_cache_ttl": 60}))
    assert result.returncode == 0, result.stdout[-3000:]
    site = json.loads((tmp_path / "site" / "result.json").read_text())
    (mail,) = json.loads((tmp_path / "site" / os.path.basename(site["dir"]) / "mail1.json").read_text())
    (edge,) = json.loads((tmp_path / "site" / os.path.basename(site["dir"]) / "gw1.json").read_text())
    assert mail["sets"]["up_smtp_relays"]["names"] == ["smtp.example.net"]
    assert (mail["dns"]["lifetime"], edge["dns"]["lifetime"]) == (35, 95)
