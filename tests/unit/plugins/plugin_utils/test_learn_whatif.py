"""What-if: the flows whose verdict differs between two compiled sites, with the deciding rule
on each side; nothing when the policies are equal."""

from __future__ import annotations

import copy
import datetime

from journal import record
from sample import ADDRESSES, EDGE, GROUPS, ROLES, SEGMENTS, site

from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import apply_change, learn
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.whatif import draw, learned_flows, verify_flows, what_if, whatif_markdown
from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import compile_site

TODAY = datetime.date(2026, 12, 2)


def host_vars(**overrides) -> dict:
    out = {h: dict(site(**overrides), egress_role=r) for h, r in ROLES.items()}
    out["gw1"] = dict(site(**overrides), egress_edge=EDGE, egress_segments=SEGMENTS)
    return out


def compiled(variables: dict) -> list:
    return list(compile_site(variables, ADDRESSES, GROUPS, today=TODAY))


def test_equal_policies_change_nothing():
    before = compiled(host_vars())
    again = compiled(copy.deepcopy(host_vars()))
    result = what_if(before, again, verify_flows(host_vars(), ADDRESSES))
    assert result["flows"] > 100  # every rule of every policy drawn, at both ends of its ports
    assert result["changed"] == [] and result["policies_added"] == [] and result["policies_removed"] == []
    assert "0 of" in whatif_markdown(result)


def test_drawn_flows_hit_the_rule_they_were_drawn_from():
    (host, irs), = [(h, irs) for h, irs in compiled(host_vars()) if h == "mail1"]
    ir = irs[0]
    flows = [f for f in draw(host, "host", ir, ADDRESSES["mail1"]) if "smtp to smtp_relays" in f["origin"]]
    assert {f["packet"]["dst"] for f in flows} == {"203.0.113.25", "2001:db8:5100::25"}
    assert {f["packet"]["dport"] for f in flows} == {25}
    assert {f["packet"]["src"] for f in flows} == set(ADDRESSES["mail1"])


def test_a_removed_allow_is_found_with_the_rule_on_each_side():
    """A proposed site where the mail role may no longer resolve names: what-if names the flows."""
    proposed = host_vars(egress_roles={"mail_server": {"allow": [{"service": "smtp", "to": "smtp_relays"}]}})
    result = what_if(compiled(host_vars()), compiled(proposed), addresses=ADDRESSES)
    changed = {(c["host"], c["kind"], c["packet"]["dst"], c["packet"].get("dport"), c["packet"].get("proto")) for c in result["changed"]}
    assert ("mail1", "host", "198.51.100.12", "53", "udp") in changed
    one = next(c for c in result["changed"] if c["host"] == "mail1" and c["packet"]["dst"] == "198.51.100.12" and c["packet"]["proto"] == "udp")
    assert one["before"]["reason"] == "role mail_server: dns to internal_resolvers" and one["before"]["denied"] is False
    assert one["after"]["reason"] == "default deny: no rule allows this flow" and one["after"]["verdict"] == "drop"
    assert "| mail1 | host | 198.51.100.11 → 198.51.100.12 udp/53 | allowed: role mail_server: dns to internal_resolvers | denied:" in whatif_markdown(result)


def test_the_learned_suggestion_shows_as_the_flows_it_lets_out():
    variables = host_vars(egress_mode="audit")
    logs = {"mail1": [record("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.44 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF "
                             "PROTO=TCP SPT=1 DPT=8443 WINDOW=64240 RES=0x00 SYN URGP=0")]}
    learned = learn(variables, ADDRESSES, GROUPS, logs, today=TODAY)
    result = what_if(compiled(variables), compiled(apply_change(variables, learned["suggestion"], TODAY)), learned_flows(learned["flows"]))
    mine = [c for c in result["changed"] if c["origin"] == "learned on mail1"]
    assert len(mine) == 1
    assert mine[0]["before"]["denied"] is True and mine[0]["before"]["verdict"] == "accept"  # audit: logged, let through
    assert mine[0]["after"]["reason"] == "role mail_server: learned_tcp_8443 to learned_mail_server_tcp_8443"
    # nothing else changed but that destination and port
    assert {(c["packet"]["dst"], c["packet"]["dport"]) for c in result["changed"]} == {("203.0.113.44", "8443")}


def test_switching_to_enforce_changes_every_denied_verdict():
    result = what_if(compiled(host_vars(egress_mode="audit")), compiled(host_vars(egress_mode="enforce")))
    assert result["changed"]
    assert all(c["before"]["verdict"] == "accept" and c["after"]["verdict"] == "drop" and c["after"]["denied"] for c in result["changed"])


