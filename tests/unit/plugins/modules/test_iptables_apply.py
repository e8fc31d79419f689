"""iptables_apply run for real (as Ansible runs it: a process reading its arguments) inside a
network namespace: one transaction per family, idempotence, drift, check mode, diff, other
owners' rules, chains and sets untouched, refusal of anything outside its own chains,
rollback of IPv4 when IPv6 fails, removal."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest
from netns import Pair, run_module, sh
from sample import compile_for, edge_ir

from ansible_collections.warden.egress.plugins.plugin_utils.render.iptables import render

FOREIGN = [
    ("iptables", "-A", "OUTPUT", "-d", "203.0.113.7", "-m", "comment", "--comment", "an admin's rule", "-j", "ACCEPT"),
    ("iptables", "-N", "DOCKER-USER"),
    ("iptables", "-A", "DOCKER-USER", "-j", "RETURN"),
    ("iptables", "-A", "FORWARD", "-j", "DOCKER-USER"),
    ("ip6tables", "-A", "OUTPUT", "-d", "2001:db8:5100::7", "-j", "ACCEPT"),
    ("ipset", "create", "admin-blocklist", "hash:ip"),
    ("ipset", "add", "admin-blocklist", "203.0.113.66"),
]


@pytest.fixture()
def env():
    with Pair() as pair, tempfile.TemporaryDirectory() as tmp:
        for command in FOREIGN:
            sh(*command, ns=pair.host)
        yield pair, tmp


def run(pair, tmp, files=None, check=False, diff=False, path_dir=None, **args):
    if files is not None:
        args.update({key: files[key] for key in ("ipset", "ipv4", "ipv6")})
    args.setdefault("directory", os.path.join(tmp, "etc"))
    args.setdefault("state_dir", os.path.join(tmp, "state"))
    search = f"{path_dir}:{os.environ['PATH']}" if path_dir else os.environ["PATH"]
    return run_module("iptables_apply", tmp, args, check, diff, ns=pair.host, env={**os.environ, "PATH": search})


def saved(pair, tool="iptables"):
    return [line for line in sh(f"{tool}-save", "-t", "filter", ns=pair.host).stdout.splitlines() if not line.startswith("#")]


def foreign(pair):
    """Everything in the namespace that is not the collection's."""
    lines = [line for tool in ("iptables", "ip6tables") for line in saved(pair, tool) if "warden" not in line]
    sets = sh("ipset", "save", "admin-blocklist", ns=pair.host).stdout.splitlines()
    return lines, [line for line in sets if not line.startswith("create")]


def ours(pair, tool="iptables"):
    return [line for line in saved(pair, tool) if "warden" in line]


def sets(pair):
    return sorted(sh("ipset", "list", "-n", ns=pair.host).stdout.split())


def test_apply_is_idempotent_and_leaves_other_owners_alone(env):
    pair, tmp = env
    before = foreign(pair)
    files = render(compile_for("mail1"))
    first = run(pair, tmp, files)
    assert first["changed"] and first["ruleset_changed"] and first["file_changed"], first
    assert first["validated"] == "scratch namespace and --test"
    for tool in ("iptables", "ip6tables"):
        rules = ours(pair, tool)
        # The jump is the first rule of OUTPUT; the chains hold the rendered rules.
        assert saved(pair, tool)[[i for i, line in enumerate(saved(pair, tool)) if line.startswith("-A OUTPUT")][0]] \
            == '-A OUTPUT -m comment --comment "warden.egress" -j warden_egress-output'
        assert any("role mail_server: smtp to smtp_relays" in line for line in rules)
    assert foreign(pair) == before
    assert f"w{files['generation']}-up_smtp_relays.4" in sets(pair) and "admin-blocklist" in sets(pair)
    second = run(pair, tmp, files)
    assert not second["changed"], second
    for key, suffix in (("ipset", "ipset"), ("ipv4", "rules.v4"), ("ipv6", "rules.v6")):
        with open(os.path.join(tmp, "etc", f"warden_egress.{suffix}"), encoding="utf-8") as handle:
            assert handle.read() == files[key]


def test_a_new_policy_replaces_chains_and_sets_and_removes_what_it_no_longer_needs(env):
    pair, tmp = env
    before = foreign(pair)
    gateway = render([compile_for("ws1"), edge_ir()])
    assert run(pair, tmp, gateway)["changed"]
    assert any(line.startswith('-A FORWARD -m comment --comment "warden.egress"') for line in saved(pair))
    host = render(compile_for("mail1"))
    result = run(pair, tmp, host)
    assert result["changed"] and result["chains"]["ipv4"] == ["warden_egress-alert", "warden_egress-deny", "warden_egress-output"]
    assert not any("warden_egress-forward" in line or "ratelimit" in line for line in saved(pair))
    # Only the new generation's sets are left, and the administrator's set.
    assert sets(pair) == sorted(["admin-blocklist"] + [line.split()[1] for line in host["ipset"].splitlines() if line.startswith("create")])
    assert foreign(pair) == before


