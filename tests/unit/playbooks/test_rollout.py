"""playbooks/site.yml and playbooks/remove.yml run for real on this machine, each "host" of
the inventory a local connection whose rules go into one scratch network namespace (every
host its own table or chains there) and whose files go under the test's directory.

* Batches: by default every Linux host is changed in one batch; with egress_rollout canary
  one host per egress_role on each platform goes first, then the rest; egress_serial sets
  the batch size. A bad rollout value stops the run before any host is touched.
* Privilege: the apply plays become root (egress_become, default true), the compile play
  does not. A become program that records its calls and runs the command shows it.
* Tags: egress_compile runs the compile play only; egress_verify and egress_apply keep it.
* Removal: remove.yml takes every table, chain, set, file and record off again, changes
  nothing on a second run, and refuses a router before touching any host.

One run of site.yml with the default inventory serves every test that reads it (the default
batch, become, and the removal that follows it): the default_run fixture records what each
step left, and its tests share an xdist group (make unit: --dist loadgroup) so that one
worker makes it once."""

from __future__ import annotations

import os
import re
import sys
from types import SimpleNamespace

import pytest
import yaml
from netns import sh

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HOSTS = [("mail1", "mail_server", "nftables"), ("mail2", "mail_server", "nftables"), ("ws1", "isolated", "nftables"),
         ("ws2", "isolated", "nftables"), ("ws3", "isolated", "iptables")]
LOAD = ("Load the egress table atomically", "Load the egress chains and sets atomically")
FAKE_BECOME = """#!/bin/sh
# Records how it was called, then runs the command (as the caller: this is a test).
echo "$*" >> "$(dirname "$0")/become.log"
while [ "$#" -gt 0 ] && [ "$1" != "-u" ]; do shift; done
shift 2
exec "$@"
"""


def inventory(tmp_path, site_vars: dict | None = None, routers: bool = False) -> str:
    hosts = {}
    for number, (name, role, platform) in enumerate(HOSTS):
        base = tmp_path / name
        hosts[name] = {
            "egress_role": role, "egress_platform": platform, "egress_table": f"we_{name}", "egress_addresses": [f"198.51.100.{11 + number}"],
            "linux_egress_rules_file": f"{base}/etc/warden_egress.nft", "linux_egress_state_dir": f"{base}/state",
            "linux_egress_iptables_loader": f"{base}/loader",
        }
    if routers:
        hosts["edge1"] = {"egress_platform": "ios", "ansible_connection": "ansible.netcommon.network_cli", "ansible_network_os": "cisco.ios.ios",
                          "egress_edge": {"inside": [{"interface": "Gi0/0", "prefixes": ["198.51.100.0/25"]}], "outside": "Gi0/1",
                                          "conn_limit": False}}
    become = tmp_path / "become"
    become.write_text(FAKE_BECOME)
    become.chmod(0o755)
    site = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "ansible_become_exe": str(become), "ansible_become_user": "daemon",  # another user, so that become is not skipped
        "egress_trusted_prefixes": ["198.51.100.0/25"],
        "egress_upstreams": {"smtp_relays": ["203.0.113.25"], "dns_forwarders": ["203.0.113.53"], "internal_resolvers": ["198.51.100.53"]},
        "linux_egress_install_packages": False, "linux_egress_confirm_timeout": 0,
        "egress_site_compile_dir": str(tmp_path / "site"),
        **(site_vars or {}),
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"vars": site, "hosts": hosts}}))
    return str(path)


def ansible_playbook(tmp_path, ns: str | None, playbook: str, *args: str):
    env = {"ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_FORCE_COLOR": "0", "HOME": str(tmp_path),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")}
    result = sh("env", *[f"{k}={v}" for k, v in env.items()], "ansible-playbook", "-i", str(tmp_path / "hosts.yml"),
                os.path.join(TOP, "playbooks", playbook), *args, ns=ns, check=False)
    return result, result.stdout + result.stderr


@pytest.fixture()
def namespace():
    name = f"wr{os.getpid()}"
    sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def load_batches(output: str) -> list[list[str]]:
    """The hosts that loaded rules in each batch of the Linux play (each batch prints the
    play's header again), in order."""
    batches, loading = [], False
    for line in output.splitlines():
        if line.startswith("PLAY [Egress policy on Linux hosts"):
            batches.append([])
        elif line.startswith(("PLAY [", "TASK [")):
            loading = line.startswith("TASK [") and any(name in line for name in LOAD)
        elif loading and (match := re.match(r"(changed|ok): \[(\w+)\]", line)):
            batches[-1].append(match.group(2))
    return [sorted(batch) for batch in batches]


def owned(ns: str) -> tuple[list[str], list[str]]:
    """The collection's nftables tables and iptables chains in the namespace (iptables-nft
    keeps its own 'filter' tables, which are not the collection's)."""
    tables = sorted(name for line in sh("nft", "list", "tables", ns=ns).stdout.splitlines() if (name := line.split()[-1]).startswith("we_"))
    chains = sorted(line.split()[1] for line in sh("iptables", "-S", ns=ns).stdout.splitlines() if line.startswith("-N "))
    return tables, chains


def left_on_disk(tmp_path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), tmp_path) for name, dummy, dummy2 in HOSTS
                  for d, dummy3, files in os.walk(tmp_path / name) for f in files) + sorted(
        name for name, dummy, dummy2 in HOSTS if (tmp_path / name / "etc").exists() or (tmp_path / name / "state").exists())


