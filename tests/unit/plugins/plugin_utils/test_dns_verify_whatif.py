"""Flows to DNS names in verify and what-if: a verify flow written ``dst: dns:NAME`` is expected
allowed exactly when a rule's names cover the name (with its port and protocol), on every
policy of its path; what-if draws a flow to each name a set holds, so that adding or removing
``dns:NAME`` shows the flows to that name changing, in the result and in the Markdown page."""

from __future__ import annotations

import pytest
import yaml

from sample import ADDRESSES, compile_for, edge_ir, site

from ansible_collections.warden.egress.plugins.action.whatif import compare_inventories
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.verify import expect_flows, stand_in
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.whatif import draw, summary, verify_flows, whatif_markdown

UPSTREAMS = {**site()["egress_upstreams"], "apis": ["dns:api.example.com", "dns:*.cdn.example.net", "203.0.113.7"]}
ROLES = {"named": {"allow": [{"service": "https", "to": "apis"}, {"service": "dns", "to": "dns_forwarders"}]}}
DENY = "default deny: no rule allows this flow"


def named_ir(**overrides) -> dict:
    return compile_for("mail1", **{"egress_upstreams": UPSTREAMS, "egress_roles": ROLES, "egress_role": "named", **overrides})


def expectations(flows, addresses=None, ir=None, edges=None) -> list[tuple]:
    rows = expect_flows(named_ir() if ir is None else ir, flows, ADDRESSES["mail1"] if addresses is None else addresses, edges)
    return [(r["name"], r["dst"], r.get("family"), r["expect"], r["reason"]) for r in rows]


def test_a_flow_to_a_name_is_allowed_exactly_when_a_rule_names_cover_it():
    flows = [
        {"name": "exact", "dst": "dns:api.example.com", "port": 443},
        {"name": "below, in capitals, final dot", "dst": "dns:EU.Api.Example.COM.", "port": 443},
        {"name": "below the wildcard", "dst": "dns:img.cdn.example.net", "port": 443},
        {"name": "the wildcard's apex", "dst": "dns:cdn.example.net", "port": 443},
        {"name": "a longer label", "dst": "dns:myapi.example.com", "port": 443},
        {"name": "another port", "dst": "dns:api.example.com", "port": 80},
        {"name": "udp", "dst": "dns:api.example.com", "port": 443, "proto": "udp"},
    ]
    rule = "role named: https to apis"
    assert expectations(flows) == [
        ("exact", "dns:api.example.com", None, "allowed", f"{rule} (allowed by name: api.example.com)"),
        ("below, in capitals, final dot", "dns:eu.api.example.com", None, "allowed",
         f"{rule} (allowed by name: eu.api.example.com, which dns:api.example.com covers)"),
        ("below the wildcard", "dns:img.cdn.example.net", None, "allowed",
         f"{rule} (allowed by name: img.cdn.example.net, which dns:*.cdn.example.net covers)"),
        ("the wildcard's apex", "dns:cdn.example.net", None, "denied", DENY),
        ("a longer label", "dns:myapi.example.com", None, "denied", DENY),
        ("another port", "dns:api.example.com", None, "denied", DENY),
        ("udp", "dns:api.example.com", None, "denied", DENY),
    ]
    # Without the names, the same upstream allows only its listed address.
    bare = named_ir(egress_upstreams={**UPSTREAMS, "apis": ["203.0.113.7"]})
    assert [e[3] for e in expectations(flows[:3], ir=bare)] == ["denied"] * 3


