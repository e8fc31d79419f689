"""pf renderer, held to a strict grammar of what pf.conf accepts and to a pf-semantics
evaluator that must agree with the oracle on sampled flows: a host's own traffic for every
example host, and traffic forwarded through the example gateway (no BSD box runs here; what
this does and does not prove is in docs/pf.md)."""

from __future__ import annotations

import ipaddress
import itertools
import random
import re

import pytest
from golden_files import golden
from sample import EDGE, compile_for, edge_ir

from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate as oracle
from pf_grammar import PfSyntaxError, evaluate, parse
from ansible_collections.warden.egress.plugins.plugin_utils.render.pf import conn_rate, render, render_pf_conf

HOSTS = ["mail1", "dns1", "proxy1", "ws1", "intranet1"]
OWN = {"mail1": ["198.51.100.11", "2001:db8:10::11"], "dns1": ["198.51.100.12", "2001:db8:10::12"],
       "proxy1": ["198.51.100.13", "2001:db8:10::13"], "ws1": ["198.51.100.14", "2001:db8:10::14"],
       "intranet1": ["198.51.100.15", "2001:db8:10::15"]}
GATEWAY = ["198.51.100.126", "2001:db8:10::fe", "203.0.113.254", "2001:db8:5100::fe"]
EDGES = {
    "default": {},
    "routes": {"routes": True},
    "no-limit": {"conn_limit": False},
    "two-outside": {"outside": ["eth1", "eth2"]},
}


def edge_variant(name):
    return edge_ir(edge={**EDGE, **EDGES[name]})


def test_golden():
    """Reviewed output; regenerate with WARDEN_UPDATE_GOLDEN=1 and read the diff."""
    text = render([compile_for("ws1"), edge_ir()])
    assert text == golden("gw1.pf", text)


@pytest.mark.parametrize("mode", ["enforce", "audit"])
@pytest.mark.parametrize("host", HOSTS)
def test_every_host_rendering_reads_back(host, mode):
    ruleset = parse(render(compile_for(host, egress_mode=mode)))
    assert ruleset["rules"][-1]["label"] == ("audit: default deny" if mode == "audit" else "default deny")
    assert all(rule["quick"] for rule in ruleset["rules"])


@pytest.mark.parametrize("name", sorted(EDGES))
def test_every_edge_rendering_reads_back(name):
    ruleset = parse(render([compile_for("ws1"), edge_variant(name)]))
    tags = {rule["tag"] for rule in ruleset["rules"] if rule["action"] == "match"}
    assert tags == {"WE_IN_eth0", "WE_IN_eth1"} | ({"WE_IN_eth2"} if name == "two-outside" else set())


def test_full_pf_conf_reads_back_and_hooks_the_anchor():
    conf = parse(render_pf_conf(extra=['pass in quick proto tcp from any to any port 22 keep state label "admin: ssh"']), anchor_file=False)
    assert ("skip", "lo") in conf["options"]
    assert conf["anchors"] == [{"name": "warden_egress", "position": 0, "file": "/etc/pf.anchors/warden_egress"}]
    with pytest.raises(ValueError, match="pf_egress_extra_rules"):
        render_pf_conf(extra=["pass in all\nblock all"])


def test_every_service_rule_keeps_its_port():
    for rule in parse(render([compile_for("mail1"), edge_ir()]))["rules"]:
        if rule["label"].startswith(("role ", "exception ")):
            assert rule["ports"], rule["label"]


def test_connection_limit_is_source_tracking_on_tcp_passes():
    assert conn_rate({"rate": "100/second", "burst": 200}) == "200/2"
    assert conn_rate({"rate": "30/minute", "burst": 10}) == "10/20"
    text = render(edge_ir())
    assert "keep state (max-src-conn-rate 200/2, overload <warden_flood> flush global)" in text
    assert "table <warden_flood> persist" in text
    assert "max-src-conn-rate" not in render(edge_variant("no-limit"))


