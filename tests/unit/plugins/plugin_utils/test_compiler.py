"""Compiler: good inputs give the right IR, every bad input names its path and value."""

from __future__ import annotations

import datetime

import pytest
from sample import ADDRESSES, GROUPS, compile_for, site

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError


def allow_rules(ir):
    return [r for r in ir["rules"] if r["origin"] not in ("baseline", "alert")]


def test_mail_server_gets_smtp_to_relays_and_dns_to_resolvers_only():
    ir = compile_for("mail1")
    summary = sorted((r["family"], r["daddr_in"], r["proto"], tuple(map(tuple, r["dports"]))) for r in allow_rules(ir))
    assert summary == [
        ("ipv4", "up_internal_resolvers", "tcp", ((53, 53),)),
        ("ipv4", "up_internal_resolvers", "udp", ((53, 53),)),
        ("ipv4", "up_smtp_relays", "tcp", ((25, 25),)),
        ("ipv6", "up_internal_resolvers", "tcp", ((53, 53),)),
        ("ipv6", "up_internal_resolvers", "udp", ((53, 53),)),
        ("ipv6", "up_smtp_relays", "tcp", ((25, 25),)),
    ]
    assert ir["sets"]["up_internal_resolvers"] == {"ipv4": ["198.51.100.12/32"], "ipv6": ["2001:db8:10::12/128"]}
    assert all(r["comment"].startswith("role mail_server: ") for r in allow_rules(ir))


def test_isolated_host_gets_baseline_only():
    ir = compile_for("intranet1")
    assert allow_rules(ir) == []
    assert ir["default"] == "deny"
    assert {r["action"] for r in ir["rules"] if r["origin"] == "alert"} == {"alert"}


def test_alert_classes_come_after_every_allow_and_can_be_turned_off():
    ir = compile_for("mail1")
    origins = [r["origin"] for r in ir["rules"]]
    first_alert = origins.index("alert")
    assert all(o == "alert" for o in origins[first_alert:])
    assert [r["comment"] for r in ir["rules"][first_alert:]] == ["alert: irc", "alert: backdoor", "alert: backdoor", "alert: smtp"]
    quiet = compile_for("mail1", egress_log={"alert": []})
    assert not [r for r in quiet["rules"] if r["origin"] == "alert"]


def test_web_proxy_any_destination_has_no_address_match_and_one_rule_per_port_protocol():
    ir = compile_for("proxy1")
    anyrules = [r for r in allow_rules(ir) if r["daddr_in"] is None]
    assert [(r["family"], r["proto"], r["dports"]) for r in anyrules] == [("any", "tcp", [[80, 80]]), ("any", "tcp", [[443, 443]])]


def test_exception_applies_only_to_its_hosts_and_records_why():
    ws = compile_for("ws1")
    exc = [r for r in ws["rules"] if r["origin"] == "exception:0"]
    assert {r["family"] for r in exc} == {"ipv4", "ipv6"}
    assert ws["sets"]["exc_0"] == {"ipv4": ["203.0.113.80/32"], "ipv6": ["2001:db8:5100::80/128"]}
    assert ws["exceptions"][0]["owner"] == "finance-it" and ws["exceptions"][0]["applies"]
    mail = compile_for("mail1")
    assert not [r for r in mail["rules"] if r["origin"].startswith("exception")]
    # A host's policy lists only the exceptions naming it, not every exception of the site.
    assert mail["exceptions"] == [] and "payroll portal" not in str(mail)


def test_expired_exception_is_not_applied_and_is_reported():
    variables = site()
    variables["egress_role"] = "client"
    ir = compile_policy(variables, "ws1", ADDRESSES, GROUPS, today=datetime.date(2100, 1, 1))
    assert not [r for r in ir["rules"] if r["origin"].startswith("exception")]
    assert "expired on 2099-12-31" in ir["warnings"][0]


def test_prefixes_are_merged_and_sorted():
    ir = compile_for("mail1", egress_upstreams={
        **site()["egress_upstreams"],
        "smtp_relays": ["203.0.113.26", "203.0.113.24/31", "203.0.113.27", "2001:db8:5100::/65", "2001:db8:5100:0:8000::/65"],
    })
    assert ir["sets"]["up_smtp_relays"] == {"ipv4": ["203.0.113.24/30"], "ipv6": ["2001:db8:5100::/64"]}


def test_output_is_deterministic():
    assert compile_for("mail1") == compile_for("mail1")


