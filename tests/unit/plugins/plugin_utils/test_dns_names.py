"""Upstreams named by DNS, before any kernel: what a name entry may be, what it covers, how the
oracle and explain judge a flow by the name its client resolved, which platforms refuse names,
and that whatever name the compiler accepts renders into a ruleset nft loads and a dnsmasq
configuration dnsmasq reads."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample import compile_for, edge_ir, site

from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import covers, lifetime, parse_dns_settings, parse_name
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.render import iptables, nftables

ROLES = {"named": {"allow": [{"service": "https", "to": "apis"}, {"service": "dns", "to": "dns_forwarders"}]}}


def named(names, upstream: str = "apis", **overrides):
    upstreams = {upstream: names, "dns_forwarders": ["203.0.113.53"], "smtp_relays": ["203.0.113.25"]}
    roles = {"named": {"allow": [{"service": "https", "to": upstream}, {"service": "dns", "to": "dns_forwarders"}]}}
    return compile_for("ws1", egress_upstreams=upstreams, egress_roles=roles, egress_role="named", **overrides)


@pytest.mark.parametrize("entry, problem", [
    ("dns:", "names no host"),
    ("dns:api", "is a single label"),
    ("dns:*.com", "wildcard over a top-level domain"),
    ("dns:api.*.example.com", "only dns:*.ZONE is a wildcard"),
    ("dns:*api.example.com", "only dns:*.ZONE is a wildcard"),
    ("dns:**.example.com", "only dns:*.ZONE is a wildcard"),
    ("dns:192.0.2.1", "is an IP address"),
    ("dns:2001:db8::1", "is an IP address"),
    ("dns:10.1.2", "numeric label"),
    ("dns:-api.example.com", "is not a DNS label"),
    ("dns:api_1.example.com", "is not a DNS label"),
    ("dns:api..example.com", "is not a DNS label"),
    ("dns:" + "a" * 64 + ".example.com", "is not a DNS label"),
    ("dns:" + ".".join(["abcdefgh"] * 29) + ".com", "has at most 253"),
    ("dns:api.example.com/8", "is not a DNS label"),
    ("dns:api.example.com\n", "is not a DNS label"),
])
def test_a_bad_name_is_refused_naming_the_variable(entry, problem):
    with pytest.raises(PolicyError) as caught:
        named(["203.0.113.7", entry])
    assert str(caught.value).startswith("egress_upstreams.apis[1]: "), caught.value
    assert problem in str(caught.value)


def test_names_are_kept_lower_case_without_the_final_dot_and_sorted():
    ir = named(["dns:API.Example.COM.", "dns:*.cdn.example.net", "dns:api.example.com"])
    assert ir["sets"]["up_apis"] == {"ipv4": [], "ipv6": [], "names": ["*.cdn.example.net", "api.example.com"]}
    assert ir["dns"] == {"cache_ttl": 300, "grace": 120, "upstream_cache_ttl": 0, "servers": [], "lifetime": 420}
    # a name-only upstream still gives a rule per family (the name sets of each)
    assert sorted(r["family"] for r in ir["rules"] if r["daddr_in"] == "up_apis") == ["ipv4", "ipv6"]


def test_an_upstream_without_names_is_unchanged():
    ir = compile_for("ws1")
    assert "dns" not in ir and all("names" not in members for members in ir["sets"].values())


@pytest.mark.parametrize("pattern, name, expected", [
    ("api.example.com", "api.example.com", True),
    ("api.example.com", "eu.api.example.com", True),
    ("api.example.com", "myapi.example.com", False),
    ("api.example.com", "example.com", False),
    ("*.example.com", "a.b.example.com", True),
    ("*.example.com", "example.com", False),
    ("*.example.com", "badexample.com", False),
])
def test_what_a_name_covers_is_what_dnsmasq_matches(pattern, name, expected):
    assert covers(pattern, name) is expected


def test_the_oracle_allows_a_flow_by_the_name_its_client_resolved_and_says_so():
    ir = named(["dns:api.example.com", "203.0.113.7"])
    flow = {"src": "198.51.100.14", "dst": "203.0.113.150", "dport": 443}
    by_name = evaluate(ir, {**flow, "dns_name": "API.example.com"})
    assert by_name["verdict"] == "accept" and by_name["dns_entry"] == "api.example.com"
    assert by_name["reason"].endswith("(allowed while api.example.com resolves to 203.0.113.150)")
    assert evaluate(ir, flow)["verdict"] == "drop"
    assert evaluate(ir, {**flow, "dns_name": "other.example.com"})["verdict"] == "drop"
    listed = evaluate(ir, {**flow, "dst": "203.0.113.7"})
    assert listed["verdict"] == "accept" and "dns_entry" not in listed


@pytest.mark.parametrize("value", ["*.example.com", "192.0.2.1", "not a name", 7])
def test_a_flow_name_is_checked(value):
    with pytest.raises(PolicyError) as caught:
        evaluate(named(["dns:api.example.com"]), {"src": "198.51.100.14", "dst": "203.0.113.150", "dport": 443, "dns_name": value})
    assert str(caught.value).startswith("flow.dns_name: ")


@pytest.mark.parametrize("platform", ["pf"])
def test_platforms_without_resolver_sets_refuse_names_on_hosts(platform):
    with pytest.raises(PolicyError) as caught:
        named(["dns:api.example.com"], egress_platform=platform)
    assert str(caught.value).startswith("egress_upstreams.apis: ['dns:api.example.com'] holds DNS names, which egress_platform "
                                        f"{platform} cannot follow"), caught.value


EDGE_UPSTREAMS = {**site()["egress_upstreams"], "apis": ["dns:api.example.com"]}


@pytest.mark.parametrize("platform", ["pf", "ios", "eos", "junos"])
def test_edges_without_resolver_sets_refuse_names(platform):
    with pytest.raises(PolicyError) as caught:
        edge_ir(egress_upstreams=EDGE_UPSTREAMS, egress_roles={"client": ROLES["named"]}, egress_platform=platform)
    assert str(caught.value).startswith("egress_upstreams.apis: ['dns:api.example.com'] holds DNS names, which egress_platform"), caught.value


def test_an_edge_counts_the_site_resolvers_cache():
    ir = edge_ir(egress_upstreams=EDGE_UPSTREAMS, egress_roles={"client": ROLES["named"]}, egress_dns={"upstream_cache_ttl": 600})
    assert ir["dns"]["lifetime"] == 300 + 600 + 120
    assert ir["sets"]["up_apis"]["names"] == ["api.example.com"]
    host = named(["dns:api.example.com"], egress_dns={"upstream_cache_ttl": 600})
    assert host["dns"]["lifetime"] == 300 + 120


@pytest.mark.parametrize("value, path", [
    ({"cache_ttl": -1}, "egress_dns.cache_ttl"),
    ({"grace": "60"}, "egress_dns.grace"),
    ({"upstream_cache_ttl": True}, "egress_dns.upstream_cache_ttl"),
    ({"ttl": 5}, "egress_dns.ttl"),
    ({"servers": ["dns1"]}, "egress_dns.servers[0]"),
    ({"cache_ttl": 0, "grace": 0}, "egress_dns.grace"),
    ("300", "egress_dns"),
])
def test_bad_dns_settings_are_refused(value, path):
    with pytest.raises(PolicyError) as caught:
        parse_dns_settings(value)
    assert str(caught.value).startswith(path + ": ")


def test_the_lifetime_covers_every_cache_between_the_answer_and_the_connection():
    assert lifetime(parse_dns_settings({"cache_ttl": 60, "grace": 30, "upstream_cache_ttl": 10})) == 100


def test_serves_from_a_named_upstream_is_refused():
    roles = {"named": {"allow": [], "serves": [{"service": "https", "from": "apis"}]}}
    with pytest.raises(PolicyError) as caught:
        compile_for("ws1", egress_upstreams={"apis": ["dns:api.example.com"]}, egress_roles=roles, egress_role="named")
    assert str(caught.value).startswith("egress_roles.named.serves[0].from: 'apis' names upstream apis, which holds DNS names"), caught.value


def test_a_name_written_in_place_of_an_upstream_is_refused():
    exceptions = [{"hosts": ["ws1"], "service": "https", "to": ["dns:api.example.com"], "reason": "r", "owner": "o", "expires": "2099-12-31"}]
    with pytest.raises(PolicyError) as caught:
        compile_for("ws1", egress_exceptions=exceptions)
    assert str(caught.value).startswith("egress_exceptions[0].to[0]: 'dns:api.example.com' is a DNS name"), caught.value


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
NAME = st.builds(lambda wild, labels, top: ("*." if wild else "") + ".".join(labels + [top]),
                 st.booleans(), st.lists(LABEL, min_size=1, max_size=4), st.from_regex(r"[a-z][a-z0-9]{1,5}", fullmatch=True))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a network namespace for nft -c); make setup installs dnsmasq")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAME.filter(lambda n: len(n) <= 253), min_size=1, max_size=150, unique=True))
def test_names_the_compiler_accepts_load_in_nft_and_dnsmasq(names):
    ir = named([f"dns:{name}" for name in names])
    assert ir["sets"]["up_apis"]["names"] == sorted(parse_name(f"dns:{n}", "x") for n in set(names))
    files = nftables.dnsmasq(ir, ["203.0.113.53"])
    with tempfile.TemporaryDirectory() as tmp:
        ruleset, conf = os.path.join(tmp, "p.nft"), os.path.join(tmp, "dnsmasq.conf")
        with open(ruleset, "w", encoding="utf-8") as handle:
            handle.write(nftables.render(ir) + files["flush"]["a"] + files["flush"]["b"])
        with open(conf, "w", encoding="utf-8") as handle:
            handle.write(files["conf"])
        loaded = subprocess.run(["unshare", "-n", "nft", "-c", "-f", ruleset], capture_output=True, text=True, check=False)
        assert loaded.returncode == 0, loaded.stderr
        read = subprocess.run(["dnsmasq", "--test", f"--conf-file={conf}"], capture_output=True, text=True, check=False)
        assert read.returncode == 0 and "syntax check OK" in read.stderr, read.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a network namespace for ipset and iptables-restore --test)")
@settings(max_examples=20, deadline=None)
@given(names=st.lists(NAME.filter(lambda n: len(n) <= 253), min_size=1, max_size=40, unique=True),
       upstream=st.from_regex(r"[a-z][a-z0-9_]{0,40}", fullmatch=True).filter(lambda n: n not in ("dns_forwarders", "smtp_relays")),
       listed=st.booleans())
def test_names_the_compiler_accepts_load_in_ipset_iptables_and_dnsmasq(names, upstream, listed):
    """iptables: the halves' ipset names (a long upstream name is hashed, the half and the
    family kept), the restore files, the flush files and the dnsmasq ipset lines all load."""
    ir = named([f"dns:{name}" for name in names] + (["203.0.113.80/28"] if listed else []), upstream=upstream, egress_platform="iptables")
    files, resolver = iptables.render(ir), iptables.dnsmasq(ir, ["203.0.113.53"])
    halves = {iptables.dns_ipset(f"up_{upstream}", half, family) for half in ("a", "b") for family in ("ipv4", "ipv6")}
    assert len(halves) == 4 and all(len(name) <= 31 for name in halves), halves
    with tempfile.TemporaryDirectory() as tmp:
        for key, text in (*files.items(), ("flush_a", resolver["flush"]["a"]), ("flush_b", resolver["flush"]["b"]), ("conf", resolver["conf"])):
            if isinstance(text, str):
                with open(os.path.join(tmp, key), "w", encoding="utf-8") as handle:
                    handle.write(text)
        script = ("set -e; ipset restore < ipset; iptables-restore --test < ipv4; ip6tables-restore --test < ipv6;"
                  " ipset restore < flush_a; ipset restore < flush_b; ipset list -n")
        loaded = subprocess.run(["unshare", "-n", "sh", "-c", script], cwd=tmp, capture_output=True, text=True, check=False)
        assert loaded.returncode == 0, loaded.stderr
        assert halves <= set(loaded.stdout.split()), loaded.stdout
        read = subprocess.run(["dnsmasq", "--test", f"--conf-file={os.path.join(tmp, 'conf')}"], capture_output=True, text=True, check=False)
        assert read.returncode == 0 and "syntax check OK" in read.stderr, read.stderr
    assert sum(line.startswith("ipset=/") for line in resolver["conf"].splitlines()) == len(ir["sets"][f"up_{upstream}"]["names"])


@pytest.mark.parametrize("names", [
    [f"n{i}.bulk.example.com" for i in range(200)],                       # many names in one upstream
    [".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 57, "com"])] * 1,          # the longest name
])
def test_dnsmasq_reads_the_configuration_of_many_and_long_names(names):
    files = nftables.dnsmasq(named([f"dns:{name}" for name in names]), ["203.0.113.53"])
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "dnsmasq.conf")
        with open(conf, "w", encoding="utf-8") as handle:
            handle.write(files["conf"])
        read = subprocess.run(["dnsmasq", "--test", f"--conf-file={conf}"], capture_output=True, text=True, check=False)
    assert read.returncode == 0 and "syntax check OK" in read.stderr, read.stderr
    assert sum(line.startswith("nftset=/") for line in files["conf"].splitlines()) == len(set(names))
