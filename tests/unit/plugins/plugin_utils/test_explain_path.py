"""explain_path: a flow given as on the command line, checked, then judged by every policy on
its path (the source host's own, each gateway whose inside prefixes hold the source), each
decision the oracle's."""

from __future__ import annotations

import datetime

import pytest
from sample import ADDRESSES, EDGE, GROUPS, ROLES, SEGMENTS, site

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.explain import explain_site, parse_flow
from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import compile_site

TODAY = datetime.date(2030, 1, 1)
ROUTER_EDGE = {"inside": [{"interface": "ge-0/0/0", "prefixes": ["2001:db8:10::/120"]}], "outside": "ge-0/0/1"}


def host_vars(roles: dict | None = None, **extra_hosts) -> dict:
    shared = site(egress_segments=SEGMENTS, **({"egress_roles": roles} if roles else {}))
    out = {host: {**shared, "egress_role": role} for host, role in ROLES.items()}
    out["gw1"] = {**shared, "egress_edge": EDGE}
    out["rtr6"] = {**shared, "egress_edge": ROUTER_EDGE, "egress_platform": "junos"}
    out.update({host: {**shared, **values} for host, values in extra_hosts.items()})
    return out


def addresses(extra: dict | None = None) -> dict:
    return {**ADDRESSES, "printer": ["198.51.100.30"], **(extra or {})}


def question(src, dst, port=None, proto=None, **more) -> dict:
    """The explain module's options, as the playbook gives them."""
    return {"src": src, "dst": dst, "port": port, "proto": proto, **more}


def explained(src: str, dst: str, port=None, proto=None, extra: dict | None = None, user=None, group=None, **extra_hosts) -> dict:
    return explain_site(host_vars(**extra_hosts), addresses(extra), GROUPS, parse_flow(question(src, dst, port, proto, user=user, group=group)),
                        today=TODAY)


@pytest.mark.parametrize(("args", "flow"), [
    (("198.51.100.11", "203.0.113.25", "25", None), {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "tcp", "dport": 25}),
    ((" 2001:db8:10::11", "2001:DB8:5100::53", 53, "udp"), {"src": "2001:db8:10::11", "dst": "2001:db8:5100::53", "proto": "udp", "dport": 53}),
    (("198.51.100.11", "203.0.113.25", None, "icmp"), {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "icmp"}),
    (("198.51.100.11", "203.0.113.25", "", "icmp"), {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "icmp"}),
], ids=["tcp-port-as-text", "ipv6-udp", "icmp", "icmp-empty-port"])
def test_parse_flow(args, flow):
    assert parse_flow(question(*args)).to_dict() == flow


@pytest.mark.parametrize(("args", "path", "value"), [
    ((None, "203.0.113.25", 25, None), "src", None),
    (("", "203.0.113.25", 25, None), "src", ""),
    (("198.51.100.11", None, 25, None), "dst", None),
    (("198.51.100.0/25", "203.0.113.25", 25, None), "src", "198.51.100.0/25"),
    (("198.51.100.11", "2001:db8::1", 25, None), "dst", "2001:db8::1"),
    (("198.51.100.11", "203.0.113.25", 0, None), "port", 0),
    (("198.51.100.11", "203.0.113.25", "65536", None), "port", "65536"),
    (("198.51.100.11", "203.0.113.25", True, None), "port", True),
    (("198.51.100.11", "203.0.113.25", "-1", None), "port", "-1"),
    (("198.51.100.11", "203.0.113.25", None, "tcp"), "port", None),
    (("198.51.100.11", "203.0.113.25", 7, "icmp"), "port", 7),
    (("198.51.100.11", "203.0.113.25", 25, "TCP"), "proto", "TCP"),
    (("198.51.100.11", "203.0.113.25", 25, 6), "proto", 6),
])
def test_parse_flow_refuses_bad_input_naming_the_variable(args, path, value):
    with pytest.raises(PolicyError) as err:
        parse_flow(question(*args))
    assert (err.value.path, err.value.value) == (path, value)