def test_the_family_asked_for_or_each_family_the_host_has():
    """No family: judged in each family of the host's addresses (one row, the probe tries each
    family of its answer); a family, or a src, asks that one; a host of one family asks it."""
    rows = expect_flows(named_ir(), [
        {"dst": "dns:api.example.com", "port": 443},
        {"dst": "dns:api.example.com", "port": 443, "family": "ipv6"},
        {"dst": "dns:api.example.com", "port": 443, "src": "198.51.100.11"},
    ], ADDRESSES["mail1"])
    assert [(r.get("family"), r["src"], r["expect"]) for r in rows] == [
        (None, None, "allowed"), ("ipv6", None, "allowed"), ("ipv4", "198.51.100.11", "allowed")]
    assert [r["name"] for r in rows] == ["tcp/443 to dns:api.example.com"] * 3
    (only,) = expect_flows(named_ir(), [{"dst": "dns:api.example.com", "port": 443}], ["198.51.100.11"])
    assert only["family"] == "ipv4"


def test_families_the_policy_treats_apart_are_tried_apart():
    """The host's IPv6 address is outside the trusted prefixes (anti-spoofing drops it): the
    flow becomes one row a family, each asking its own family."""
    rows = expect_flows(named_ir(), [{"name": "api", "dst": "dns:api.example.com", "port": 443}], ["198.51.100.11", "2001:db8:99::11"])
    assert [(r["name"], r.get("family"), r["expect"], r["reason"]) for r in rows] == [
        ("api (ipv4)", "ipv4", "allowed", "role named: https to apis (allowed by name: api.example.com)"),
        ("api (ipv6)", "ipv6", "denied", "baseline: anti-spoofing IPv6"),
    ]


def test_the_edge_judges_a_flow_to_a_name_by_its_own_names():
    """A segment host behind the gateway: the edge's rule for the segment's role allows by name."""
    segments = {"workstations": {"prefixes": ["198.51.100.64/28"], "role": "named"}}
    edge = [{"policy": edge_ir(segments=segments, egress_upstreams=UPSTREAMS, egress_roles=ROLES)}]
    rows = expect_flows(None, [{"dst": "dns:api.example.com", "port": 443}, {"dst": "dns:www.example.org", "port": 443}],
                        ["198.51.100.70"], edge)
    assert [(r["expect"], r["reason"]) for r in rows] == [
        ("allowed", "edge gw1: role named: https to apis (allowed by name: api.example.com)"),
        ("denied", "edge gw1: " + DENY),
    ]


@pytest.mark.parametrize("flow, message", [
    ({"dst": "dns:*.cdn.example.net", "port": 443}, r"egress_verify_flows\[0\]\.dst: 'dns:\*\.cdn\.example\.net' is a wildcard"),
    ({"dst": "dns:api_1.example.com", "port": 443}, r"egress_verify_flows\[0\]\.dst: 'dns:api_1\.example\.com' has the label 'api_1'"),
    ({"dst": "dns:192.0.2.1", "port": 443}, r"egress_verify_flows\[0\]\.dst: 'dns:192\.0\.2\.1' is an IP address"),
    ({"dst": "dns:{{ lookup('env', 'HOME') }}", "port": 443}, r"egress_verify_flows\[0\]\.dst: .* is not a DNS label"),
    ({"dst": "dns:api.example.com", "port": 443, "family": "ipv5"}, r"egress_verify_flows\[0\]\.family: 'ipv5' is not ipv4 or ipv6"),
    ({"dst": "203.0.113.7", "port": 443, "family": "ipv4"}, r"egress_verify_flows\[0\]\.family: 'ipv4' is for a flow to a DNS name"),
    ({"dst": "dns:api.example.com", "port": 443, "src": "198.51.100.11", "family": "ipv6"}, r"family: 'ipv6' is not the family of src"),
    ({"dst": "dns:api.example.com", "port": 0}, r"egress_verify_flows\[0\]\.port: 0 is not a port"),
])
def test_a_bad_flow_to_a_name_names_the_variable_and_value(flow, message):
    with pytest.raises(PolicyError, match=message):
        expect_flows(named_ir(), [flow], ADDRESSES["mail1"])
    with pytest.raises(PolicyError, match=r"egress_verify_flows\[0\]: .* has no src and the host has no IPv6 address"):
        expect_flows(named_ir(), [{"dst": "dns:api.example.com", "port": 443, "family": "ipv6"}], ["198.51.100.11"])