DEFAULT_RUN = pytest.mark.xdist_group("test_rollout-default_run")  # the tests that read default_run: one worker, one run


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """site.yml with the default inventory in a namespace of its own, then remove.yml as the
    removal tests take it: refused with a router in the inventory, run with --limit '!edge1'
    (the router's own way out), and run again on the default inventory. Each step: its exit
    code and output, and what the namespace, the hosts' directories and the become program's
    record held after it."""
    tmp_path = tmp_path_factory.mktemp("default_run")
    ns = f"wd{os.getpid()}"
    sh("ip", "netns", "add", ns)
    steps = {}

    def step(key: str, playbook: str, *args: str) -> None:
        result, output = ansible_playbook(tmp_path, ns, playbook, *args)
        log = tmp_path / "become.log"
        steps[key] = SimpleNamespace(
            returncode=result.returncode, output=output, owned=owned(ns), on_disk=left_on_disk(tmp_path),
            ipsets=sh("ipset", "list", "-n", ns=ns).stdout.strip(),
            ip6_chains=[line for line in sh("ip6tables", "-S", ns=ns).stdout.splitlines() if line.startswith("-N ")],
            become_calls=log.read_text().splitlines() if log.exists() else [])

    try:
        inventory(tmp_path)
        step("site", "site.yml")
        inventory(tmp_path, routers=True)
        step("refused", "remove.yml")
        step("removed", "remove.yml", "--limit", "!edge1")
        inventory(tmp_path)
        step("again", "remove.yml")
        yield steps
    finally:
        sh("ip", "netns", "del", ns, check=False)


@pytest.mark.parametrize(("site_vars", "first", "sizes"), [
    pytest.param({}, ["mail1", "mail2", "ws1", "ws2", "ws3"], [5], marks=DEFAULT_RUN),
    ({"egress_rollout": "canary"}, ["mail1", "ws1", "ws3"], [3, 2]),
    ({"egress_rollout": "canary", "egress_serial": 1}, ["mail1", "ws1", "ws3"], [3, 1, 1]),
    ({"egress_serial": "40%"}, None, [2, 2, 1]),
    ({"egress_serial": "2"}, None, [2, 2, 1]),
], ids=["control-one-batch-by-default", "canary-then-the-rest", "canary-then-one-by-one", "serial-percent", "serial-as-text"])
def test_batches_of_the_linux_play(tmp_path, request, site_vars, first, sizes):
    """The canaries (the first host of each role and platform in inventory order) make the
    first batch; the order of the others within the play is Ansible's (that of the group
    the first play put them in), so only the sizes of their batches are fixed. The default
    inventory's run is default_run's."""
    if site_vars:
        namespace = request.getfixturevalue("namespace")
        inventory(tmp_path, site_vars)
        result, output = ansible_playbook(tmp_path, namespace, "site.yml")
        returncode, loaded = result.returncode, owned(namespace)
    else:
        run = request.getfixturevalue("default_run")["site"]
        returncode, output, loaded = run.returncode, run.output, run.owned
    assert returncode == 0, output[-4000:]
    batches = load_batches(output)
    assert [len(batch) for batch in batches] == sizes, output[-4000:]
    assert sorted(sum(batches, [])) == ["mail1", "mail2", "ws1", "ws2", "ws3"]
    if first:
        assert batches[0] == first
    assert loaded == (["we_mail1", "we_mail2", "we_ws1", "we_ws2"], ["we_ws3-alert", "we_ws3-deny", "we_ws3-output"])


@pytest.mark.parametrize(("site_vars", "message"), [
    ({"egress_rollout": "canaries"}, 'egress_rollout: "canaries" must be all or canary'),
    ({"egress_serial": 0}, "egress_serial: 0 must be a number of hosts above 0"),
    ({"egress_serial": ["1", "half"]}, 'egress_serial: ["1", "half"] must be a number of hosts above 0'),
    ({"egress_serial": [2, {"hosts": 1}]}, 'egress_serial: [2, {"hosts": 1}] must be a number of hosts above 0'),
], ids=["unknown-rollout", "zero-serial", "bad-serial-item", "serial-item-not-a-number"])
def test_a_bad_rollout_value_stops_before_any_host_is_touched(tmp_path, namespace, site_vars, message):
    inventory(tmp_path, site_vars)
    result, output = ansible_playbook(tmp_path, namespace, "site.yml")
    assert result.returncode != 0
    assert message in " ".join(output.split()), output[-3000:]
    assert "Egress policy on Linux hosts" not in output
    assert owned(namespace) == ([], [])


