"""iptables renderer: golden files, the pitfalls of peer tools, iptables-restore --test,
and the shapes the kernel needs (names within its limits, multiport chunks). The kernel
against the oracle, with packets, is in test_render_nftables.py and test_edge.py (both
backends)."""

from __future__ import annotations

import re
import shlex

import pytest
from golden_files import golden
from netns import Pair, sh
from sample import EDGE, compile_for, edge_ir

from ansible_collections.warden.egress.plugins.module_utils._apply_iptables import check_rules, check_sets
from ansible_collections.warden.egress.plugins.plugin_utils.render.iptables import ipset_name, render

HOSTS = ["mail1", "dns1", "proxy1", "ws1", "intranet1"]
CASES = {host: (lambda host=host: compile_for(host)) for host in HOSTS}
CASES["gw1"] = lambda: [compile_for("ws1"), edge_ir()]


def rules(text):
    return [line for line in text.splitlines() if line.startswith("-A ")]


@pytest.mark.parametrize("name", ["mail1", "gw1"])
def test_golden(name):
    """Reviewed output; regenerate with WARDEN_UPDATE_GOLDEN=1 and read the diff."""
    files = render(CASES[name]())
    for key in ("ipset", "ipv4", "ipv6"):
        assert files[key] == golden(f"{name}.iptables.{key}", files[key]), key


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_duplicate_rules_and_every_rule_names_its_origin(name):
    files = render(CASES[name]())
    for family in ("ipv4", "ipv6"):
        lines = rules(files[family])
        assert len(lines) == len(set(lines))
        assert all("--comment" in line for line in lines)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_service_rule_keeps_its_port(name):
    """The Capirca pitfall: a port-bearing rule rendered without its port opens every port."""
    irs = CASES[name]()
    files = render(irs)
    for ir in irs if isinstance(irs, list) else [irs]:
        for rule in ir["rules"]:
            if rule["dports"] is None:
                continue
            for family in ("ipv4", "ipv6"):
                for line in rules(files[family]):
                    if f'"{rule["comment"]}"' in line:
                        assert "--dport" in line, line


@pytest.mark.parametrize("name", sorted(CASES))
def test_only_own_chains_and_sets_and_every_set_is_created(name):
    files = render(CASES[name]())
    problem, sets = check_sets(files["ipset"])
    assert problem is None
    for family in ("ipv4", "ipv6"):
        assert check_rules(files[family], "warden_egress", family, sets) is None
        used = set(re.findall(r"--match-set (\S+)", files[family]))
        assert used <= sets
        # Allowed traffic returns to the built-in chain; nothing here can override an
        # administrator's DROP further down, and no rule targets a chain we do not own.
        assert " -j ACCEPT" not in files[family]
        for line in rules(files[family]):
            words = shlex.split(line)
            target = words[max(i for i, word in enumerate(words) if word in ("-j", "-g")) + 1]
            assert target in ("RETURN", "DROP", "LOG") or target.startswith("warden_egress-"), line


def test_replies_are_accepted_in_both_families():
    """The Aerleon pitfall: replies allowed by one backend and dropped by another."""
    files = render(compile_for("mail1"))
    for family in ("ipv4", "ipv6"):
        chain = [line for line in rules(files[family]) if line.startswith("-A warden_egress-output ")]
        first = chain[1]  # after loopback
        assert "--ctstate ESTABLISHED,RELATED" in first and first.endswith("-j RETURN")


def test_anti_spoofing_matches_a_set_not_a_complement():
    files = render(compile_for("mail1"))
    spoof = [line for line in rules(files["ipv4"]) if "anti-spoofing" in line]
    assert spoof == [
        '-A warden_egress-output -m set ! --match-set w' + files["generation"]
        + '-trusted.4 src -m comment --comment "baseline: anti-spoofing IPv4" -g warden_egress-deny'
    ]


