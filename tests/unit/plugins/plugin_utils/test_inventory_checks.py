"""Inventory mistakes that used to pass silently: each is now an error naming both places, or
a warning naming what to look at; unknown names come with a suggestion; every missing key is
named; exceptions about to expire are reported before any host is touched."""

from __future__ import annotations

import datetime

import pytest
from ansible.errors import AnsibleFilterError
from sample import ADDRESSES, EDGE, GROUPS, ROLES, compile_for, edge_ir, site

from ansible_collections.warden.egress.plugins.filter.policy import policy
from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError

TODAY = datetime.date(2030, 6, 1)


def edge_with(addresses=None, roles=None, segments=None, **overrides):
    variables = site(egress_edge=EDGE, egress_segments=segments or {}, **overrides)
    return compile_edge(variables, "gw1", addresses or ADDRESSES, GROUPS, roles or dict(ROLES), today=TODAY)


# ----------------------------------------------------------------------------- one source, one set of roles

def test_two_hosts_with_one_address_is_an_error_naming_both():
    addresses = {**ADDRESSES, "ws1": ["198.51.100.11", "2001:db8:10::14"]}  # mail1's IPv4 address
    with pytest.raises(PolicyError, match=r"hostvars\[ws1\]\.egress_addresses: '198\.51\.100\.11' is also an address of mail1 "
                                          r"\(hostvars\[mail1\]\.egress_addresses\)"):
        edge_with(addresses=addresses)


def test_overlapping_segments_with_different_roles_is_an_error_naming_both():
    segments = {
        "lan": {"prefixes": ["198.51.100.64/26"], "role": "client"},
        "servers": {"prefixes": ["198.51.100.96/28"], "role": "mail_server"},
    }
    with pytest.raises(PolicyError, match=r"egress_segments\.servers\.prefixes: '198\.51\.100\.96/28' overlaps 198\.51\.100\.64/26 of "
                                          r"egress_segments\.lan\.prefixes with other roles \(mail_server against client\)"):
        edge_with(segments=segments)
    # The same nesting with the same role is fine, and so are segments apart.
    edge_with(segments={**segments, "servers": {"prefixes": ["198.51.100.96/28"], "role": "client"}})
    edge_with(segments={**segments, "servers": {"prefixes": ["198.51.100.32/28"], "role": "mail_server"}})


def test_overlap_is_found_whatever_the_order_and_nesting():
    segments = {
        "a_wide": {"prefixes": ["198.51.100.0/25"], "role": "client"},
        "b_same": {"prefixes": ["198.51.100.0/27"], "role": "client"},
        "c_other": {"prefixes": ["198.51.100.40/29", "2001:db8:10::80/121"], "role": "client"},
        "d_v6": {"prefixes": ["2001:db8:10::/120"], "role": "isolated"},
    }
    with pytest.raises(PolicyError, match=r"egress_segments\.c_other\.prefixes: '2001:db8:10::80/121' overlaps 2001:db8:10::/120"):
        edge_with(segments=segments, egress_trusted_prefixes=["198.51.100.0/24", "2001:db8:10::/64"])


def test_a_host_inside_a_segment_of_other_roles_is_a_warning():
    segments = {"lan": {"prefixes": ["198.51.100.0/28"], "role": "client"}}  # holds mail1 .11 (mail_server)
    warnings = edge_with(segments=segments)["warnings"]
    assert any(w.startswith("hostvars[mail1].egress_addresses: 198.51.100.11/32 lies in 198.51.100.0/28 of egress_segments.lan.prefixes")
               for w in warnings), warnings
    assert not any("hostvars[ws1]" in w for w in warnings)  # ws1 (client) in a client segment is fine


def test_inside_interfaces_whose_names_differ_only_in_punctuation_get_their_own_sets():
    edge = {**EDGE, "inside": [{"interface": "eth-0", "prefixes": ["198.51.100.0/26"]},
                               {"interface": "eth_0", "prefixes": ["198.51.100.64/26", "2001:db8:10::/120"]}]}
    ir = edge_ir(edge=edge)
    spoofing = {r["iif"][0]: r["saddr_not_in"] for r in ir["rules"] if r["comment"].startswith("baseline: anti-spoofing on")}
    assert len(set(spoofing.values())) == 2
    assert ir["sets"][spoofing["eth-0"]]["ipv4"] == ["198.51.100.0/26"]
    assert ir["sets"][spoofing["eth_0"]]["ipv4"] == ["198.51.100.64/26"]