def test_an_inbound_flow_cannot_come_to_a_name():
    with pytest.raises(PolicyError, match=r"egress_verify_flows\[0\]\.dst: 'dns:mail1\.example\.com' is a DNS name"):
        expect_flows(named_ir(), [{"direction": "inbound", "from_host": "ws1", "dst": "dns:mail1.example.com", "port": 25}],
                     ADDRESSES["mail1"], peers={"ws1": {"addresses": ADDRESSES["ws1"], "policy": None}})


def test_what_if_draws_a_flow_to_each_name_a_set_holds():
    flows = [f for f in draw("mail1", "host", named_ir(), ADDRESSES["mail1"]) if "https to apis" in f["origin"]]
    named = {(f["packet"]["dns_name"], f["packet"]["dst"], f["packet"]["dport"]) for f in flows if "dns_name" in f["packet"]}
    assert named == {(name, stand_in(name, family), 443) for name in ("api.example.com", "any.cdn.example.net") for family in ("ipv4", "ipv6")}
    assert {f["origin"].rsplit(", name ", 1)[1] for f in flows if "dns_name" in f["packet"]} == {"dns:api.example.com", "dns:*.cdn.example.net"}
    # the listed address is drawn as before
    assert {f["packet"]["dst"] for f in flows if "dns_name" not in f["packet"]} == {"203.0.113.7", "2001:db8:ffff::1"}


def test_verify_flows_to_names_are_judged_by_what_if():
    variables = {"mail1": {"egress_verify_flows": [{"dst": "dns:api.example.com", "port": 443}, {"dst": "dns:*.example.com", "port": 443},
                                                   {"dst": "dns:api.example.com", "port": 443, "family": "ipv6"}]}}
    assert [f["packet"] for f in verify_flows(variables, ADDRESSES)] == [
        {"src": "198.51.100.11", "dst": stand_in("api.example.com", "ipv4"), "proto": "tcp", "dport": 443, "dns_name": "api.example.com"},
        {"src": "2001:db8:10::11", "dst": stand_in("api.example.com", "ipv6"), "proto": "tcp", "dport": 443, "dns_name": "api.example.com"},
        {"src": "2001:db8:10::11", "dst": stand_in("api.example.com", "ipv6"), "proto": "tcp", "dport": 443, "dns_name": "api.example.com"},
    ]


def _inventory(directory, apis: list) -> str:
    """An inventory (one file) whose upstream apis holds ``apis``; mail1 tries a name below api.example.com."""
    directory.mkdir()
    data = {"all": {
        "vars": {"egress_trusted_prefixes": ["198.51.100.0/25", "2001:db8:10::/120"], "egress_upstreams": {"apis": apis, "dns_forwarders": ["203.0.113.53"]},
                 "egress_roles": ROLES},
        "hosts": {"mail1": {"egress_role": "named", "egress_addresses": ADDRESSES["mail1"],
                            "egress_verify_flows": [{"name": "eu api", "dst": "dns:eu.api.example.com", "port": 443}]},
                  "ws1": {"egress_role": "named", "egress_addresses": ["198.51.100.14"]}},
    }}
    (directory / "hosts.yml").write_text(yaml.safe_dump(data))
    return str(directory / "hosts.yml")


