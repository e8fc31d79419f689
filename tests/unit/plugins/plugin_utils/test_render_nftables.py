"""nftables renderer: golden files, the pitfalls of peer tools, nft -c, and the kernel
agreeing with the oracle on real packets."""

from __future__ import annotations

import ipaddress
import itertools
import random
import re

import pytest
from golden_files import golden
from netns import BACKENDS, HOST_V4, HOST_V6, SPOOF_V4, SPOOF_V6, Pair
from sample import ADDRESSES, ROLES, compile_for

from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.render.nftables import render

HOSTS = sorted(ROLES)


@pytest.mark.parametrize("host", HOSTS)
def test_golden(host):
    """Output is stable; regenerate with WARDEN_UPDATE_GOLDEN=1 and review the diff."""
    text = render(compile_for(host))
    assert text == golden(f"{host}.nft", text)


def rule_lines(text):
    """Every rule of every chain (not the chain's hook declaration)."""
    return [
        line.strip() for line in text.splitlines()
        if line.startswith("\t\t") and not line.strip().startswith("type ") and re.search(r"\b(accept|goto|drop)\b", line)
    ]


@pytest.mark.parametrize("host", HOSTS)
def test_no_duplicate_rules(host):
    lines = rule_lines(render(compile_for(host)))
    assert len(lines) == len(set(lines))


@pytest.mark.parametrize("host", HOSTS)
def test_every_service_rule_keeps_its_port(host):
    """Capirca pitfall: a tcp/udp accept must never lose its dport (a connection picked up
    mid-stream is matched on this host's port, its source port)."""
    for line in rule_lines(render(compile_for(host))):
        if re.search(r"\b(tcp|udp)\b", line) and line.endswith('"') and " accept " in line:
            port = "sport" if "tcp flags & (syn | ack) == ack" in line else "dport"
            assert re.search(rf"\b(tcp|udp) {port} \S", line), line


@pytest.mark.parametrize("host", HOSTS)
def test_every_rule_names_its_origin_and_every_set_is_defined(host):
    text = render(compile_for(host))
    for line in rule_lines(text):
        assert re.search(r' comment "[^"]+"$', line), line
    referenced = set(re.findall(r"@(\w+)", text))
    defined = set(re.findall(r"^\tset (\w+) \{", text, re.M))
    assert referenced <= defined


def test_only_the_own_table_is_touched():
    text = render(compile_for("mail1"))
    statements = [line for line in text.splitlines() if line and not line.startswith(("\t", "#", "}"))]
    assert statements == ["table inet warden_egress", "delete table inet warden_egress", "table inet warden_egress {"]
    assert "flush ruleset" not in text


def test_anti_spoofing_matches_a_set_not_a_complement():
    """Aerleon pitfall: never enumerate the complement of the trusted prefixes."""
    text = render(compile_for("mail1"))
    assert "ip saddr != @trusted_v4 goto deny" in text
    assert "ip6 saddr != @trusted_v6 goto deny" in text


def test_audit_mode_logs_and_accepts():
    text = render(compile_for("mail1", egress_mode="audit"))
    assert "policy accept;" in text
    assert 'log prefix "warden-egress audit[host]: " flags skuid' in text
    assert "\t\tdrop" not in text


def test_renderer_refuses_unsafe_text_even_if_compiler_were_bypassed():
    ir = compile_for("mail1")
    ir["rules"][0]["comment"] = 'x" ; flush ruleset ; "'
    with pytest.raises(ValueError, match="unsafe"):
        render(ir)


@pytest.fixture(scope="module")
def pair():
    with Pair() as p:
        yield p


@pytest.mark.parametrize("host", HOSTS)
def test_nft_accepts_every_rendering(pair, host):
    for mode in ("enforce", "audit"):
        result = pair.nft("-c", "-f", "-", data=render(compile_for(host, egress_mode=mode)), check=False)
        assert result.returncode == 0, result.stderr


def test_nft_check_would_catch_a_broken_ruleset(pair):
    """The check above can fail."""
    broken = render(compile_for("mail1")).replace("tcp dport 25", "tcp dport 25 frobnicate")
    assert pair.nft("-c", "-f", "-", data=broken, check=False).returncode != 0


# Destinations in the kernel test are all behind the 'world' namespace.
KERNEL_ADDRESSES = {**ADDRESSES, "dns1": ["198.51.100.140", "2001:db8:5100::12"], "proxy1": ["198.51.100.141", "2001:db8:5100::13"]}
DESTINATIONS = ["203.0.113.25", "203.0.113.53", "203.0.113.80", "203.0.113.99", "198.51.100.140", "198.51.100.141",
                "2001:db8:5100::25", "2001:db8:5100::53", "2001:db8:5100::80", "2001:db8:5100::99", "2001:db8:5100::12", "2001:db8:5100::13"]
PORTS = [22, 25, 53, 80, 123, 443, 3128, 6667]


def sample_flows(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    every = list(itertools.product(DESTINATIONS, PORTS, ("tcp", "udp"), (False, True)))
    flows = []
    for dst, port, proto, spoof in rng.sample(every, count):
        v6 = ipaddress.ip_address(dst).version == 6
        src = (SPOOF_V6 if v6 else SPOOF_V4) if spoof else (HOST_V6 if v6 else HOST_V4)
        flows.append({"dst": dst, "port": port, "proto": proto, "src": src})
    return flows


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("host", HOSTS)
def test_kernel_agrees_with_oracle(pair, host, backend):
    from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
    from sample import GROUPS, site

    variables = site(egress_role=ROLES[host])
    ir = compile_policy(variables, host, KERNEL_ADDRESSES, GROUPS)
    pair.load(ir, backend)
    try:
        flows = sample_flows(seed=HOSTS.index(host), count=120)
        observed = pair.probe(flows)
        expected = [evaluate(ir, {"src": f["src"], "dst": f["dst"], "proto": f["proto"], "dport": f["port"]}) for f in flows]
        disagreements = [
            (f, e["verdict"], o["outcome"]) for f, e, o in zip(flows, expected, observed)
            if (e["verdict"] == "accept") != o["passed"]
        ]
        assert not disagreements
        # The sample really exercises both verdicts.
        verdicts = {e["verdict"] for e in expected}
        assert verdicts == {"accept", "drop"} or host == "intranet1" and verdicts == {"drop"}
    finally:
        pair.unload()


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_comparison_can_fail(pair, backend):
    """With the anti-spoofing rules removed from the ruleset, the kernel lets spoofed
    flows out and disagrees with the oracle: the comparison above is not vacuous."""
    from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
    from sample import GROUPS, site

    ir = compile_policy(site(egress_role="mail_server"), "mail1", KERNEL_ADDRESSES, GROUPS)
    pair.load(ir, backend, without="anti-spoofing")
    try:
        flow = {"dst": "203.0.113.25", "port": 25, "proto": "tcp", "src": SPOOF_V4}
        assert evaluate(ir, {"src": SPOOF_V4, "dst": "203.0.113.25", "proto": "tcp", "dport": 25})["verdict"] == "drop"
        assert pair.probe([flow])[0]["passed"] is True
    finally:
        pair.unload()