# ----------------------------------------------------------------------------- wide port ranges

def test_a_wide_port_range_warns_naming_the_service_and_who_allows_it():
    services = {"everything": {"proto": "tcp", "ports": ["1-65535"]}, "some": {"proto": "tcp", "ports": ["2000-3023"]}}
    roles = {"leaky": {"allow": [{"service": ["everything", "some"], "to": "smtp_relays"}]}}
    ir = compile_for("mail1", egress_services=services, egress_roles=roles, egress_role="leaky")
    assert [w for w in ir["warnings"] if w.startswith("service ")] == [
        "service everything opens 65535 ports (more than 1024; a range that wide also lets out the alert classes inside it), allowed by role leaky",
    ]
    edge = edge_with(egress_services=services, egress_roles=roles, roles={**ROLES, "mail1": "leaky"})
    assert any(w.startswith("service everything opens 65535 ports") and w.endswith("allowed by role leaky") for w in edge["warnings"])
    # 1,025 ports warn, 1,024 do not.
    narrow = compile_for("mail1", egress_services={"some": {"proto": "tcp", "ports": ["2000-3023"]}},
                         egress_roles={"r": {"allow": [{"service": "some", "to": "any"}]}}, egress_role="r")
    assert not [w for w in narrow["warnings"] if w.startswith("service ")]


# ----------------------------------------------------------------------------- suggestions and messages

@pytest.mark.parametrize(("overrides", "message"), [
    ({"egress_role": "mailserver"}, r"egress_role: 'mailserver' is not a known role \(did you mean mail_server\? known roles: client, dns_resolver"),
    ({"egress_roles": {"r": {"allow": [{"service": "smpt", "to": "smtp_relays"}]}}, "egress_role": "r"},
     r"egress_roles\.r\.allow\[0\]\.service: 'smpt' is not a known service \(did you mean smtp\?"),
    ({"egress_roles": {"r": {"allow": [{"service": "smtp", "to": "smtp_relay"}]}}, "egress_role": "r"},
     r"egress_roles\.r\.allow\[0\]\.to: 'smtp_relay' is not defined in egress_upstreams \(did you mean smtp_relays\?"),
    ({"egress_upstreams": {"internal_resolvers": "group:dns_resolver"}},
     r"egress_upstreams\.internal_resolvers: 'group:dns_resolver' names group 'dns_resolver', which is not in the inventory "
     r"\(did you mean group:dns_resolvers\?\)"),
    ({"egress_role": {"mail_server": True}}, r"egress_role: \{'mail_server': True\} must be a role name or a list of role names"),
    ({"egress_exceptions": [{"hosts": ["mail1"], "service": "https", "to": ["203.0.113.80"], "expires": "2099-01-01"}]},
     r"egress_exceptions\[0\]: .* lacks the keys reason, owner: each is required"),
    ({"egress_exception_warn_days": "14"}, r"egress_exception_warn_days: '14' is not a number of days"),
])
def test_messages_name_the_place_suggest_a_name_and_list_what_is_missing(overrides, message):
    with pytest.raises(PolicyError, match=message):
        compile_for("mail1", **overrides)


def test_a_name_nothing_resembles_gets_no_suggestion():
    with pytest.raises(PolicyError) as error:
        compile_for("mail1", egress_role="zzzzqqqq")
    assert "did you mean" not in str(error.value)


# The groups Ansible gives every inventory, as the filters pass them: all, ungrouped, and the inventory's own.
ANSIBLE_GROUPS = {**GROUPS, "all": sorted(ADDRESSES), "ungrouped": []}
SERVES_FROM = {"allow": [], "serves": [{"service": "ssh", "from": ["198.51.100.0/25"]}]}