WEB_MAIL = {"web_mail": {"allow": [{"service": "smtp", "to": "smtp_relays", "users": ["postfix"]},
                                   {"service": "smtp", "to": "smtp_relays", "groups": ["mail"]}]}}


def asked(**who) -> dict:
    """mail1 (role web_mail: only postfix, or the group mail, may send mail) mails the relay, as ``who``."""
    return explain_site(host_vars(WEB_MAIL, mail1={"egress_role": "web_mail"}), addresses(), GROUPS,
                        parse_flow(question("198.51.100.11", "203.0.113.25", "25", **who)), today=TODAY)


def test_a_user_the_role_names_gets_out_and_another_does_not():
    postfix = asked(user="postfix")
    assert postfix["lines"][0] == "flow tcp/25 from 198.51.100.11 (host mail1, role web_mail) to 203.0.113.25, sent as user postfix"
    assert (postfix["policies"][0]["host"], postfix["policies"][0]["verdict"], postfix["verdict"]) == ("mail1", "accept", "allowed")
    assert postfix["flow"] == {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "tcp", "dport": 25, "user": "postfix"}
    other = asked(user="www-data")
    assert (other["policies"][0]["verdict"], other["verdict"]) == ("drop", "denied")
    assert other["lines"][-1] == "overall: DENIED by the host policy of mail1"
    nobody = asked()
    assert nobody["verdict"] == "denied" and "sent as" not in nobody["lines"][0]
    grouped = asked(user="www-data", group="mail")
    assert grouped["verdict"] == "allowed" and grouped["lines"][0].endswith(", sent as user www-data, group mail")
    # the numbers of the role's names are looked up on the host: here a number is no name's
    assert asked(user="107")["verdict"] == "denied"


@pytest.mark.parametrize(("who", "path", "value"), [
    ({"user": "post fix"}, "user", "post fix"), ({"group": "٣٣"}, "group", "٣٣"), ({"user": True}, "user", True),
])
def test_a_bad_user_or_group_is_named(who, path, value):
    with pytest.raises(PolicyError) as err:
        parse_flow(question("198.51.100.11", "203.0.113.25", 25, **who))
    assert (err.value.path, err.value.value) == (path, value)


def test_a_host_behind_two_gateways_meets_its_own_policy_then_each_edge():
    result = explained("2001:db8:10::11", "2001:db8:5100::25", 25)
    assert [(p["host"], p["kind"], p["platform"]) for p in result["policies"]] == [
        ("mail1", "host", "nftables"), ("gw1", "edge", "nftables"), ("rtr6", "edge", "junos")]
    assert result["source"] == {"kind": "host", "name": "mail1", "roles": ["mail_server"]}
    assert result["verdict"] == "allowed"
    assert result["lines"][-1] == "overall: ALLOWED by every policy on the path (3)"
    # each decision is the oracle's on that policy
    policies = dict(compile_site(host_vars(), addresses(), GROUPS, today=TODAY))
    flow = {"src": "2001:db8:10::11", "dst": "2001:db8:5100::25", "proto": "tcp", "dport": 25}
    assert result["policies"][0]["reason"] == evaluate(policies["mail1"][0], flow)["reason"]
    assert result["policies"][2]["iif"] == "ge-0/0/0" and result["policies"][2]["oif"] == "ge-0/0/1"


def test_ipv4_meets_only_the_gateways_whose_inside_prefixes_hold_it():
    result = explained("198.51.100.11", "203.0.113.80", 443)
    assert [p["host"] for p in result["policies"]] == ["mail1", "gw1"]
    assert result["verdict"] == "denied"
    assert result["lines"][-1] == "overall: DENIED by the host policy of mail1"


def test_the_first_policy_that_drops_decides_and_an_exception_is_named():
    result = explained("198.51.100.14", "203.0.113.80", 443)  # ws1's exception: https to the payroll portal
    assert [(p["host"], p["verdict"], p["origin"]) for p in result["policies"]] == [
        ("ws1", "accept", "exception:0"), ("gw1", "accept", "exception:0")]
    assert result["lines"][1] == "ws1: host policy (nftables): ALLOWED by rule 16 (exception:0): exception 0: https"