@pytest.mark.parametrize("edit", [
    ("iptables", "-D", "OUTPUT", "-m", "comment", "--comment", "warden.egress", "-j", "warden_egress-output"),
    ("iptables", "-I", "OUTPUT", "1", "-j", "ACCEPT"),
    ("ip6tables", "-D", "warden_egress-output", "1"),
    ("ipset", "add", "SET", "198.51.100.99"),
])
def test_drift_is_seen_and_put_right(env, edit):
    pair, tmp = env
    files = render(compile_for("mail1"))
    run(pair, tmp, files)
    wanted = (ours(pair), ours(pair, "ip6tables"), sh("ipset", "save", f"w{files['generation']}-trusted.4", ns=pair.host).stdout)
    sh(*[f"w{files['generation']}-trusted.4" if word == "SET" else word for word in edit], ns=pair.host)
    assert run(pair, tmp, files, check=True)["changed"]
    result = run(pair, tmp, files)
    assert result["ruleset_changed"] and not result["file_changed"]
    assert (ours(pair), ours(pair, "ip6tables"), sh("ipset", "save", f"w{files['generation']}-trusted.4", ns=pair.host).stdout) == wanted
    # Back at the top of OUTPUT, exactly once.
    output = [line for line in saved(pair) if line.startswith("-A OUTPUT")]
    assert output[0].endswith("-j warden_egress-output") and sum("warden_egress-output" in line for line in output) == 1
    assert not run(pair, tmp, files)["changed"]


def test_check_mode_and_diff_change_nothing(env):
    pair, tmp = env
    files = render(compile_for("mail1"))
    before = (saved(pair), saved(pair, "ip6tables"), sets(pair))
    result = run(pair, tmp, files, check=True, diff=True)
    assert result["changed"] and result["diff"]["after"].count("warden_egress-output") > 3
    assert (saved(pair), saved(pair, "ip6tables"), sets(pair)) == before
    assert not os.path.exists(os.path.join(tmp, "etc")) and not os.path.exists(os.path.join(tmp, "state"))
    run(pair, tmp, files)
    other = render(compile_for("dns1"))
    result = run(pair, tmp, other, check=True, diff=True)
    assert "role mail_server" in result["diff"]["before"] and "role dns_resolver" in result["diff"]["after"]
    assert any("role mail_server" in line for line in ours(pair))


@pytest.mark.parametrize(("key", "edit", "problem"), [
    ("ipv4", lambda t: t.replace("COMMIT", "-A OUTPUT -j ACCEPT\nCOMMIT"), "only rules appended to 'warden_egress-*' chains"),
    ("ipv4", lambda t: t.replace("COMMIT", "-A warden_egress-output -j DOCKER-USER\nCOMMIT"), "target 'DOCKER-USER' is not the collection's own"),
    ("ipv4", lambda t: t.replace("*filter", "*filter\n:INPUT DROP [0:0]"), "only chains named 'warden_egress-*' may be declared"),
    ("ipv6", lambda t: t.replace("COMMIT", "-F\nCOMMIT"), "only rules appended"),
    ("ipv4", lambda t: t.replace("*filter", "*nat"), "one '*filter' table"),
    ("ipv4", lambda t: t.replace("COMMIT", "-A warden_egress-output -m set --match-set admin-blocklist dst -j DROP\nCOMMIT"),
     "set 'admin-blocklist' is not an ipv4 set created by the ipset file"),
    ("ipset", lambda t: t + "destroy admin-blocklist\n", "only 'create' and 'add' of the collection's sets"),
])
def test_anything_outside_its_own_chains_is_refused(env, key, edit, problem):
    pair, tmp = env
    files = render(compile_for("mail1"))
    files[key] = edit(files[key])
    before = (saved(pair), saved(pair, "ip6tables"), sets(pair))
    result = run(pair, tmp, files)
    assert result.get("failed") and problem in result["msg"], result
    assert (saved(pair), saved(pair, "ip6tables"), sets(pair)) == before