def with_group(name: str, where: str) -> dict:
    if where == "upstream":
        return site(egress_role="client", egress_upstreams={**site()["egress_upstreams"], "internal_proxies": f"group:{name}"})
    return site(egress_role="r", egress_roles={"r": {**SERVES_FROM, "serves": [{"service": "ssh", "from": [f"group:{name}"]}]}})


@pytest.mark.parametrize("where", ["upstream", "serves"])
@pytest.mark.parametrize(("group", "suggested"), [
    ("nosuchgroup", None),  # as near to 'ungrouped' as difflib's default cutoff lets through: no suggestion
    ("webservers", None),
    ("dns_resolver", "dns_resolvers"),
    ("proxys", "proxies"),
    ("DNS_resolvers", "dns_resolvers"),
    ("al", "all"),
])
def test_a_group_not_in_the_inventory_suggests_only_a_group_near_in_spelling(where, group, suggested):
    path = "egress_upstreams.internal_proxies" if where == "upstream" else "egress_roles.r.serves[0].from[0]"
    with pytest.raises(PolicyError) as error:
        compile_policy(with_group(group, where), "ws1" if where == "upstream" else "mail1", ADDRESSES, ANSIBLE_GROUPS)
    hint = f" (did you mean group:{suggested}?)" if suggested else ""
    assert str(error.value) == f"{path}: 'group:{group}' names group '{group}', which is not in the inventory{hint}"


@pytest.mark.parametrize(("overrides", "near"), [
    ({"egress_role": "mail_sever"}, "mail_server"),
    ({"egress_role": "mailserver"}, "mail_server"),
    ({"egress_role": "webserver"}, None),  # as near to mail_server as difflib's default cutoff lets through
    ({"egress_role": "ungrouped"}, None),
    ({"egress_roles": {"r": {"allow": [{"service": "smpt", "to": "smtp_relays"}]}}, "egress_role": "r"}, "smtp"),
    ({"egress_roles": {"r": {"allow": [{"service": "nfs", "to": "smtp_relays"}]}}, "egress_role": "r"}, None),  # not dns
])
def test_unknown_names_suggest_only_a_near_one(overrides, near):
    with pytest.raises(PolicyError) as error:
        compile_for("mail1", **overrides)
    assert ("did you mean" in str(error.value)) is (near is not None), str(error.value)
    if near:
        assert f"(did you mean {near}? " in str(error.value)


def no_address(host: str, value=None) -> str:
    return (f"hostvars[{host}].egress_addresses: {value!r} is unset or empty, and ansible_host is not an IP address: host {host} has no address, "
            f"which {{}} needs; set egress_addresses (or ansible_host to an IP) for it")


@pytest.mark.parametrize("value", [None, []])
def test_a_host_with_no_address_is_reported_against_its_egress_addresses(value):
    # a gateway: each host's role needs the host's addresses
    with pytest.raises(PolicyError) as error:
        edge_with(addresses={**ADDRESSES, "mail1": value})
    assert (error.value.path, error.value.value) == ("hostvars[mail1].egress_addresses", value)
    assert str(error.value) == no_address("mail1", value).format("hostvars[mail1].egress_role")
    addresses = {**ADDRESSES, "dns1": value}
    # an upstream naming the host through its group, and by its name
    with pytest.raises(PolicyError) as error:
        compile_policy(site(egress_role="client"), "ws1", addresses, GROUPS)
    assert str(error.value) == no_address("dns1", value).format("egress_upstreams.internal_resolvers")
    upstreams = {**site()["egress_upstreams"], "internal_resolvers": ["dns1"]}
    with pytest.raises(PolicyError) as error:
        compile_policy(site(egress_role="client", egress_upstreams=upstreams), "ws1", addresses, GROUPS)
    assert str(error.value) == no_address("dns1", value).format("egress_upstreams.internal_resolvers[0]")


def test_the_policy_filter_names_egress_addresses_of_a_host_reached_by_name():
    """As the filter sees the inventory: dns1 reached by a DNS name (ansible_host), no egress_addresses."""
    hostvars = {host: {**site(egress_role=ROLES[host]), "egress_addresses": ADDRESSES[host]} for host in ADDRESSES}
    hostvars["dns1"] = {**site(egress_role="dns_resolver"), "ansible_host": "dns1.example.net"}
    with pytest.raises(AnsibleFilterError) as error:
        policy(hostvars, "ws1", ANSIBLE_GROUPS)
    assert str(error.value) == "warden.egress: host ws1: " + no_address("dns1", []).format("egress_upstreams.internal_resolvers")