def test_user_role_overrides_builtin_and_user_service_extends_catalogue():
    ir = compile_for(
        "mail1",
        egress_services={"backweb": {"proto": "tcp", "ports": [370, "8000-8010", 8005]}},
        egress_roles={"mail_server": {"allow": [{"service": "backweb", "to": "smtp_relays"}]}},
    )
    rules = allow_rules(ir)
    assert {r["proto"] for r in rules} == {"tcp"}
    assert rules[0]["dports"] == [[370, 370], [8000, 8010]]


def test_no_duplicate_rules_when_roles_overlap():
    ir = compile_for("mail1", egress_role=["mail_server", "client"])
    keys = [tuple((k, repr(v)) for k, v in r.items() if k not in ("origin", "comment")) for r in ir["rules"]]
    assert len(keys) == len(set(keys))


def test_tcp_and_udp_service_keeps_its_ports_on_both_protocols():
    """Capirca pitfall: a tcp+udp term must not lose its ports."""
    ir = compile_for("dns1")
    dns = allow_rules(ir)
    assert dns and all(r["dports"] == [[53, 53]] for r in dns)
    assert {r["proto"] for r in dns} == {"tcp", "udp"}


BAD = [
    # (overrides, path, fragment of the problem)
    ({"egress_platform": "iptables", "egress_table": "warden_egress_site_a"}, "egress_table", "is too long for egress_platform iptables"),
    ({"egress_platform": "iptables", "egress_log": {"prefix": "warden-egress-site-a"}}, "egress_log.prefix", "is too long for egress_platform iptables"),
    ({"egress_upstreams": {"isp_smtp": ["198.51.100.25", "198.51.100.300"]}, "egress_role": "isolated"},
     "egress_upstreams.isp_smtp[1]", "is not an IP address or prefix"),
    ({"egress_trusted_prefixes": ["198.51.100.1/25"]}, "egress_trusted_prefixes[0]", "has host bits set (did you mean 198.51.100.0/25?)"),
    ({"egress_trusted_prefixes": []}, "egress_trusted_prefixes", "must not be empty"),
    ({"egress_trusted_prefixes": None}, "egress_trusted_prefixes", "is required"),
    ({"egress_role": "mailserver"}, "egress_role", "is not a known role"),
    ({"egress_role": []}, "egress_role", "must not be empty"),
    ({"egress_role": ["client", "client"]}, "egress_role", "lists a role twice"),
    ({"egress_roles": {"r": {"allow": [{"service": "smtpx", "to": "smtp_relays"}]}}, "egress_role": "r"},
     "egress_roles.r.allow[0].service", "is not a known service"),
    ({"egress_roles": {"r": {"allow": [{"service": "smtp", "to": "nowhere"}]}}, "egress_role": "r"},
     "egress_roles.r.allow[0].to", "is not defined in egress_upstreams"),
    ({"egress_roles": {"r": {"allow": [{"service": [], "to": "any"}]}}, "egress_role": "r"},
     "egress_roles.r.allow[0].service", "must not be empty"),
    ({"egress_roles": {"r": {"allow": [{"service": "smtp"}]}}, "egress_role": "r"}, "egress_roles.r.allow[0].to", "is required"),
    ({"egress_roles": {"r": {}}, "egress_role": "r"}, "egress_roles.r.allow", "is required"),
    ({"egress_upstreams": {"x": "group:nogroup"}}, "egress_upstreams.x", "not in the inventory"),
    ({"egress_upstreams": {"x": "group:empty"}}, "egress_upstreams.x", "has no hosts"),
    ({"egress_upstreams": {"x": []}}, "egress_upstreams.x", "must not be empty"),
    ({"egress_upstreams": {"x": ["nohost"]}}, "egress_upstreams.x[0]", "is not an IP address or prefix, an inventory host"),
    ({"egress_upstreams": {"any": ["203.0.113.1"]}}, "egress_upstreams.any", "redefines the built-in upstream"),
    ({"egress_services": {"s": {"proto": "tcp", "ports": [70000]}}}, "egress_services.s.ports[0]", "is out of range"),
    ({"egress_services": {"s": {"proto": "tcp", "ports": [0]}}}, "egress_services.s.ports[0]", "is out of range"),
    ({"egress_services": {"s": {"proto": "tcp", "ports": ["90-80"]}}}, "egress_services.s.ports[0]", "is an empty range"),
    ({"egress_services": {"s": {"proto": "tcp", "ports": [True]}}}, "egress_services.s.ports[0]", "is not a port"),
    ({"egress_services": {"s": {"proto": "tcp", "ports": []}}}, "egress_services.s.ports", "must not be empty"),
    ({"egress_services": {"s": {"proto": "tcp"}}}, "egress_services.s.ports", "is required"),
    ({"egress_services": {"s": {"proto": "sctp", "ports": [1]}}}, "egress_services.s.proto", "is not a supported protocol"),
    ({"egress_services": {"s": {"proto": "icmp", "ports": [1]}}}, "egress_services.s.ports", "makes no sense for icmp"),
    ({"egress_services": {"s": {"proto": "tcp", "port": [1]}}}, "egress_services.s.port", "is not a known key"),
    ({"egress_mode": "monitor"}, "egress_mode", "is not one of"),
    ({"egress_platform": "ipfw"}, "egress_platform", "is not one of"),
    ({"egress_log": {"rate": "lots"}}, "egress_log.rate", "is not a rate"),
    ({"egress_log": {"denied": "maybe"}}, "egress_log.denied", "must be true or false"),
    ({"egress_log": {"alert": ["irc", "worms"]}}, "egress_log.alert[1]", "is not an alert class"),
    ({"egress_exceptions": [{"hosts": ["ws1"], "service": "https", "to": ["203.0.113.80"], "reason": "r", "owner": "o"}]},
     "egress_exceptions[0].expires", "is required"),
    ({"egress_exceptions": [{"hosts": ["ghost"], "service": "https", "to": ["203.0.113.80"], "reason": "r", "owner": "o", "expires": "2099-01-01"}]},
     "egress_exceptions[0].hosts[0]", "is not a host of the inventory"),
    ({"egress_exceptions": [{"hosts": ["ws1"], "service": "https", "to": ["203.0.113.80"], "reason": "r", "owner": "o", "expires": "soon"}]},
     "egress_exceptions[0].expires", "is not a date"),
]