def test_audit_mode_logs_and_returns():
    files = render(compile_for("mail1", egress_mode="audit"))
    audit = [line for line in rules(files["ipv4"]) if line.startswith("-A warden_egress-audithost ")]
    assert 'LOG --log-prefix "warden-egress audit[host]: " --log-uid' in audit[0]
    assert audit[-1].endswith("-j RETURN") and "DROP" not in files["ipv4"]


def test_generation_follows_content_and_nothing_else():
    one, two = render(compile_for("mail1")), render(compile_for("mail1"))
    assert one == two
    other = render(compile_for("mail1", egress_upstreams={"smtp_relays": ["203.0.113.26"], "internal_resolvers": "group:dns_resolvers"}))
    assert other["generation"] != one["generation"]
    assert all(name.startswith(f"w{other['generation']}-") for name in re.findall(r"^create (\S+)", other["ipset"], re.M))


def test_long_set_names_stay_unique_and_within_the_kernel_limit():
    first = ipset_name("up_a_very_long_upstream_name_one", "ipv4")
    second = ipset_name("up_a_very_long_upstream_name_two", "ipv4")
    assert first != second
    assert len(first.replace("@GEN@", "abcdef")) <= 31
    # The family ending survives shortening (iptables_apply matches sets of a family by it).
    assert first.endswith(".4") and ipset_name("up_a_very_long_upstream_name_one", "ipv6").endswith(".6")


def test_many_ports_are_split_into_multiport_chunks():
    services = {"many": {"proto": "tcp", "ports": [str(p) for p in range(1000, 1040, 2)]}}
    roles = {"many_role": {"allow": [{"service": "many", "to": "any"}]}}
    ir = compile_for("mail1", egress_services=services, egress_roles=roles, egress_role="many_role")
    lines = [line for line in rules(render(ir)["ipv4"]) if "many" in line]
    ports = [p for line in lines for p in re.search(r"--dports (\S+)", line).group(1).split(",")]
    assert len(lines) == 2 and len(ports) == 20 and len(set(ports)) == 20


def test_names_too_long_for_iptables_are_refused():
    """The compiler refuses these for egress_platform iptables; the renderer refuses
    them too, whatever IR it is given."""
    with pytest.raises(ValueError, match="egress_table"):
        render(compile_for("mail1", egress_table="a_table_name_much_too_long"))
    with pytest.raises(ValueError, match="egress_log.prefix"):
        render(compile_for("mail1", egress_log={"prefix": "a-rather-long-log-prefix"}))


def test_interface_lists_become_interface_sets():
    edge = {**EDGE, "outside": ["eth1", "eth2"]}
    files = render(edge_ir(edge=edge))
    assert "add w" + files["generation"] + "-if0.4 0.0.0.0/0,eth1" in files["ipset"]
    negated = [line for line in rules(files["ipv4"]) if "not leaving by the outside" in line]
    assert len(negated) == 1 and "-m set ! --match-set" in negated[0] and "dst,dst" in negated[0]


@pytest.fixture(scope="module")
def pair():
    with Pair() as p:
        yield p


def restore_test(pair, files):
    sh("ipset", "-exist", "restore", ns=pair.host, data=files["ipset"])
    try:
        return [sh(tool, "--test", "--noflush", ns=pair.host, data=files[family], check=False)
                for tool, family in (("iptables-restore", "ipv4"), ("ip6tables-restore", "ipv6"))]
    finally:
        sh("ipset", "destroy", ns=pair.host, check=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_iptables_restore_test_accepts_every_rendering(pair, name):
    for mode in ("enforce", "audit"):
        irs = CASES[name]()
        for ir in irs if isinstance(irs, list) else [irs]:
            ir["mode"] = mode
        for result in restore_test(pair, render(irs)):
            assert result.returncode == 0, result.stderr


def test_iptables_restore_test_would_catch_a_broken_ruleset(pair):
    """The check above can fail."""
    files = render(compile_for("mail1"))
    files["ipv6"] = files["ipv6"].replace("--dport 25", "--dport 25 --frobnicate")
    assert [r.returncode == 0 for r in restore_test(pair, files)] == [True, False]