@pytest.mark.parametrize("become", [pytest.param(True, marks=DEFAULT_RUN), False], ids=["default", "control-egress_become-false"])
def test_the_apply_play_becomes_root_unless_told_not_to(tmp_path, request, become):
    """The default is default_run's site.yml."""
    if become:
        run = request.getfixturevalue("default_run")["site"]
        returncode, output, calls = run.returncode, run.output, run.become_calls
    else:
        inventory(tmp_path)
        result, output = ansible_playbook(tmp_path, request.getfixturevalue("namespace"), "site.yml", "-e", "egress_become=false")
        log = tmp_path / "become.log"
        returncode, calls = result.returncode, log.read_text().splitlines() if log.exists() else []
    assert returncode == 0, output[-4000:]
    if not become:
        assert calls == []
        return
    # Every host's modules ran through the become program, the compile on the controller did not.
    assert calls and all(call.startswith("-H -S -n -u daemon ") for call in calls)
    assert sum("AnsiballZ_nft_apply" in call for call in calls) == 4
    assert sum("AnsiballZ_iptables_apply" in call for call in calls) == 1
    assert not any("site_compile" in call for call in calls)


@pytest.mark.parametrize(("tags", "plays"), [
    ("egress_compile", ["Validate the whole inventory before any host is touched"]),
    ("egress_verify", ["Validate the whole inventory before any host is touched", "Prove the policy with real traffic"]),
    ("egress_apply", ["Validate the whole inventory before any host is touched", "Egress policy on Linux hosts and gateways (nftables, iptables)",
                      "Egress policy on pf boxes (OpenBSD, FreeBSD)",
                      "Egress ACLs on edge routers and switches (Cisco IOS, Arista EOS, Juniper Junos)"]),
])
def test_tags_select_the_plays_and_the_compile_always_runs(tmp_path, tags, plays):
    inventory(tmp_path)
    result, output = ansible_playbook(tmp_path, None, "site.yml", "--list-tasks", "--tags", tags)
    assert result.returncode == 0, output[-3000:]
    with_tasks = []
    for block in re.split(r"\n\s*play #\d+ ", output)[1:]:
        name = re.match(r"\([^)]*\): (.*?)\tTAGS:", block)
        tasks = [line for line in block.split("tasks:\n", 1)[-1].splitlines() if line.strip() and not line.startswith("[WARNING]")]
        # The roles' argument checks are tagged always by Ansible: they count for nothing.
        if name and [task for task in tasks if "Validating arguments against arg spec" not in task]:
            with_tasks.append(name.group(1))
    assert with_tasks == plays, output
    assert "Compile the whole site once" in output


def test_compile_tag_compiles_and_touches_no_host(tmp_path, namespace):
    """A real run with --tags egress_compile: the site compile is written, nothing is loaded."""
    inventory(tmp_path)
    result, output = ansible_playbook(tmp_path, namespace, "site.yml", "--tags", "egress_compile")
    assert result.returncode == 0, output[-3000:]
    compiled = [os.path.join(d, f) for d, dummy, files in os.walk(tmp_path / "site") for f in files]
    assert sorted(os.path.basename(f) for f in compiled) == ["mail1.json", "mail2.json", "ws1.json", "ws2.json", "ws3.json"]
    assert owned(namespace) == ([], [])
    assert not (tmp_path / "mail1").exists()
    # Nothing ran per host: not even the roles' argument checks (Ansible tags them always).
    assert "Validating arguments against arg spec" not in output and "[ws3]" not in output, output[-3000:]


@DEFAULT_RUN
def test_remove_takes_everything_off_and_is_idempotent(default_run):
    site, removed, again = default_run["site"], default_run["removed"], default_run["again"]
    assert site.returncode == 0, site.output[-4000:]
    assert site.owned[0] and site.owned[1]
    assert "ws3/loader" in site.on_disk and "mail1/etc/warden_egress.nft" in site.on_disk
    assert site.ipsets

    assert removed.returncode == 0, removed.output[-4000:]
    assert removed.owned == ([], [])
    assert removed.ipsets == ""
    assert not removed.ip6_chains
    assert removed.on_disk == []
    removal_calls = removed.become_calls[len(site.become_calls):]
    assert sum("AnsiballZ_nft_apply" in call for call in removal_calls) == 4  # the removal ran as root too

    assert again.returncode == 0, again.output[-4000:]
    assert re.findall(r"changed=(\d+)", again.output) == ["0"] * len(HOSTS), again.output[-2000:]


@DEFAULT_RUN
def test_remove_refuses_a_router_before_touching_any_host(default_run):
    site, refused, removed = default_run["site"], default_run["refused"], default_run["removed"]
    assert site.returncode == 0, site.output[-4000:]
    assert refused.returncode != 0
    assert ("warden.egress.remove: edge1 is a router (egress_platform ios); this playbook does not take ACLs off a device. "
            "Unbind the collection's ACLs from Gi0/1") in " ".join(refused.output.split()), refused.output[-3000:]
    assert "Take the egress policy off Linux hosts" not in refused.output
    assert refused.owned == site.owned and refused.on_disk == site.on_disk and refused.become_calls == site.become_calls
    # Without the router, the rest goes.
    assert removed.returncode == 0, removed.output[-4000:]
    assert removed.owned == ([], [])