def test_a_gateway_is_not_on_the_path_of_its_own_traffic():
    result = explained("198.51.100.20", "203.0.113.53", 53, "udp",
                       gw1={"egress_edge": EDGE, "egress_role": "dns_resolver"}, extra={"gw1": ["198.51.100.20"]})
    assert [p["host"] for p in result["policies"]] == ["gw1"]
    assert result["policies"][0]["kind"] == "host"


def test_a_segment_and_a_host_without_a_role_meet_only_the_edge():
    result = explained("198.51.100.66", "203.0.113.53", 53, "udp")
    assert result["source"]["kind"] == "segment" and result["source"]["name"] == "workstations"
    assert [(p["host"], p["kind"]) for p in result["policies"]] == [("gw1", "edge")]
    result = explained("198.51.100.30", "203.0.113.53", 53, "udp", printer={})
    assert result["source"] == {"kind": "host", "name": "printer", "roles": []}
    assert result["lines"][-1] == "overall: DENIED by the edge policy of gw1"


def test_a_source_outside_the_inventory_or_on_no_path_is_refused():
    with pytest.raises(PolicyError) as err:
        explained("192.0.2.1", "203.0.113.53", 53)
    assert err.value.path == "src" and "no inventory host" in str(err.value)
    with pytest.raises(PolicyError) as err:
        explained("192.0.2.30", "203.0.113.53", 53, extra={"lab": ["192.0.2.30"]}, lab={})
    assert err.value.path == "src" and "(host lab) crosses no policy" in str(err.value)
    with pytest.raises(PolicyError) as err:
        explain_site({"printer": {"egress_addresses": ["198.51.100.30"]}}, {"printer": ["198.51.100.30"]}, {},
                     parse_flow(question("198.51.100.30", "203.0.113.53", 53)), today=TODAY)
    assert err.value.path == "src" and "no host has an egress_role or an egress_edge" in str(err.value)


def test_a_bad_inventory_value_names_its_host():
    with pytest.raises(PolicyError) as err:
        explained("198.51.100.11", "203.0.113.25", 25, mail1={"egress_role": "mailserver"})
    assert (err.value.host, err.value.path) == ("mail1", "egress_role")


def test_segments_and_never_leave_are_read_as_the_edge_compile_reads_them():
    """explain (through the learn site) reads egress_segments and egress_edge.never_leave with
    the edge compile's parsers: a prefix the compile accepts (with spaces around it) is read,
    and a bad one is an error naming the variable and the value, not a bare ValueError."""
    spaced = {name: {**spec, "prefixes": [f" {p} " for p in spec["prefixes"]]} for name, spec in SEGMENTS.items()}
    shared = site(egress_segments=spaced)
    hosts = {**{host: {**shared, "egress_role": role} for host, role in ROLES.items()},
             "gw1": {**shared, "egress_edge": {**EDGE, "never_leave": [" 203.0.113.200/32"]}}}
    result = explain_site(hosts, addresses(), GROUPS, parse_flow(question("198.51.100.66", "203.0.113.53", 53, "udp")), today=TODAY)
    assert result["source"]["kind"] == "segment" and result["source"]["name"] == "workstations"
    name = next(iter(SEGMENTS))
    for bad, path in [({**shared, "egress_segments": {name: {**SEGMENTS[name], "prefixes": ["198.51.100.65/28"]}}},
                       f"egress_segments.{name}.prefixes[0]"),
                      ({**shared, "egress_edge": {**EDGE, "never_leave": ["203.0.113.300/32"]}}, "egress_edge.never_leave[0]")]:
        with pytest.raises(PolicyError) as err:
            explain_site({**hosts, "gw1": {**bad, "egress_edge": bad.get("egress_edge", EDGE)}}, addresses(), GROUPS,
                         parse_flow(question("198.51.100.66", "203.0.113.53", 53, "udp")), today=TODAY)
        assert err.value.path == path, err.value