# ----------------------------------------------------------------------------- exceptions about to expire

def exception(expires: str, hosts=("ws1",)) -> dict:
    return {"hosts": list(hosts), "service": "https", "to": ["203.0.113.80"], "reason": "portal", "owner": "finance-it", "expires": expires}


@pytest.mark.parametrize(("expires", "warn_days", "expected"), [
    ("2030-05-31", 14, "egress_exceptions[0] (https for ws1) on ws1 expired on 2030-05-31 and is not applied; owner finance-it: renew or remove it"),
    ("2030-06-01", 14, "egress_exceptions[0] (https for ws1) on ws1 expires on 2030-06-01, in 0 days; owner finance-it: renew or remove it"),
    ("2030-06-15", 14, "egress_exceptions[0] (https for ws1) on ws1 expires on 2030-06-15, in 14 days; owner finance-it: renew or remove it"),
    ("2030-06-16", 14, None),
    ("2030-06-16", 30, "egress_exceptions[0] (https for ws1) on ws1 expires on 2030-06-16, in 15 days; owner finance-it: renew or remove it"),
])
def test_exceptions_expiring_soon_or_expired_are_warned_with_their_owner(expires, warn_days, expected):
    variables = site(egress_exceptions=[exception(expires)], egress_role="client", egress_exception_warn_days=warn_days)
    ir = compile_policy(variables, "ws1", ADDRESSES, GROUPS, today=TODAY)
    assert [w for w in ir["warnings"] if w.startswith("egress_exceptions")] == ([expected] if expected else [])
    applied = any(r["origin"] == "exception:0" for r in ir["rules"])
    assert applied == (expires >= TODAY.isoformat())
    edge = edge_with(egress_exceptions=[exception(expires)], egress_exception_warn_days=warn_days)
    assert [w for w in edge["warnings"] if w.startswith("egress_exceptions")] == ([expected.replace(" on ws1 ", " at the edge ")] if expected else [])


# ----------------------------------------------------------------------------- the whole site, or nothing

@pytest.mark.parametrize(("value", "groups", "problem"), [
    (len(ADDRESSES) + 1, {**GROUPS, "all": list(ADDRESSES)}, f"says the site has {len(ADDRESSES) + 1} hosts, but this inventory holds {len(ADDRESSES)}"),
    (len(ADDRESSES), GROUPS, "cannot be checked: the inventory's groups were not given"),
    (0, {**GROUPS, "all": list(ADDRESSES)}, "is not a whole number of hosts above 0"),
    ("many", {**GROUPS, "all": list(ADDRESSES)}, "is not a whole number of hosts above 0"),
    (True, {**GROUPS, "all": list(ADDRESSES)}, "is not a whole number of hosts above 0"),
])
def test_egress_site_hosts_refuses_a_partial_inventory(value, groups, problem):
    variables = site(egress_site_hosts=value, egress_role=ROLES["mail1"])
    with pytest.raises(PolicyError, match=r"^egress_site_hosts: .*" + problem.replace("(", r"\(").replace(")", r"\)")):
        compile_policy(variables, "mail1", ADDRESSES, groups)
    with pytest.raises(PolicyError, match="^egress_site_hosts: "):
        compile_edge(site(egress_site_hosts=value, egress_edge=EDGE), "gw1", ADDRESSES, groups, dict(ROLES), today=TODAY)


def test_egress_site_hosts_matching_the_inventory_compiles_as_without_it():
    groups = {**GROUPS, "all": list(ADDRESSES)}
    plain = compile_policy(site(egress_role=ROLES["mail1"]), "mail1", ADDRESSES, groups)
    assert compile_policy(site(egress_site_hosts=str(len(ADDRESSES)), egress_role=ROLES["mail1"]), "mail1", ADDRESSES, groups) == plain
