"""The roles' side of serves and users, run by ansible-playbook.

* warden.egress.local_users, which the linux and pf roles include: the local users and
  groups a host policy names are looked up on the target (here, this machine) and their
  numbers written in; a name the target does not know stops the play with the inventory path
  that named it. Through the roles themselves: the rules they load carry the numbers (pf, with
  the lab's pfctl stand-in), and a missing name stops the role before anything is rendered.
* The verify role tries a flow as another local user, and an inbound connection from
  another host (its probe delegated there): the host namespace of a pair has the served-
  replies policy loaded and listeners on a served and an unserved port; the 'world' host of
  the inventory runs its modules in the world namespace (its Python interpreter is a wrapper
  that enters it)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time

import pytest
import yaml
from netns import HOST_V4, HOST_V6, Pair, sh
from sample import ADDRESSES, GROUPS, site
from test_remove_pf import pf_stand_in

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ENV = {"ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_FORCE_COLOR": "0"}
ROLE = {
    "serves": [{"service": "smtp"}, {"service": "ssh", "from": ["198.51.100.0/24", "2001:db8:10::/64"]}],
    "allow": [{"service": "smtp", "to": "smtp_relays", "users": ["nobody"]}, {"service": "https", "to": "any", "groups": ["nogroup"]}],
}


def playbook(tmp_path, inventory: dict, plays: list, ns: str | None = None) -> subprocess.CompletedProcess:
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays))
    env = {**ENV, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")}
    return sh("env", *[f"{k}={v}" for k, v in env.items()], "ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"),
              ns=ns, check=False)


@pytest.mark.parametrize("missing", [None, "users", "groups"])
def test_local_users_writes_the_numbers_or_stops(tmp_path, missing):
    roles = {"web_mail": {**ROLE, "allow": [{"service": "smtp", "to": "smtp_relays", "users": ["nobody", "daemon", 7]},
                                            {"service": "dns", "to": "any", "groups": ["nogroup"]}]}}
    if missing == "users":
        roles["web_mail"]["allow"][0]["users"] = ["nobody", "no_such_user_x"]
    elif missing == "groups":
        roles["web_mail"]["allow"][1]["groups"] = ["nogroup", "no_such_group_x"]
    ir = compile_policy(site(egress_roles=roles, egress_role="web_mail", ansible_connection="local"), "mail1", ADDRESSES, GROUPS)
    inventory = {"all": {"hosts": {"mail1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}
    plays = [{"name": "Resolve", "hosts": "mail1", "gather_facts": False, "tasks": [
        {"name": "Resolve", "ansible.builtin.include_role": {"name": "warden.egress.local_users"}, "vars": {"local_users_policies": [ir]}},
        {"name": "Show", "ansible.builtin.copy": {"content": "{{ __local_users_policies | to_json }}", "dest": str(tmp_path / "out.json"),
                                                  "mode": "0644"}},
    ]}]
    result = playbook(tmp_path, inventory, plays)
    output = result.stdout + result.stderr
    if missing == "users":
        assert result.returncode != 0, output
        assert ("warden.egress: host mail1: egress_roles.web_mail.allow[0].users[1]: 'no_such_user_x' is not a local user on mail1 "
                "(getent passwd no_such_user_x found no entry)") in output, output
        assert not (tmp_path / "out.json").exists()
        return
    if missing == "groups":
        assert result.returncode != 0, output
        assert "egress_roles.web_mail.allow[1].groups[1]: 'no_such_group_x' is not a local group on mail1" in output, output
        return
    assert result.returncode == 0, output
    resolved = json.loads((tmp_path / "out.json").read_text())[0]
    assert resolved["local_ids"] == {
        "users": {"daemon": {"id": 1, "path": "egress_roles.web_mail.allow[0].users[1]"},
                  "nobody": {"id": 65534, "path": "egress_roles.web_mail.allow[0].users[0]"}},
        "groups": {"nogroup": {"id": 65534, "path": "egress_roles.web_mail.allow[1].groups[0]"}},
    }


def test_a_missing_user_fails_that_host_alone_in_one_line(tmp_path):
    """mail1 names a user this machine does not have; mail2, in the same play, names users it
    has. mail1 fails at the check, with one line naming the host, the variable and the name
    (not a filter's traceback wrapped in the task's); mail2 goes on to the end of the play."""
    roles = {"web_mail": {**ROLE, "allow": [{"service": "smtp", "to": "smtp_relays", "users": ["nobody", "no_such_user_x"]}]},
             "web": {**ROLE, "allow": [{"service": "smtp", "to": "smtp_relays", "users": ["nobody"]}]}}
    hosts = {}
    for host, name in (("mail1", "web_mail"), ("mail2", "web")):
        ir = compile_policy(site(egress_roles=roles, egress_role=name, ansible_connection="local"), "mail1", ADDRESSES, GROUPS)
        hosts[host] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "__policies": [ir]}
    plays = [{"name": "Resolve", "hosts": "mail1,mail2", "gather_facts": False, "tasks": [
        {"name": "Resolve", "ansible.builtin.include_role": {"name": "warden.egress.local_users"}, "vars": {"local_users_policies": "{{ __policies }}"}},
        {"name": "Show", "ansible.builtin.copy": {"content": "{{ __local_users_policies | to_json }}",
                                                  "dest": str(tmp_path / "{{ inventory_hostname }}.json"), "mode": "0644"}},
    ]}]
    result = playbook(tmp_path, {"all": {"hosts": hosts}}, plays)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert output.count("fatal: ") == 1, output
    # The task result after "=>", as the result format (JSON or YAML, which folds long lines) writes it.
    first, *rest = output.split("fatal: [mail1]: FAILED! => ", 1)[1].split("\n")
    failed = yaml.safe_load("\n".join([first, *itertools.takewhile(lambda line: line.startswith(" "), rest)]))
    message = failed["msg"]
    assert message == ("warden.egress: host mail1: egress_roles.web_mail.allow[0].users[1]: 'no_such_user_x' is not a local user on mail1 "
                       "(getent passwd no_such_user_x found no entry): create it there, or name one that exists, before the rules are loaded")
    assert "Finalization of task args" not in output and "filter plugin" not in output, output
    assert not (tmp_path / "mail1.json").exists()
    resolved = json.loads((tmp_path / "mail2.json").read_text())[0]
    assert resolved["local_ids"]["users"] == {"nobody": {"id": 65534, "path": "egress_roles.web.allow[0].users[0]"}}


USERS_ROLE = {"allow": [{"service": "smtp", "to": "smtp_relays", "users": ["nobody"]}, {"service": "https", "to": "any", "groups": ["nogroup"]}]}


@pytest.mark.parametrize("missing", [False, True], ids=["numbers-loaded", "missing-user-stops"])
@pytest.mark.parametrize("role", ["linux", "pf"])
def test_the_roles_load_the_numbers_or_stop_before_rendering(tmp_path, role, missing):
    """site.yml, the policies read from the site compile: the linux role (in a scratch
    namespace) and the pf role (the lab's pfctl stand-in) load the users' and groups' numbers
    that warden.egress.local_users looked up on this machine; a user it does not have stops
    the role, naming it, before anything is rendered or loaded."""
    roles = {"mailer": json.loads(json.dumps(USERS_ROLE))}
    if missing:
        roles["mailer"]["allow"][0]["users"] = ["nobody", "no_such_user_x"]
    rules = tmp_path / "rules" / ("warden_egress.nft" if role == "linux" else "warden_egress")
    host = {"egress_role": "mailer", "egress_addresses": ADDRESSES["mail1"], "ansible_python_interpreter": sys.executable}
    env = {**ENV, "HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")}
    if role == "linux":
        host.update(egress_table="we_users", linux_egress_rules_file=str(rules), linux_egress_state_dir=str(tmp_path / "state"),
                    linux_egress_install_packages=False, linux_egress_persist=False, linux_egress_confirm_timeout=0)
    else:
        env.update(pf_stand_in(tmp_path))
        (tmp_path / "pf.conf").write_text("set skip on lo\n")
        host.update(egress_platform="pf", pf_egress_os="freebsd", pf_egress_enable=False, pf_egress_pf_conf=str(tmp_path / "pf.conf"),
                    pf_egress_anchor_file=str(rules), pf_egress_state_dir=str(tmp_path / "state"))
    site_vars = {**site(egress_roles=roles, egress_exceptions=[]), "ansible_connection": "local", "egress_site_compile_dir": str(tmp_path / "site")}
    inventory = {"all": {"vars": site_vars,
                         "hosts": {"mail1": host},
                         "children": {group: {"hosts": {h: {"egress_addresses": ADDRESSES[h]} for h in members}}
                                      for group, members in GROUPS.items() if members}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    command = ["env", *[f"{k}={v}" for k, v in env.items()], "ansible-playbook", "-i", str(tmp_path / "hosts.yml"),
               os.path.join(TOP, "playbooks", "site.yml"), "-e", "egress_become=false", "--diff"]
    if role == "linux":
        with Pair() as pair:  # the rules go into a scratch namespace
            result = sh(*command, ns=pair.host, check=False)
    else:
        result = sh(*command, check=False)
    output = result.stdout + result.stderr
    if missing:
        assert result.returncode != 0, output[-4000:]
        assert ("warden.egress: host mail1: egress_roles.mailer.allow[0].users[1]: 'no_such_user_x' is not a local user on mail1 "
                "(getent passwd no_such_user_x found no entry)") in output, output[-4000:]
        assert f"TASK [warden.egress.{role} : Render" not in output and not rules.exists(), output[-4000:]
        return
    assert result.returncode == 0, output[-4000:]
    if role == "linux":  # the ruleset loaded (its diff: the kernel lists a uid alike, loaded by name or number)
        text = output.split("TASK [warden.egress.linux : Load the egress table atomically", 1)[1].split("TASK [", 1)[0]
        assert "meta skuid 65534" in text and "meta skgid 65534" in text and "nobody" not in text, text
    else:
        text = rules.read_text()
        assert "user 65534" in text and "group 65534" in text and "nobody" not in text, text


@pytest.fixture()
def served():
    """The pair with web_mail's policy in the host namespace and listeners on 22, 25 and 4444."""
    with Pair() as pair:
        deadline = time.monotonic() + 5
        while any("tentative" in sh("ip", "-6", "addr", "show", "dev", "eth0", ns=ns).stdout for ns in pair.names):
            assert time.monotonic() < deadline, "IPv6 link-local addresses still tentative after 5 s"
            time.sleep(0.05)
        listener = subprocess.Popen(["ip", "netns", "exec", pair.host, sys.executable, os.path.join(TOP, "lab", "files", "listener.py"),
                                     "--tcp=22,25,4444"])
        try:
            time.sleep(0.5)
            pair.load(compile_policy(site(egress_roles={"web_mail": ROLE}, egress_role="web_mail", ansible_connection="local"),
                                     "mail1", ADDRESSES, GROUPS), "nftables")
            yield pair
        finally:
            listener.kill()
            listener.wait()


FLOWS = [
    {"name": "smtp as nobody", "dst": "203.0.113.25", "port": 25, "user": "nobody"},
    {"name": "smtp as daemon", "dst": "203.0.113.25", "port": 25, "user": "daemon"},
    {"name": "https as daemon in nogroup", "dst": "2001:db8:5100::80", "port": 443, "user": "daemon", "group": "nogroup"},
    {"name": "smtp in", "direction": "inbound", "from_host": "world", "src": "203.0.113.9", "port": 25},
    {"name": "smtp in v6", "direction": "inbound", "from_host": "world", "src": "2001:db8:5100::9", "dst": HOST_V6, "port": 25},
    {"name": "listener in", "direction": "inbound", "from_host": "world", "src": "203.0.113.9", "port": 4444},
    {"name": "ssh in from the Internet", "direction": "inbound", "from_host": "world", "src": "203.0.113.9", "port": 22},
    {"name": "ssh in from the local network", "direction": "inbound", "from_host": "world", "port": 22},
]


def test_verify_role_tries_users_and_inbound_connections(served, tmp_path):
    wrapper = tmp_path / "world-python"
    wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {served.world} {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    report = tmp_path / "report"
    inventory = {"all": {
        "vars": {**site(egress_roles={"web_mail": ROLE}), "ansible_connection": "local"},
        "hosts": {
            "mail1": {"egress_role": "web_mail", "egress_addresses": ADDRESSES["mail1"], "egress_verify_flows": FLOWS,
                      "ansible_python_interpreter": sys.executable},
            "world": {"egress_addresses": ["198.51.100.254", "2001:db8:10::fe"], "ansible_python_interpreter": str(wrapper)},
        },
        "children": {group: {"hosts": {h: {} for h in members}} for group, members in GROUPS.items() if members},
    }}
    for other, addresses in ADDRESSES.items():
        inventory["all"]["hosts"].setdefault(other, {"egress_addresses": addresses})
    plays = [{"name": "Verify", "hosts": "mail1", "gather_facts": False,
              "roles": [{"role": "warden.egress.verify", "vars": {"verify_egress_report_dir": str(report), "verify_egress_timeout": 0.7}}]}]
    result = playbook(tmp_path, inventory, plays, ns=served.host)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = {r["name"]: (r["expect"], r["observed"], r["ok"]) for r in json.loads((report / "egress-report.json").read_text())}
    assert rows == {
        "smtp as nobody": ("allowed", "allowed", True),
        "smtp as daemon": ("denied", "denied", True),
        "https as daemon in nogroup": ("allowed", "allowed", True),
        "smtp in": ("allowed", "allowed", True),
        "smtp in v6": ("allowed", "allowed", True),
        "listener in": ("denied", "denied", True),
        "ssh in from the Internet": ("denied", "denied", True),
        "ssh in from the local network": ("allowed", "allowed", True),
    }, output
    assert HOST_V4 in (report / "egress-report.txt").read_text()
