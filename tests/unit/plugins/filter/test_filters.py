"""Filters are thin: they call plugin_utils and turn its errors into AnsibleFilterError."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from sample import ADDRESSES, GROUPS, ROLES, compile_for, edge_ir, site

from ansible_collections.warden.egress.plugins.filter.expect_flows import expect_flows
from ansible_collections.warden.egress.plugins.filter.explain import explain
from ansible_collections.warden.egress.plugins.filter.flow_table import flow_table
from ansible_collections.warden.egress.plugins.filter.local_ids import local_ids
from ansible_collections.warden.egress.plugins.filter.policy import policy
from ansible_collections.warden.egress.plugins.filter.to_device_acls import to_device_acls
from ansible_collections.warden.egress.plugins.filter.to_iptables import to_iptables
from ansible_collections.warden.egress.plugins.filter.to_nftables import to_nftables
from ansible_collections.warden.egress.plugins.filter.to_pf import to_pf


def hostvars(**overrides):
    out = {}
    for host, addresses in ADDRESSES.items():
        out[host] = {**site(**overrides), "egress_role": ROLES[host], "egress_addresses": addresses, "unrelated": "x"}
    out["inet"] = {"ansible_host": "203.0.113.99"}
    return out


def test_policy_reads_hostvars_and_groups():
    ir = policy(hostvars(), "mail1", GROUPS)
    assert ir == compile_for("mail1")


def test_policy_uses_ansible_host_when_it_is_an_address():
    hv = hostvars()
    hv["mail1"]["egress_upstreams"] = {**hv["mail1"]["egress_upstreams"], "smtp_relays": ["inet"]}
    ir = policy(hv, "mail1", GROUPS)
    assert ir["sets"]["up_smtp_relays"]["ipv4"] == ["203.0.113.99/32"]


def test_policy_error_names_host_path_and_value():
    hv = hostvars(egress_trusted_prefixes=["198.51.100.0/33"])
    with pytest.raises(AnsibleFilterError, match=r"host mail1: egress_trusted_prefixes\[0\]: '198.51.100.0/33' is not an IP address or prefix"):
        policy(hv, "mail1", GROUPS)


def test_policy_unknown_target():
    with pytest.raises(AnsibleFilterError, match="not an inventory host"):
        policy(hostvars(), "nohost", GROUPS)


def test_to_nftables_and_explain():
    ir = compile_for("mail1")
    assert to_nftables(ir).startswith("# warden.egress policy for mail1")
    decision = explain(ir, {"src": "198.51.100.11", "dst": "203.0.113.80", "dport": 80})
    assert decision["verdict"] == "drop" and decision["origin"] == "default"
    with pytest.raises(AnsibleFilterError, match="Policy IR"):
        to_nftables({"x": 1})


def test_to_iptables():
    files = to_iptables(compile_for("mail1"))
    assert set(files) == {"ipset", "ipv4", "ipv6", "table", "generation", "chains"}
    assert "-I OUTPUT 1 -m comment --comment \"warden.egress\" -j warden_egress-output" in files["ipv4"]
    with pytest.raises(AnsibleFilterError, match="Policy IR"):
        to_iptables([])
    long_prefix = compile_for("mail1", egress_log={"prefix": "a-rather-long-log-prefix"})
    with pytest.raises(AnsibleFilterError, match="egress_log.prefix"):
        to_iptables(long_prefix)


def test_to_pf():
    assert "Load with: pfctl -a site_egress -f FILE" in to_pf(compile_for("mail1"), anchor="site_egress")
    with pytest.raises(AnsibleFilterError, match="warden.egress.to_pf: refusing to render unsafe anchor"):
        to_pf(compile_for("mail1"), anchor="x; rm")


def test_explain_validates_its_arguments_from_documentation():
    with pytest.raises(AnsibleFilterError, match="proto"):
        explain(compile_for("mail1"), {"src": "198.51.100.11", "dst": "203.0.113.80", "dport": 80, "proto": "gre"})


def test_expect_flows_fills_source_and_verdict():
    flows = expect_flows(compile_for("mail1"), [
        {"dst": "203.0.113.25", "port": 25},
        {"dst": "2001:db8:5100::80", "port": 80, "name": "web"},
        {"dst": "203.0.113.25", "port": 25, "src": "198.51.100.200"},
    ], ADDRESSES["mail1"])
    assert [(f["expect"], f["src"]) for f in flows] == [("allowed", None), ("denied", None), ("denied", "198.51.100.200")]
    assert flows[1]["name"] == "web" and flows[2]["reason"] == "baseline: anti-spoofing IPv4"


def test_expect_flows_errors():
    with pytest.raises(AnsibleFilterError, match=r"egress_verify_flows\[0\].dst: '203.0.113.256'"):
        expect_flows(compile_for("mail1"), [{"dst": "203.0.113.256", "port": 25}], ADDRESSES["mail1"])
    with pytest.raises(AnsibleFilterError, match="no IPv6 address"):
        expect_flows(compile_for("mail1"), [{"dst": "2001:db8::1", "port": 25}], ["198.51.100.11"])


def test_flow_table_counts_mismatches():
    rows = [
        {"host": "mail1", "name": "a", "dst": "203.0.113.25", "port": 25, "expect": "allowed", "observed": "allowed", "outcome": "connected", "ok": True},
        {"host": "mail1", "name": "b", "dst": "203.0.113.80", "port": 80, "expect": "denied", "observed": "allowed", "outcome": "connected", "ok": False},
    ]
    text = flow_table(rows)
    assert "MISMATCH" in text.splitlines()[3]
    assert text.rstrip().endswith("2 flows: 1 as expected, 1 mismatched")


def test_expect_flows_combines_host_and_edge_on_the_path():
    edge = [{"policy": edge_ir()}]
    flows = [
        {"dst": "203.0.113.9", "port": 80, "name": "proxy to any http"},
        {"dst": "203.0.113.200", "port": 80, "name": "never-leave destination"},
        {"dst": "198.51.100.12", "port": 53, "proto": "udp", "name": "inside, does not cross"},
    ]
    proxy = expect_flows(compile_for("proxy1"), flows, ADDRESSES["proxy1"], edge)
    assert [(f["expect"], f["reason"]) for f in proxy] == [
        ("allowed", "edge gw1: role web_proxy: http to any"),
        ("denied", "edge gw1: baseline: special-purpose, private, multicast and broadcast destinations"),
        ("allowed", "role web_proxy: dns to internal_resolvers"),
    ]
    # A host with no policy of its own: only the edge decides, and only for what crosses it.
    seg = expect_flows(None, flows[:2] + [{"dst": "203.0.113.80", "port": 443}], ["198.51.100.70"], edge)
    assert [f["expect"] for f in seg] == ["denied", "denied", "denied"]
    with pytest.raises(AnsibleFilterError, match="crosses no policy"):
        expect_flows(None, flows[2:], ["198.51.100.70"], edge)
    with pytest.raises(AnsibleFilterError, match=r"egress_gateway\[0\].interface: 'eth9'"):
        expect_flows(None, flows, ["198.51.100.70"], [{"policy": edge_ir(), "interface": "eth9"}])


def test_to_device_acls_uses_the_policy_platform_and_names_refusals():
    data = to_device_acls(edge_ir(egress_platform="eos"))
    assert data["names"] == {"ipv4": "WARDEN-EGRESS-V4", "ipv6": "WARDEN-EGRESS-V6"}
    assert "subnet_address" in str(data["acls"]) and data["interfaces"][0]["name"] == "eth1"
    assert "remarks" in str(to_device_acls(edge_ir(), platform="ios")["acls"])
    with pytest.raises(AnsibleFilterError, match=r"to_device_acls: egress_platform: 'nftables' has no device ACL renderer"):
        to_device_acls(edge_ir())
    with pytest.raises(AnsibleFilterError, match="to_device_acls: input is not a Policy IR"):
        to_device_acls({"kind": "edge"})


@pytest.mark.parametrize(("change", "problem"), [
    (lambda ir: ir.update(schema=2), "it is schema 2, not 1"),
    (lambda ir: ir.update(hook="forward"), "it is kind 'host' with hook 'forward'"),
    (lambda ir: ir.pop("sets"), "it has no sets"),
    (lambda ir: ir["rules"][3].update(daddr_in="nowhere"), r"it has rules\[3\] naming set 'nowhere', which it does not define"),
    (lambda ir: ir["rules"][0].pop("sports"), r"it has rules\[0\] with fields \[\] unknown and \['sports'\] missing"),
    (lambda ir: ir["rules"][0].update(dport=[[1, 2]]), r"it has rules\[0\] with fields \['dport'\] unknown"),
    (lambda ir: ir["rules"][0].update(action="allow"), r"it has rules\[0\] with action 'allow'"),
    # values that cannot be looked up (a list where a name belongs) are named, not a TypeError
    (lambda ir: ir.update(kind=["host"]), r"it is kind \['host'\] with hook 'output'"),
    (lambda ir: ir["rules"][3].update(daddr_in=["x"]), r"it has rules\[3\] naming set \['x'\], which it does not define"),
    (lambda ir: ir["rules"][0].update(action=["accept"]), r"it has rules\[0\] with action \['accept'\]"),
])
@pytest.mark.parametrize("render", [to_nftables, to_iptables, to_pf])
def test_every_renderer_door_checks_the_ir_schema(change, problem, render):
    ir = compile_for("mail1")
    render(ir)
    change(ir)
    with pytest.raises(AnsibleFilterError, match=f"{render.__name__}: input is not a Policy IR .*: {problem}"):
        render(ir)
    with pytest.raises(AnsibleFilterError, match=rf"local_ids: input\[0\] is not a Policy IR .*: {problem}"):
        local_ids([ir], "mail1")