BROKEN = [
    ("block out log quick from { ! <trusted>, any } to any label \"x\"", "negation inside a { } list"),
    ("block out log quick proto tcp from any to any flags S/SA label \"x\"", "'flags' on a block rule"),
    ("block out log quick from ! <nosuch> to any label \"x\"", "table <nosuch> is used but not defined"),
    ("pass out quick from any to any port 25 keep state label \"x\"", "a port needs proto tcp or udp"),
    ("pass out quick inet6 proto icmp from any to any icmp-type 8 keep state label \"x\"", "icmp-type needs"),
    ("pass out quick all keep state", "every rule names its origin"),
    ("set skip on lo", "options are not allowed in an anchor"),
    ("pass out quick on { eth0 eth1 } from any to any keep stat label \"x\"", "expected state"),
    ("pass out quick all keep state label \"x\"\npass out quick all keep state label \"x\"", "duplicate rule"),
]


@pytest.mark.parametrize(("line", "problem"), BROKEN, ids=[b[1] for b in BROKEN])
def test_grammar_refuses_what_pf_would_refuse_or_misread(line, problem):
    text = "table <trusted> persist { 198.51.100.0/25 }\n" + line + "\nblock out log quick all label \"default deny\"\n"
    with pytest.raises(PfSyntaxError, match=problem):
        parse(text)


def test_an_anchor_without_its_own_catch_all_is_refused():
    text = render(compile_for("mail1")).replace('block out log quick all label "default deny"\n', "")
    with pytest.raises(PfSyntaxError, match="must end what it judges in a 'block out log quick all'"):
        parse(text)


# --------------------------------------------------------------------------- pf semantics


def rules_of(*lines):
    return parse("table <t> persist { 198.51.100.0/25 2001:db8:10::/120 }\n" + "\n".join(lines), anchor_file=False)


FLOW = {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "tcp", "dport": 25, "oif": "eth1"}


def test_last_match_wins_unless_quick():
    ruleset = rules_of('block out all label "a"', 'pass out all keep state label "b"')
    assert evaluate(ruleset, FLOW, [])["rule"] == "b"
    ruleset = rules_of('block out quick all label "a"', 'pass out all keep state label "b"')
    assert evaluate(ruleset, FLOW, []) == {"verdict": "block", "rule": "a", "direction": "out"}


def test_no_rule_means_pass_and_tables_hold_both_families():
    assert evaluate(rules_of('block out quick from <t> to any proto udp label "x"'.replace(" proto udp", "")), FLOW, [])["verdict"] == "block"
    v6 = {**FLOW, "src": "2001:db8:10::11", "dst": "2001:db8:5100::25"}
    assert evaluate(rules_of('block out quick inet from <t> to any label "x"'), v6, [])["verdict"] == "pass"
    assert evaluate(rules_of('block out quick from ! <t> to any label "x"'), {**v6, "src": "2001:db8:99::1"}, [])["verdict"] == "block"


def test_a_list_is_one_rule_per_item():
    """Why negations inside lists are refused: pf matches any item."""
    ruleset = rules_of('block out quick from { <t> 203.0.113.0/24 } to any label "x"')
    assert evaluate(ruleset, {**FLOW, "src": "203.0.113.9"}, [])["verdict"] == "block"


def test_tags_carry_from_in_to_out_and_self_is_the_box():
    ruleset = rules_of('match in on eth0 all tag IN0 label "m"',
                       'block out quick on eth1 all tagged IN0 label "fwd"',
                       'pass out quick on eth1 from self to any keep state label "own"')
    assert evaluate(ruleset, {**FLOW, "iif": "eth0"}, [])["rule"] == "fwd"
    assert evaluate(ruleset, {**FLOW, "src": "198.51.100.126"}, ["198.51.100.126"])["rule"] == "own"
    assert evaluate(ruleset, {**FLOW, "iif": "eth5"}, [])["rule"] is None