def test_verify_flows_and_added_policies():
    variables = host_vars()
    variables["ws1"]["egress_verify_flows"] = [{"dst": "203.0.113.80", "port": 443}]
    proposed = copy.deepcopy(variables)
    proposed["ws1"]["egress_exceptions"] = []
    for v in proposed.values():
        v["egress_exceptions"] = []
    del proposed["gw1"]
    result = what_if(compiled(variables), compiled(proposed), verify_flows(variables, ADDRESSES))
    assert result["policies_removed"] == ["gw1 edge"]
    verify = [c for c in result["changed"] if c["origin"] == "egress_verify_flows[0] of ws1"]
    assert len(verify) == 1 and verify[0]["before"]["reason"] == "exception 0: https"


def test_a_learned_flow_and_a_drawn_flow_of_the_same_packet_are_listed_once():
    """The learned line names the interface the packet left by (OUT=eth0); the flow drawn from
    the proposed rule leaves it to the default: the same packet, one row, the learned one."""
    proposed = host_vars(egress_roles={"client": {"allow": [{"service": "https", "to": "partner_new"}]}},
                         egress_upstreams={**site()["egress_upstreams"], "partner_new": ["203.0.113.44"]})
    learned = [{"host": "ws1", "kind": "host", "origin": "learned on ws1",
                "packet": {"src": "198.51.100.14", "dst": "203.0.113.44", "proto": "tcp", "dport": 443, "oif": "eth0"}}]
    result = what_if(compiled(host_vars()), compiled(proposed), learned, addresses=ADDRESSES)
    rows = [c for c in result["changed"] if c["host"] == "ws1" and c["packet"]["dst"] == "203.0.113.44" and c["packet"].get("dport") == "443"]
    assert len(rows) == 1 and rows[0]["origin"] == "learned on ws1", rows
    assert whatif_markdown(result).count("| ws1 | host | 198.51.100.14 → 203.0.113.44 tcp/443 |") == 1


def test_verify_flows_are_read_as_flows_port_for_dport():
    """Each verify flow is read by the one Flow (port for dport, the source by default the
    host's address of the destination's family); one the verify role would refuse is left out."""
    variables = {"ws1": {"egress_verify_flows": [
        {"dst": "2001:DB8:5100::80", "port": "443"},
        {"dst": "203.0.113.80", "proto": "icmp"},
        {"dst": "203.0.113.80", "port": "https"},
        {"dst": "203.0.113.80"},
    ]}}
    assert [f["packet"] for f in verify_flows(variables, ADDRESSES)] == [
        {"src": "2001:db8:10::14", "dst": "2001:db8:5100::80", "proto": "tcp", "dport": 443},
        {"src": "198.51.100.14", "dst": "203.0.113.80", "proto": "icmp"},
    ]


def test_verify_flows_keep_their_user_and_direction():
    """A verify flow sent by a local user is judged as that user's, and an inbound one as this
    host's answer to the host that opens it, as the verify role judges them."""
    roles = {"web_mail": {"allow": [{"service": "smtp", "to": "smtp_relays", "users": ["postfix"]}],
                          "serves": [{"service": "smtp", "from": "any"}]}}
    variables = {h: dict(site(egress_roles=roles), egress_role=r, egress_serves_without_ssh=True) for h, r in ROLES.items()}
    variables["mail1"]["egress_role"] = "web_mail"
    variables["mail1"]["egress_verify_flows"] = [
        {"dst": "203.0.113.25", "port": 25, "user": "postfix"},
        {"direction": "inbound", "from_host": "ws1", "port": 25},
    ]
    flows = verify_flows(variables, ADDRESSES)
    assert [f["packet"] for f in flows] == [
        {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "tcp", "dport": 25, "user": "postfix"},
        {"src": "198.51.100.14", "dst": "198.51.100.11", "proto": "tcp", "dport": 25, "direction": "inbound"},
    ]
    # Taking the user's name off the role, and smtp off what it serves, flips both flows.
    proposed = copy.deepcopy(variables)
    for variables_of in proposed.values():
        variables_of["egress_roles"] = {"web_mail": {"allow": [{"service": "smtp", "to": "smtp_relays", "users": ["root"]}], "serves": []}}
    result = what_if(compiled(variables), compiled(proposed), flows)
    changed = {c["origin"]: (c["before"]["verdict"], c["after"]["verdict"]) for c in result["changed"] if c["origin"].startswith("egress_verify")}
    assert changed == {"egress_verify_flows[0] of mail1": ("accept", "drop"), "egress_verify_flows[1] of mail1": ("accept", "drop")}, result["changed"]