def test_adding_and_removing_a_name_flips_the_flows_to_it(tmp_path):
    """compare() end to end, two inventories: the proposal drops dns:api.example.com and adds
    dns:*.cdn.example.net; the flows to each name flip, on every host with the role, in both
    families, and the page and the summary name them."""
    current = _inventory(tmp_path / "current", ["dns:api.example.com", "203.0.113.7"])
    proposed = _inventory(tmp_path / "proposed", ["dns:*.cdn.example.net", "203.0.113.7"])
    result = compare_inventories({"proposed": proposed, "dest": str(tmp_path / "whatif.md")}, [current])["result"]
    changed = {(c["host"], c["packet"]["src"], c["packet"]["dns_name"], c["packet"]["dport"], c["before"]["reason"], c["after"]["reason"])
               for c in result["changed"]}
    rule = "role named: https to apis"
    expected = set()
    # ws1 has no IPv6 address of its own: its IPv6 flows are drawn from the trusted prefix's first address
    for host, source in (("mail1", "198.51.100.11"), ("mail1", "2001:db8:10::11"), ("ws1", "198.51.100.14"), ("ws1", "2001:db8:10::1")):
        expected.add((host, source, "api.example.com", "443", f"{rule} (allowed by name: api.example.com)", DENY))
        expected.add((host, source, "any.cdn.example.net", "443", DENY,
                      f"{rule} (allowed by name: any.cdn.example.net, which dns:*.cdn.example.net covers)"))
    for source in ("198.51.100.11", "2001:db8:10::11"):  # mail1's verify flow, in each of its families
        expected.add(("mail1", source, "eu.api.example.com", "443", f"{rule} (allowed by name: eu.api.example.com, which dns:api.example.com covers)",
                      DENY))
    assert changed == expected
    assert all(c["before"]["denied"] != c["after"]["denied"] for c in result["changed"])
    page = whatif_markdown(result)
    assert (f"| mail1 | named | host | 198.51.100.11 → dns:api.example.com tcp/443 | allowed: {rule} (allowed by name: api.example.com) "
            f"| denied: {DENY} |") in page
    assert "| ws1 | named | host | 198.51.100.14 → dns:any.cdn.example.net tcp/443 | denied: " in page
    assert "192.0.2." not in page and "2001:db8:d25::" not in page  # the stand-in addresses are not shown
    assert any(line.startswith("mail1 (named) host policy: 198.51.100.11 → dns:eu.api.example.com tcp/443: before allowed") for line in summary(result))
    # The same inventory twice: nothing changes.
    assert compare_inventories({"proposed": current, "dest": str(tmp_path / "same.md")}, [current])["result"]["changed"] == []


def test_a_name_kept_under_a_wildcard_changes_nothing(tmp_path):
    """Replacing dns:*.example.com with dns:api.example.com keeps api.example.com allowed: only
    the names the wildcard covered beyond it are shown changing."""
    current = _inventory(tmp_path / "current", ["dns:*.example.com"])
    proposed = _inventory(tmp_path / "proposed", ["dns:api.example.com"])
    result = compare_inventories({"proposed": proposed, "dest": str(tmp_path / "whatif.md")}, [current])["result"]
    assert {c["packet"]["dns_name"] for c in result["changed"]} == {"any.example.com"}


def test_a_learned_flow_with_the_name_its_resolver_gave_is_judged_by_the_name():
    """A learned flow carries the name its host's resolver answered (learn.resolver): what-if
    judges it by that name, as the kernel would, so a proposal that adds the name shows that
    very flow allowed, and one that leaves the name out does not."""
    from ansible_collections.warden.egress.plugins.plugin_utils.oracle.whatif import learned_flows, what_if

    record = {"reporter": "mail1", "iif": None, "oif": "eth0", "src": ADDRESSES["mail1"][0], "dst": "203.0.113.150", "proto": "tcp",
              "dport": 443, "uid": None, "gid": None, "dns_name": "eu.api.example.com"}
    before = {"mail1": [named_ir(egress_upstreams={**UPSTREAMS, "apis": ["203.0.113.7"]})]}
    after = {"mail1": [named_ir()]}
    changed = what_if(before, after, learned_flows([record]))["changed"]
    learned = [c for c in changed if c["origin"] == "learned on mail1"]
    assert [(c["packet"]["dst"], c["packet"]["dns_name"], c["before"]["verdict"], c["after"]["verdict"]) for c in learned] == [
        ("203.0.113.150", "eu.api.example.com", "drop", "accept")], changed
    unnamed = {**record}
    del unnamed["dns_name"]
    assert not [c for c in what_if(before, after, learned_flows([unnamed]))["changed"] if c["origin"] == "learned on mail1"]