# --------------------------------------------------------------------------- against the oracle

DESTINATIONS = ["203.0.113.25", "203.0.113.53", "203.0.113.80", "203.0.113.200", "198.51.100.12", "198.51.100.13",
                "10.1.2.3", "2001:db8:5100::25", "2001:db8:5100::53", "2001:db8:5100::80", "2001:db8:10::12", "fd00::1"]
PORTS = [22, 25, 53, 80, 179, 443, 520, 521, 3128, 6667, 31337]
PROTOS = ["tcp", "udp", "icmp", 89]


def flows(sources, count, seed):
    rng = random.Random(seed)
    every = []
    for src, dst, proto in itertools.product(sources, DESTINATIONS, PROTOS):
        if ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version:
            continue
        for port in PORTS if proto in ("tcp", "udp") else [None]:
            every.append({"src": src, "dst": dst, "proto": proto, "dport": port})
    return rng.sample(every, min(count, len(every)))


def disagreements(ir, text, sample, own, iif=None, oif="eth0"):
    ruleset = parse(text)
    out = []
    for flow in sample:
        packet = {key: value for key, value in flow.items() if value is not None}
        expected = oracle(ir, {**packet, "oif": oif, **({"iif": iif} if iif else {})})
        got = evaluate(ruleset, {**flow, "iif": iif, "oif": oif}, own)
        if (expected["verdict"] == "accept") != (got["verdict"] == "pass"):
            out.append((flow, expected["reason"], got["rule"]))
    return out


@pytest.mark.parametrize("mode", ["enforce", "audit"])
@pytest.mark.parametrize("host", HOSTS)
def test_host_rules_agree_with_the_oracle(host, mode):
    ir = compile_for(host, egress_mode=mode)
    sample = flows(OWN[host] + ["198.51.100.200", "2001:db8:10::1:200"], 400, seed=HOSTS.index(host))
    assert not disagreements(ir, render(ir), sample, OWN[host])


SOURCES = ["198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.14", "198.51.100.15", "198.51.100.70",
           "198.51.100.200", "2001:db8:10::11", "2001:db8:10::13", "2001:db8:10::44", "2001:db8:10::1:200"]


@pytest.mark.parametrize("name", sorted(EDGES))
def test_forwarded_traffic_agrees_with_the_oracle(name):
    """Forwarded flows from the inside interface out of the outside one, with the
    gateway's own host policy in the same anchor (it must not judge them)."""
    ir = edge_variant(name)
    text = render([compile_for("ws1"), ir])
    sample = flows(SOURCES, 1500, seed=11)
    assert not disagreements(ir, text, sample, GATEWAY, iif="eth0", oif="eth1")
    verdicts = {oracle(ir, {**{k: v for k, v in f.items() if v is not None}, "iif": "eth0", "oif": "eth1"})["reason"].split(":")[0]
                for f in sample}
    assert {"baseline", "role mail_server", "role web_proxy", "alert", "default deny"} <= verdicts


def test_transit_and_undeclared_interfaces_agree_with_the_oracle():
    ir = edge_ir()
    text = render(ir)
    sample = flows(["203.0.113.9", "198.51.100.11"], 200, seed=3)
    assert not disagreements(ir, text, sample, GATEWAY, iif="eth1", oif="eth1")
    assert not disagreements(ir, text, sample, GATEWAY, iif="eth7", oif="eth1")


def test_the_comparison_can_fail():
    """Without the never-leave rule the evaluator passes what the oracle drops."""
    ir = edge_ir()
    text = "\n".join(line for line in render(ir).splitlines() if "special-purpose" not in line) + "\n"
    found = disagreements(ir, text, flows(SOURCES, 1500, seed=11), GATEWAY, iif="eth0", oif="eth1")
    assert found and all("special-purpose" in reason for dummy, reason, dummy2 in found)