@pytest.mark.parametrize(("key", "empty"), [
    ("ipv4", ""),
    ("ipv6", " \n\n"),
    ("ipv4", "# nothing\n*filter\nCOMMIT\n"),
    ("ipv6", "*filter\n:warden_egress-output - [0:0]\n-A warden_egress-output -j DROP\nCOMMIT\n"),
])
def test_an_empty_ruleset_is_refused_and_changes_nothing(env, key, empty):
    """An empty family file (or one that never jumps into the chains) would unhook the
    collection's chains and leave that family unfiltered: refused, nothing changes."""
    pair, tmp = env
    files = render(compile_for("mail1"))
    run(pair, tmp, files)
    before = (saved(pair), saved(pair, "ip6tables"), sets(pair), sorted(os.listdir(os.path.join(tmp, "etc"))))
    for check in (True, False):
        result = run(pair, tmp, {**files, key: empty}, check=check)
        assert result.get("failed") and "empty ruleset" in result["msg"] and "state: absent" in result["msg"], result
    assert (saved(pair), saved(pair, "ip6tables"), sets(pair), sorted(os.listdir(os.path.join(tmp, "etc")))) == before
    with open(os.path.join(tmp, "etc", f"warden_egress.rules.{key[-2:]}"), encoding="utf-8") as handle:
        assert handle.read() == files[key]
    assert not run(pair, tmp, files)["changed"]


def test_rules_the_kernel_refuses_change_nothing(env):
    pair, tmp = env
    run(pair, tmp, render(compile_for("mail1")))
    before = (saved(pair), saved(pair, "ip6tables"), sets(pair))
    files = render(compile_for("dns1"))
    files["ipv6"] = files["ipv6"].replace("--dport 53", "--dport 70000")
    result = run(pair, tmp, files)
    assert result.get("failed") and "scratch network namespace" in result["msg"], result
    assert (saved(pair), saved(pair, "ip6tables"), sets(pair)) == before


def test_ipv4_is_put_back_when_the_ipv6_load_fails(env):
    """An ip6tables-restore that passes every check but fails the real load (stand-in
    for a kernel that refuses at commit time): IPv4 must not be left on the new policy."""
    pair, tmp = env
    run(pair, tmp, render(compile_for("mail1")))
    before = (saved(pair), saved(pair, "ip6tables"), sets(pair))
    real = sh("sh", "-c", "command -v ip6tables-restore").stdout.strip()
    fake_dir = os.path.join(tmp, "bin")
    os.makedirs(fake_dir)
    fake = os.path.join(fake_dir, "ip6tables-restore")
    with open(fake, "w", encoding="utf-8") as handle:
        # Scratch namespaces have no eth0: only the real load in the target namespace fails.
        handle.write(f'#!/bin/sh\ncase " $* " in *" --test "*) exec {real} "$@";; esac\n'
                     f'ip link show eth0 >/dev/null 2>&1 && {{ echo "refused at commit" >&2; exit 1; }}\nexec {real} "$@"\n')
    os.chmod(fake, os.stat(fake).st_mode | stat.S_IEXEC)
    result = run(pair, tmp, render(compile_for("dns1")), path_dir=fake_dir)
    assert result.get("failed") and "the ipv4 rules were put back" in result["msg"], result
    assert (saved(pair), saved(pair, "ip6tables"), sets(pair)) == before
    assert not run(pair, tmp, render(compile_for("mail1")))["changed"]


def test_absent_removes_only_its_own(env):
    pair, tmp = env
    before = foreign(pair)
    run(pair, tmp, render([compile_for("ws1"), edge_ir()]))
    assert run(pair, tmp, state="absent", check=True)["changed"]
    assert ours(pair)
    result = run(pair, tmp, state="absent")
    assert result["changed"]
    assert not ours(pair) and not ours(pair, "ip6tables") and sets(pair) == ["admin-blocklist"]
    assert foreign(pair) == before
    assert os.listdir(os.path.join(tmp, "etc")) == []
    assert not run(pair, tmp, state="absent")["changed"]


def test_absent_on_a_host_that_had_no_filter_table_leaves_none():
    """A stock host has no iptables filter table; the first load makes one (iptables-nft);
    removing the collection takes it away again, so the host is as it was. A table that
    holds anyone else's rule stays (test_absent_removes_only_its_own)."""
    with Pair() as pair, tempfile.TemporaryDirectory() as tmp:
        assert pair.nft("list", "ruleset").stdout.strip() == ""
        assert run(pair, tmp, render(compile_for("mail1")))["changed"]
        assert ours(pair) and ours(pair, "ip6tables")
        assert run(pair, tmp, state="absent")["changed"]
        assert pair.nft("list", "ruleset").stdout.strip() == "" and sets(pair) == []
        assert sh("iptables-save", ns=pair.host).stdout.strip() == sh("ip6tables-save", ns=pair.host).stdout.strip() == ""