# Strings that could inject rule text, everywhere a value reaches the ruleset.
INJECTIONS = ['x"; flush ruleset; "', "a\nflush ruleset", "a;b", "a{b}", "a b", "a'b"]
for text in INJECTIONS:
    BAD += [
        ({"egress_upstreams": {text: ["203.0.113.1"]}}, f"egress_upstreams.{text}", "is not a valid upstream name"),
        ({"egress_upstreams": {"x": [text]}}, "egress_upstreams.x[0]", "is not an IP address"),
        ({"egress_services": {text: {"proto": "tcp", "ports": [1]}}}, f"egress_services.{text}", "is not a valid service name"),
        ({"egress_services": {"s": {"proto": "tcp", "ports": [text]}}}, "egress_services.s.ports[0]", "is not a port"),
        ({"egress_roles": {text: {"allow": []}}}, f"egress_roles.{text}", "is not a valid role name"),
        ({"egress_log": {"prefix": text}}, "egress_log.prefix", "is not a usable log prefix"),
        ({"egress_table": text}, "egress_table", "is not a valid table name"),
        ({"egress_trusted_prefixes": [text]}, "egress_trusted_prefixes[0]", "is not an IP address or prefix"),
    ]


@pytest.mark.parametrize(("overrides", "path", "problem"), BAD, ids=[f"{i}:{b[1]}" for i, b in enumerate(BAD)])
def test_bad_input_names_path_and_value(overrides, path, problem):
    with pytest.raises(PolicyError) as info:
        compile_for("mail1", **overrides)
    assert info.value.path == path
    assert problem in str(info.value)
    assert str(info.value).startswith(f"{path}: ")


def test_error_message_quotes_the_value():
    with pytest.raises(PolicyError) as info:
        compile_for("mail1", egress_upstreams={"isp_smtp": ["198.51.100.25", "198.51.100.300"]}, egress_role="isolated")
    assert str(info.value) == "egress_upstreams.isp_smtp[1]: '198.51.100.300' is not an IP address or prefix"


def test_host_upstream_without_address_is_an_error():
    variables = site(egress_role="client")
    variables["egress_upstreams"]["internal_proxies"] = ["proxy1"]
    with pytest.raises(PolicyError, match=r"^hostvars\[proxy1\]\.egress_addresses: \[\] is unset or empty, .*: host proxy1 has no address, "
                                          r"which egress_upstreams.internal_proxies\[0\] needs"):
        compile_policy(variables, "ws1", {**ADDRESSES, "proxy1": []}, GROUPS)