def test_inside_interfaces_whose_names_differ_in_punctuation_get_their_own_tags():
    """pf tags carry where a packet came in; 'vlan.1' and 'vlan_1' must not share one, or one
    interface's sources would be judged by the other's anti-spoofing rule."""
    edge = {**EDGE, "inside": [{"interface": "vlan.1", "prefixes": ["198.51.100.0/26"]},
                               {"interface": "vlan_1", "prefixes": ["198.51.100.64/26", "2001:db8:10::/120"]}], "outside": "em1"}
    text = render(edge_ir(edge=edge, egress_platform="pf"))
    tags = dict(re.findall(r"^match in on (\S+) all tag (\S+)", text, re.M))
    assert len(set(tags.values())) == 3 and tags["vlan_1"] == "WE_IN_vlan_1", tags
    parse(text)


# --------------------------------------------------------------------------- a connection pf has no state for

SSH_SERVED = {"mail_server": {"serves": [{"service": "ssh", "from": ["198.51.100.0/24", "2001:db8:10::/64"]}], "allow": []}}


@pytest.mark.parametrize("served", [False, True], ids=["serves-unset", "ssh-served"])
def test_a_connection_without_state_is_picked_up_only_from_the_ssh_or_a_served_port(served):
    """pf enabled while the controller's SSH session is open has no state for it; the box's
    next packet on it (ACK without SYN) matches no stateful pass rule, whose flags are S/SA,
    and the anchor's catch-all would block it. The pickup rule creates state from it, for
    the SSH port (serves unset) or a served port and client (serves declared), and only
    then; the oracle says the same."""
    ir = compile_for("mail1", **({"egress_roles": SSH_SERVED} if served else {}))
    text = render(ir)
    pickup = [line for line in text.splitlines() if "picked up mid-stream" in line]
    assert pickup and all("flags A/SA keep state (sloppy)" in line for line in pickup)
    ruleset = parse(text)
    cut = parse("\n".join(line for line in text.splitlines() if "picked up mid-stream" not in line) + "\n")
    own = OWN["mail1"]
    for client, sport, expected in [("198.51.100.254", 22, "pass"), ("2001:db8:10::fe", 22, "pass"), ("198.51.100.254", 4444, "block"),
                                    ("203.0.113.9", 22, "block" if served else "pass")]:
        src = own[1] if ":" in client else own[0]
        flow = {"src": src, "dst": client, "proto": "tcp", "dport": 40000, "oif": "eth0", "midstream": True, "sport": sport}
        assert evaluate(ruleset, flow, own)["verdict"] == expected, (client, sport)
        assert (oracle(ir, {k: v for k, v in flow.items() if k != "oif"})["verdict"] == "accept") == (expected == "pass")
        # Without the pickup rule nothing lets the packet out: pf creates state only from a SYN.
        assert evaluate(cut, flow, own)["verdict"] == "block"
        assert evaluate(cut, {**flow, "midstream": False}, own)["verdict"] == evaluate(ruleset, {**flow, "midstream": False}, own)["verdict"]


def test_the_model_creates_state_only_from_the_flags_a_rule_allows():
    ruleset = rules_of('pass out quick proto tcp from any to any keep state label "s"', 'block out quick all label "b"')
    assert evaluate(ruleset, FLOW, [])["rule"] == "s"
    assert evaluate(ruleset, {**FLOW, "midstream": True, "sport": 22}, [])["rule"] == "b"
    anyflags = rules_of('pass out quick proto tcp from any to any flags any keep state label "s"', 'block out quick all label "b"')
    assert evaluate(anyflags, {**FLOW, "midstream": True, "sport": 22}, [])["rule"] == "s"
    for bad in ('pass out quick proto tcp from any to any flags S/A keep state label "s"',
                'pass out quick proto udp from any to any flags S/SA keep state label "s"',
                'pass out quick from any port 22 to any keep state label "s"'):
        with pytest.raises(PfSyntaxError):
            rules_of(bad)
