"""Each platform's limits and what its renderer cannot express, as render.platforms gives
them to the compile, and the renderers refusing the same from the same declarations."""

from __future__ import annotations

import pytest
from sample import compile_for, edge_ir

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import PLATFORMS
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import new_rule
from ansible_collections.warden.egress.plugins.plugin_utils.render import iptables, pf, platforms
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import device_config

LOG = {"denied": True, "rate": "10/minute", "prefix": "warden-egress"}


def test_every_platform_declares_its_limits_and_capabilities():
    assert tuple(platforms.RENDERERS) == PLATFORMS
    for platform in PLATFORMS:
        assert isinstance(platforms.limits(platform), dict)
        assert {"kinds", "owners", "connection_state", "interface"} <= set(platforms.capabilities(platform))
    # iptables' chain names (28) and LOG prefix (29) leave 18 for the table, 17 for the prefix, 15 in audit mode
    assert {key: iptables.LIMITS[key] for key in ("table", "log_prefix", "audit_log_prefix", "log_line")} == \
        {"table": 18, "log_prefix": 17, "audit_log_prefix": 15, "log_line": 29}


@pytest.mark.parametrize(("platform", "mode", "table", "log", "message"), [
    ("iptables", "enforce", "a" * 19, LOG, "egress_table: 'aaaaaaaaaaaaaaaaaaa' is too long for egress_platform iptables (at most 18 characters)"),
    ("iptables", "enforce", "t", {**LOG, "rate": "10001/second"},
     "egress_log.rate: '10001/second' is faster than egress_platform iptables can limit (at most 10000/second)"),
    ("iptables", "enforce", "t", {**LOG, "prefix": "p" * 18},
     "egress_log.prefix: 'pppppppppppppppppp' is too long for egress_platform iptables (at most 17 characters)"),
    ("iptables", "audit", "t", {**LOG, "prefix": "p" * 16},
     "egress_log.prefix: 'pppppppppppppppp' is too long for egress_platform iptables in egress_mode audit (at most 15 characters:"
     " each audit line starts 'pppppppppppppppp audit[host]: ', at most 29)"),
    ("iptables", "audit", "t", {**LOG, "prefix": "p" * 16, "denied": False}, None),
    ("iptables", "enforce", "a" * 18, {**LOG, "rate": "10000/second", "prefix": "p" * 17}, None),
    ("nftables", "audit", "a" * 32, {**LOG, "rate": "999999/second", "prefix": "p" * 24}, None),
    ("pf", "audit", "a" * 32, {**LOG, "prefix": "p" * 24}, None),
    ("ios", "enforce", "a" * 32, LOG, None),
])
def test_check_target(platform, mode, table, log, message):
    if message is None:
        platforms.check_target(platform, mode, table, log)
        return
    with pytest.raises(PolicyError) as err:
        platforms.check_target(platform, mode, table, log)
    assert str(err.value) == message


@pytest.mark.parametrize(("platform", "name", "ok"), [
    ("nftables", "eth0.10", True), ("iptables", "a" * 16, False), ("iptables", "..", False), ("pf", "vlan-1", False),
    ("pf", "em0", True), ("ios", "GigabitEthernet0/0/1", True), ("junos", "ge-0/0/1", True), ("eos", "1/1", False),
])
def test_check_interface(platform, name, ok):
    if ok:
        assert platforms.check_interface(platform, name, "egress_edge.outside") == name
        return
    with pytest.raises(PolicyError, match=rf"^egress_edge.outside: .* is not an interface name for egress_platform {platform} \("):
        platforms.check_interface(platform, name, "egress_edge.outside")


def test_check_meter():
    platforms.check_meter("iptables", {"rate": "5/hour", "burst": 120})
    platforms.check_meter("nftables", {"rate": "1/day", "burst": 100000})
    with pytest.raises(PolicyError) as err:
        platforms.check_meter("iptables", {"rate": "5/hour", "burst": 121})
    assert str(err.value) == "egress_edge.conn_limit.burst: 121 is more than a day's worth of 5/hour, which egress_platform iptables (hashlimit) cannot hold"


OWNED_ICMP = new_rule("accept", "role:x", "role x: ping", proto="icmp", users=["postfix"])
OWNED_TCP = new_rule("accept", "role:x", "role x: smtp", proto="tcp", dports=[[25, 25]], users=["postfix"])
SERVED = new_rule("unserved", "baseline", "baseline: unserved", ct_direction="reply")
IP_IN_IP = new_rule("deny", "baseline", "baseline: ip-in-ip", l4proto=4)


ALONE = "a device ACL sees each packet alone, with no local user and no connection state: it cannot match users, groups or what a host serves"


@pytest.mark.parametrize(("platform", "rule", "kind", "reason"), [
    ("nftables", OWNED_ICMP, "host", None),
    ("iptables", OWNED_TCP, "edge", "an edge rule cannot match local users or groups"),
    ("pf", OWNED_TCP, "host", None),
    ("pf", OWNED_ICMP, "host", "pf matches users only for tcp and udp, not 'icmp'"),
    ("pf", SERVED, "host", None),
    ("ios", SERVED, "edge", ALONE),
    ("junos", OWNED_TCP, "edge", ALONE),
    ("ios", IP_IN_IP, "edge", None),
    ("eos", IP_IN_IP, "edge", "IP protocol 4 cannot be rendered for arista.eos.eos_acls (it renders it as 'ip', every protocol)"),
])
def test_refusal(platform, rule, kind, reason):
    assert platforms.refusal(platform, rule, kind) == reason


def test_renderers_refuse_what_they_declare():
    ir = compile_for("mail1", egress_platform="pf")
    ir["rules"].insert(0, OWNED_ICMP)
    with pytest.raises(ValueError, match=r"^rule 'role x: ping': pf matches users only for tcp and udp, not 'icmp'$"):
        pf.render(ir)
    edge = edge_ir(egress_platform="eos")
    edge["rules"].append(IP_IN_IP)
    with pytest.raises(ValueError, match=r"^rule 'baseline: ip-in-ip': IP protocol 4 cannot be rendered for arista.eos.eos_acls"):
        device_config(edge, "eos")
    device_config(edge, "ios")
