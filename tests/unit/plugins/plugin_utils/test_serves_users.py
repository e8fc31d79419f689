"""What a host serves (replies only for served services) and allow entries limited to local
users or groups: compiled IR, the oracle, the refusals (SSH cut, edges and device ACLs, pf
ICMP owners), the target-side lookup of names, and what each renderer writes."""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError
from sample import ADDRESSES, EDGE, GROUPS, ROLES, SEGMENTS, site

from ansible_collections.warden.egress.plugins.filter.local_ids import local_ids
from ansible_collections.warden.egress.plugins.plugin_utils.render import iptables as render_iptables
from ansible_collections.warden.egress.plugins.plugin_utils.render import nftables as render_nftables
from ansible_collections.warden.egress.plugins.plugin_utils.render import pf as render_pf
from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.compile.local_ids import getent_numbers, local_names, with_local_ids
from pf_grammar import evaluate as pf_evaluate
from pf_grammar import parse
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import aces
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.verify import expect_flows

# The second seed's host: Apache and Postfix, SSH from the local network only.
WEB_MAIL = {
    "serves": [
        {"service": ["http", "https", "smtp"]},
        {"service": "ssh", "from": ["198.51.100.0/24", "2001:db8:10::/64"]},
    ],
    "allow": [
        {"service": "smtp", "to": "smtp_relays", "users": ["postfix"]},
        {"service": "dns", "to": "internal_resolvers"},
    ],
}
HOST = "198.51.100.11"
HOST6 = "2001:db8:10::11"


def web_mail(roles=None, **overrides):
    variables = site(egress_roles={"web_mail": WEB_MAIL, **(roles or {})}, egress_role="web_mail", **overrides)
    return compile_policy(variables, "mail1", ADDRESSES, GROUPS)


def inbound(ir, src, port, proto="tcp", dst=HOST):
    return evaluate(ir, {"src": src, "dst": dst, "proto": proto, "dport": port, "direction": "inbound"})


def out(ir, dst, port, proto="tcp", **owner):
    src = HOST6 if ":" in dst else HOST
    return evaluate(ir, {"src": src, "dst": dst, "proto": proto, "dport": port, **owner})


# --------------------------------------------------------------------------- the IR and the oracle


def test_a_host_answers_only_what_it_serves():
    ir = web_mail()
    assert ir["replies"] == "served"
    assert inbound(ir, "203.0.113.9", 25)["verdict"] == "accept"
    assert inbound(ir, "203.0.113.9", 443)["reason"] == "role web_mail: serves https"
    listener = inbound(ir, "203.0.113.9", 4444)
    assert (listener["verdict"], listener["origin"]) == ("drop", "baseline")
    assert "does not serve" in listener["reason"]
    assert inbound(ir, "203.0.113.9", 53, "udp")["verdict"] == "drop"
    # ssh only from the local network, both families
    assert inbound(ir, "198.51.100.254", 22)["verdict"] == "accept"
    assert inbound(ir, "203.0.113.9", 22)["verdict"] == "drop"
    assert inbound(ir, "2001:db8:10::fe", 22, dst=HOST6)["verdict"] == "accept"
    assert inbound(ir, "2001:db8:5100::9", 22, dst=HOST6)["verdict"] == "drop"
    # this host's own connections still get their replies
    assert out(ir, "203.0.113.25", 25, ct_state="established")["verdict"] == "accept"


def test_without_serves_every_reply_leaves_as_before():
    ir = compile_policy(site(egress_role="mail_server"), "mail1", ADDRESSES, GROUPS)
    assert ir["replies"] == "any"
    assert inbound(ir, "203.0.113.9", 4444)["verdict"] == "accept"
    assert not [r for r in ir["rules"] if r.get("ct_direction")]


def test_a_reply_cannot_pass_as_an_allowed_outbound_service():
    """A bind shell on 4444 answering a client whose source port is 25: the reply goes to
    port 25 of a host smtp may reach. Only the explicit 'unserved' rule stops it there."""
    roles = {"web_mail": {**WEB_MAIL, "allow": [{"service": "smtp", "to": "any"}]}}
    ir = web_mail(roles)
    shell = {"src": "203.0.113.9", "dst": HOST, "dport": 4444, "direction": "inbound", "sport": 25}
    unserved = [i for i, r in enumerate(ir["rules"]) if r["action"] == "unserved"]
    assert len(unserved) == 1
    assert evaluate(ir, shell)["rule_index"] == unserved[0]
    weakened = {**ir, "rules": [r for r in ir["rules"] if r["action"] != "unserved"]}
    assert evaluate(weakened, shell)["reason"] == "role web_mail: smtp to any"  # the hole the rule closes
    assert evaluate(weakened, {**shell, "sport": 40000})["verdict"] == "drop"
    with pytest.raises(PolicyError, match=r"flow.sport: 25 is for an inbound flow"):
        evaluate(ir, {"src": HOST, "dst": "203.0.113.9", "dport": 25, "sport": 25})


def test_egress_replies_switches_and_warns():
    plain = site(egress_role="mail_server")
    forced = compile_policy({**plain, "egress_replies": "served", "ansible_connection": "local"}, "mail1", ADDRESSES, GROUPS)
    assert forced["replies"] == "served"
    assert inbound(forced, "203.0.113.9", 25)["verdict"] == "drop"  # serves nothing
    loose = web_mail(egress_replies="any")
    assert loose["replies"] == "any" and inbound(loose, "203.0.113.9", 4444)["verdict"] == "accept"
    assert any("egress_replies is any" in w and "role web_mail" in w for w in loose["warnings"])
    with pytest.raises(PolicyError, match=r"^egress_replies: 'some'"):
        web_mail(egress_replies="some")


def test_serves_from_upstream_names_hosts_and_groups():
    roles = {"web_mail": {"allow": [], "serves": [{"service": "ssh"}, {"service": "dns", "from": ["smtp_relays", "group:proxies", "ws1"]},
                                                  {"service": "http", "from": "internal_resolvers"}]}}
    ir = web_mail(roles)
    assert ir["sets"]["serve_web_mail_1"] == {"ipv4": ["198.51.100.13/32", "198.51.100.14/32", "203.0.113.25/32"],
                                              "ipv6": ["2001:db8:10::13/128", "2001:db8:10::14/128", "2001:db8:5100::25/128"]}
    assert "up_internal_resolvers" in ir["sets"]
    assert inbound(ir, "198.51.100.14", 53, "udp")["verdict"] == "accept"
    assert inbound(ir, "198.51.100.15", 53, "udp")["verdict"] == "drop"
    assert inbound(ir, "198.51.100.12", 80)["verdict"] == "accept"
    assert inbound(ir, "198.51.100.13", 80)["verdict"] == "drop"


def test_serving_ping_answers_echo_requests():
    ir = web_mail({"web_mail": {**WEB_MAIL, "serves": WEB_MAIL["serves"] + [{"service": "ping"}]}})
    assert evaluate(ir, {"src": "203.0.113.9", "dst": HOST, "proto": "icmp", "direction": "inbound"})["verdict"] == "accept"
    assert evaluate(web_mail(), {"src": "203.0.113.9", "dst": HOST, "proto": "icmp", "direction": "inbound"})["verdict"] == "drop"


def test_users_limit_who_may_send():
    ir = web_mail()
    assert ir["local_ids"] == {"users": {"postfix": {"id": None, "path": "egress_roles.web_mail.allow[0].users[0]"}}, "groups": {}}
    assert out(ir, "203.0.113.25", 25, user="postfix")["verdict"] == "accept"
    assert out(ir, "2001:db8:5100::25", 25, user="postfix")["verdict"] == "accept"
    www = out(ir, "203.0.113.25", 25, user="www-data")
    assert (www["verdict"], www["reason"]) == ("drop", "alert: smtp")
    assert out(ir, "203.0.113.25", 25)["verdict"] == "drop"  # no local socket owner
    assert out(ir, "198.51.100.12", 53, "udp", user="www-data")["verdict"] == "accept"  # dns is for everyone
    # a number matches the name once the target gave the name's number
    assert out(ir, "203.0.113.25", 25, user=107)["verdict"] == "drop"
    resolved = with_local_ids([ir], {"users": {"postfix": 107}}, "mail1")[0]
    assert out(resolved, "203.0.113.25", 25, user=107)["verdict"] == "accept"
    assert out(resolved, "203.0.113.25", 25, user="108")["verdict"] == "drop"
    assert ir["local_ids"]["users"]["postfix"]["id"] is None  # the input is not changed


def test_groups_and_numbers():
    roles = {"web_mail": {**WEB_MAIL, "allow": [{"service": "smtp", "to": "smtp_relays", "groups": ["mail", 8]},
                                                {"service": "https", "to": "any", "users": 0}]}}
    ir = web_mail(roles)
    assert ir["local_ids"]["groups"] == {"mail": {"id": None, "path": "egress_roles.web_mail.allow[0].groups[0]"}}
    assert out(ir, "203.0.113.25", 25, user="x", group="mail")["verdict"] == "accept"
    assert out(ir, "203.0.113.25", 25, user="x", group=8)["verdict"] == "accept"
    assert out(ir, "203.0.113.25", 25, user="x", group="users")["verdict"] == "drop"
    assert out(ir, "203.0.113.80", 443, user=0)["verdict"] == "accept"
    assert out(ir, "203.0.113.80", 443, user="root")["verdict"] == "drop"  # the oracle does not guess root is 0


BAD = [
    ({"allow": [{"service": "smtp", "to": "any", "users": ["postfix"], "groups": ["mail"]}]},
     r"egress_roles.r.allow\[0\]: .* names both users and groups"),
    ({"allow": [{"service": "smtp", "to": "any", "users": ["post fix"]}]}, r"egress_roles.r.allow\[0\].users\[0\]: 'post fix' is not a local user name"),
    ({"allow": [{"service": "smtp", "to": "any", "users": "postfix\n"}]}, r"egress_roles.r.allow\[0\].users: 'postfix\\n' is not"),
    ({"allow": [{"service": "smtp", "to": "any", "users": ["1abc"]}]}, r"users\[0\]: '1abc' is not a local user name"),
    ({"allow": [{"service": "smtp", "to": "any", "groups": [-1]}]}, r"groups\[0\]: -1 is not a group number"),
    ({"allow": [{"service": "smtp", "to": "any", "users": [True]}]}, r"users\[0\]: True is not a local user name"),
    ({"allow": [{"service": "smtp", "to": "any", "users": []}]}, r"users: \[\] must not be empty"),
    ({"allow": [{"service": "smtp", "to": "any", "users": ["a", "a"]}]}, r"users\[1\]: 'a' is listed twice"),
    ({"allow": [], "serves": [{"service": "smtpp"}]}, r"egress_roles.r.serves\[0\].service: 'smtpp' is not a known service \(did you mean smtp\?"),
    ({"allow": [], "serves": [{"from": "any"}]}, r"egress_roles.r.serves\[0\].service: None is required"),
    ({"allow": [], "serves": [{"service": "ssh", "to": "any"}]}, r"egress_roles.r.serves\[0\].to: 'any' is not a known key"),
    ({"allow": [], "serves": [{"service": "ssh", "from": ["198.51.100.1/24"]}]}, r"serves\[0\].from\[0\]: '198.51.100.1/24' has host bits set"),
    ({"allow": [], "serves": [{"service": "ssh", "from": "nowhere"}]}, r"serves\[0\].from: 'nowhere' is not an IP address or prefix, an inventory host"),
    ({"allow": [], "serves": [{"service": "ssh", "from": "group:nosuch"}]}, r"serves\[0\].from: 'group:nosuch' names group 'nosuch', which is not"),
    ({"allow": [], "serves": {"service": "ssh"}}, r"egress_roles.r.serves: .* must be one value or a list"),
]


@pytest.mark.parametrize(("role", "problem"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_serves_and_owners_name_their_path(role, problem):
    with pytest.raises(PolicyError, match=problem):
        compile_policy(site(egress_roles={"r": role}, egress_role="r"), "mail1", ADDRESSES, GROUPS)


# --------------------------------------------------------------------------- SSH is not cut by accident


def test_a_policy_that_serves_no_ssh_is_refused_over_ssh():
    no_ssh = {"web_mail": {**WEB_MAIL, "serves": [{"service": ["http", "smtp"]}]}}
    with pytest.raises(PolicyError, match=r"^egress_roles.web_mail.serves: \['http', 'smtp'\] serves nothing on tcp/22, but Ansible reaches mail1 "
                                          r"over SSH there \(ansible_connection ssh, the default\)"):
        web_mail(no_ssh)
    with pytest.raises(PolicyError, match=r"serves nothing on tcp/22, .*ansible_connection ansible.builtin.ssh"):
        web_mail(no_ssh, ansible_connection="ansible.builtin.ssh")
    with pytest.raises(PolicyError, match=r"serves nothing on tcp/2222"):
        web_mail(ansible_port=2222)  # serves ssh on 22, reached on 2222
    with pytest.raises(PolicyError, match=r"^egress_replies: 'served' serves nothing on tcp/22"):
        compile_policy(site(egress_role="mail_server", egress_replies="served"), "mail1", ADDRESSES, GROUPS)
    with pytest.raises(PolicyError, match=r"^egress_serves_without_ssh: 'maybe' must be true or false"):
        web_mail(no_ssh, egress_serves_without_ssh="maybe")
    with pytest.raises(PolicyError, match=r"^ansible_port: 'ssh' is not a port"):
        web_mail(ansible_port="ssh")


def test_ssh_may_go_unserved_when_the_host_is_reached_another_way_or_it_is_said():
    no_ssh = {"web_mail": {**WEB_MAIL, "serves": [{"service": ["http", "smtp"]}]}}
    assert web_mail(no_ssh, ansible_connection="containers.podman.podman")["replies"] == "served"
    assert web_mail(no_ssh, ansible_connection="local")["replies"] == "served"
    assert web_mail(no_ssh, egress_serves_without_ssh=True)["replies"] == "served"
    assert web_mail(ansible_port="22")["replies"] == "served"
    custom = {"web_mail": {**WEB_MAIL, "serves": [{"service": "ssh_alt"}]}}
    assert web_mail(custom, ansible_port=2222, egress_services={"ssh_alt": {"proto": "tcp", "ports": ["2200-2299"]}})["replies"] == "served"


# --------------------------------------------------------------------------- edges, devices, pf


def test_an_edge_lets_a_host_with_users_out_by_address_and_refuses_users_on_a_segment():
    roles = {**ROLES, "mail1": "web_mail"}
    variables = site(egress_roles={"web_mail": WEB_MAIL}, egress_edge=EDGE, egress_segments=SEGMENTS)
    ir = compile_edge(variables, "gw1", ADDRESSES, GROUPS, roles)
    assert not [r for r in ir["rules"] if r.get("users") or r.get("groups") or r.get("ct_direction")]
    smtp = evaluate(ir, {"src": HOST, "dst": "203.0.113.25", "dport": 25, "iif": "eth0", "oif": "eth1"})
    assert smtp["reason"] == "role web_mail: smtp to smtp_relays"
    segments = {"workstations": {**SEGMENTS["workstations"], "role": "web_mail"}}
    with pytest.raises(PolicyError, match=r"^egress_roles.web_mail.allow\[0\].users: 'web_mail' names local users or groups, which an edge "
                                          r"cannot see .* segment workstations has no host policy"):
        compile_edge({**variables, "egress_segments": segments}, "gw1", ADDRESSES, GROUPS, roles)


def test_device_acls_refuse_what_they_cannot_see():
    ir = compile_edge(site(egress_edge=EDGE, egress_platform="ios"), "gw1", ADDRESSES, GROUPS, ROLES)
    aces(ir)
    for field, value in (("users", ["postfix"]), ("groups", [8]), ("ct_direction", "reply")):
        bad = {**ir, "rules": [*ir["rules"][:-1], {**ir["rules"][-1], field: value}]}
        with pytest.raises(ValueError, match="a device ACL sees each packet alone"):
            aces(bad)


def test_pf_cannot_limit_icmp_to_users():
    roles = {"web_mail": {**WEB_MAIL, "allow": [{"service": "ping", "to": "any", "users": ["postfix"]}]}}
    with pytest.raises(PolicyError, match=r"^egress_roles.web_mail.allow\[0\].users: 'web_mail' limits an ICMP service .* pf matches only"):
        web_mail(roles, egress_platform="pf")
    assert web_mail(roles, egress_platform="nftables")["rules"]


# --------------------------------------------------------------------------- names resolve on the target


def getent(database, found):
    return {"results": [{"item": name, "ansible_facts": {f"getent_{database}": {name: entry}}} for name, entry in found.items()]}


def test_names_resolve_on_the_target_or_stop_the_play():
    ir = web_mail()
    assert local_names([ir], "users") == ["postfix"]
    numbers = {"users": getent_numbers(getent("passwd", {"postfix": ["x", "107", "114", "", "/", "/bin/false"]}), "passwd")}
    assert numbers == {"users": {"postfix": 107}}
    resolved = with_local_ids([ir], numbers, "mail1")[0]
    assert resolved["local_ids"]["users"]["postfix"]["id"] == 107
    assert "meta skuid 107 accept" in render_nftables.render(resolved)
    assert "--uid-owner 107 " in render_iptables.render(resolved)["ipv4"]
    missing = {"users": getent_numbers(getent("passwd", {"postfix": None}), "passwd")}
    with pytest.raises(PolicyError, match=r"^egress_roles.web_mail.allow\[0\].users\[0\]: 'postfix' is not a local user on mail1 "
                                          r"\(getent passwd postfix found no entry\)"):
        with_local_ids([ir], missing, "mail1")
    with pytest.raises(PolicyError, match="is not a local user on mail1"):
        with_local_ids([ir], {}, "mail1")


def test_the_local_ids_filter_lists_what_the_target_lacks_one_line_each():
    allow = [{"service": "smtp", "to": "smtp_relays", "users": ["postfix", "nosuchuser"]},
             {"service": "dns", "to": "internal_resolvers", "groups": ["nosuchgroup"]}]
    roles = {"web_mail": {**WEB_MAIL, "allow": allow}}
    ir = web_mail(roles)
    passwd = getent("passwd", {"postfix": ["x", "107", "114", "", "/", "/bin/false"], "nosuchuser": None})
    group = getent("group", {"nosuchgroup": None})
    assert local_ids([ir, ir], "mail1", passwd=passwd, group=group, missing="yes") == [
        "warden.egress: host mail1: egress_roles.web_mail.allow[0].users[1]: 'nosuchuser' is not a local user on mail1 "
        "(getent passwd nosuchuser found no entry): create it there, or name one that exists, before the rules are loaded",
        "warden.egress: host mail1: egress_roles.web_mail.allow[1].groups[0]: 'nosuchgroup' is not a local group on mail1 "
        "(getent group nosuchgroup found no entry): create it there, or name one that exists, before the rules are loaded",
    ]
    with pytest.raises(AnsibleFilterError, match=r"^warden.egress: host mail1: egress_roles.web_mail.allow\[0\].users\[1\]: 'nosuchuser'"):
        local_ids([ir], "mail1", passwd=passwd, group=group)
    found = getent("group", {"nosuchgroup": ["x", "300", ""]})
    assert local_ids([ir], "mail1", passwd=getent("passwd", {"postfix": ["x", "107"], "nosuchuser": ["x", "108"]}), group=found, missing=True) == []


# --------------------------------------------------------------------------- renderers


def test_nftables_writes_one_rule_per_served_range_and_the_owner_match():
    text = render_nftables.render(web_mail())
    assert "ct state established,related ct direction original accept" in text
    assert 'ct direction reply meta l4proto tcp ct original proto-dst 25 accept comment "role web_mail: serves smtp"' in text
    assert "ct original ip saddr @serve_web_mail_1_v4 meta l4proto tcp ct original proto-dst 22 accept" in text
    assert "ct original ip6 saddr @serve_web_mail_1_v6 meta l4proto tcp ct original proto-dst 22 accept" in text
    assert 'ct direction reply goto unserved comment "baseline: replies of connections to a service this host does not serve"' in text
    assert 'meta skuid "postfix" accept' in text
    assert 'log prefix "warden-egress unserved: "' in text
    # no anonymous set of original ports (nft 1.0.6 cannot read its own listing of one back)
    ranged = web_mail({"web_mail": {**WEB_MAIL, "serves": [{"service": "x"}, {"service": "ssh"}]}},
                      egress_services={"x": {"proto": "udp", "ports": [53, "60000-60010"]}})
    text = render_nftables.render(ranged)
    assert "meta l4proto udp ct original proto-dst 53 accept" in text and "meta l4proto udp ct original proto-dst 60000-60010 accept" in text
    assert not re.search(r"proto-dst \{", text)


def test_iptables_writes_conntrack_direction_and_owner():
    files = render_iptables.render(web_mail())
    v4 = files["ipv4"]
    assert "-m conntrack --ctstate ESTABLISHED,RELATED --ctdir ORIGINAL" in v4
    assert "-p tcp -m conntrack --ctorigdstport 25 -m conntrack --ctdir REPLY -m comment" in v4
    assert re.search(r"--ctorigdstport 22 -m conntrack --ctdir REPLY -m set --match-set w\w{6}-serve_web_mail_1\.4 dst", v4)
    assert ('-m conntrack --ctdir REPLY -m comment --comment "baseline: replies of connections to a service this host does not serve"'
            " -g warden_egress-unserved") in v4
    assert "-m owner --uid-owner postfix" in v4 and "-m owner --uid-owner postfix" in files["ipv6"]


def test_pf_judges_served_connections_on_the_way_in_and_matches_owners():
    ir = web_mail(egress_platform="pf")
    text = render_pf.render(ir)
    ruleset = parse(text)
    assert 'match in proto tcp from any to self port 25 tag WE_SERVED label "role web_mail: serves smtp"' in text
    assert "block in log quick on ! lo proto { tcp udp } from any to self ! tagged WE_SERVED" in text
    assert 'user "postfix"' in text
    own = [HOST, HOST6]

    def pf(src, port, proto="tcp", dst=HOST):
        return pf_evaluate(ruleset, {"src": src, "dst": dst, "proto": proto, "dport": port, "inbound": True}, own)["verdict"]

    for src, port, proto, dst in [("203.0.113.9", 25, "tcp", HOST), ("203.0.113.9", 4444, "tcp", HOST), ("198.51.100.254", 22, "tcp", HOST),
                                  ("203.0.113.9", 22, "tcp", HOST), ("2001:db8:10::fe", 22, "tcp", HOST6), ("203.0.113.9", 53, "udp", HOST)]:
        expected = inbound(ir, src, port, proto, dst)["verdict"]
        assert (pf(src, port, proto, dst) == "pass") == (expected == "accept"), (src, port, proto)
    mail = {"src": HOST, "dst": "203.0.113.25", "proto": "tcp", "dport": 25, "oif": "eth0"}
    assert pf_evaluate(ruleset, {**mail, "user": "postfix"}, own)["verdict"] == "pass"
    assert pf_evaluate(ruleset, {**mail, "user": "www-data"}, own)["verdict"] == "block"
    audit = render_pf.render(web_mail(egress_platform="pf", egress_mode="audit"))
    assert "match in log on ! lo proto { tcp udp } from any to self ! tagged WE_SERVED tag WE_UNSERVED" in audit
    assert pf_evaluate(parse(audit), {"src": "203.0.113.9", "dst": HOST, "proto": "tcp", "dport": 4444, "inbound": True}, own)["verdict"] == "pass"


# --------------------------------------------------------------------------- verify


def test_expect_flows_inbound_and_as_a_user():
    ir = web_mail()
    peers = {"gw1": {"addresses": ["198.51.100.254", "2001:db8:10::fe"], "policy": None},
             "ws1": {"addresses": ADDRESSES["ws1"], "policy": compile_policy(site(egress_role="client"), "ws1", ADDRESSES, GROUPS)}}
    flows = [
        {"name": "ssh in", "direction": "inbound", "from_host": "gw1", "port": 22},
        {"name": "ssh in v6", "direction": "inbound", "from_host": "gw1", "port": 22, "dst": HOST6},
        {"name": "listener", "direction": "inbound", "from_host": "gw1", "port": 4444},
        {"name": "ssh from ws1", "direction": "inbound", "from_host": "ws1", "port": 22},
        {"name": "mail as postfix", "dst": "203.0.113.25", "port": 25, "user": "postfix"},
        {"name": "mail as www-data", "dst": "203.0.113.25", "port": 25, "user": "www-data"},
    ]
    got = {f["name"]: f for f in expect_flows(ir, flows, ADDRESSES["mail1"], peers=peers)}
    assert (got["ssh in"]["expect"], got["ssh in"]["dst"], got["ssh in"]["from_host"]) == ("allowed", HOST, "gw1")
    assert got["ssh in v6"]["expect"] == "allowed"
    assert (got["listener"]["expect"], "does not serve" in got["listener"]["reason"]) == ("denied", True)
    assert got["ssh from ws1"]["expect"] == "denied" and got["ssh from ws1"]["reason"].startswith("ws1: ")
    assert (got["mail as postfix"]["expect"], got["mail as postfix"]["user"]) == ("allowed", "postfix")
    assert got["mail as www-data"]["expect"] == "denied"
    for bad, problem in [({"direction": "inbound", "port": 22}, "from_host"), ({"from_host": "gw1", "dst": HOST, "port": 22}, "is for an inbound"),
                         ({"dst": HOST, "port": 22, "group": "mail"}, "needs user"),
                         ({"direction": "inbound", "from_host": "gw1", "port": 22, "user": "x"}, "is for an outbound")]:
        with pytest.raises(PolicyError, match=problem):
            expect_flows(ir, [bad], ADDRESSES["mail1"], peers=peers)


# --------------------------------------------------------------------------- through the filters


def test_the_filters_read_the_replies_switch_and_how_ansible_reaches_the_host():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.warden.egress.plugins.filter.explain import explain
    from ansible_collections.warden.egress.plugins.filter.local_ids import local_ids
    from ansible_collections.warden.egress.plugins.filter.policy import policy

    no_ssh = {"web_mail": {**WEB_MAIL, "serves": [{"service": "smtp"}]}}
    hostvars = {host: {**site(egress_roles=no_ssh), "egress_role": "web_mail" if host == "mail1" else ROLES[host], "egress_addresses": addresses}
                for host, addresses in ADDRESSES.items()}
    with pytest.raises(AnsibleFilterError, match=r"host mail1: egress_roles.web_mail.serves: \['smtp'\] serves nothing on tcp/22"):
        policy(hostvars, "mail1", GROUPS)
    hostvars["mail1"]["ansible_port"] = 2200
    with pytest.raises(AnsibleFilterError, match=r"serves nothing on tcp/2200"):
        policy(hostvars, "mail1", GROUPS)
    hostvars["mail1"]["ansible_connection"] = "containers.podman.podman"
    ir = policy(hostvars, "mail1", GROUPS)
    assert ir["replies"] == "served"
    hostvars["mail1"]["egress_replies"] = "any"
    assert policy(hostvars, "mail1", GROUPS)["replies"] == "any"
    assert explain(ir, {"src": "203.0.113.9", "dst": HOST, "dport": 25, "direction": "inbound"})["verdict"] == "accept"
    assert explain(ir, {"src": "203.0.113.9", "dst": HOST, "dport": 4444, "direction": "inbound"})["verdict"] == "drop"
    assert explain(ir, {"src": HOST, "dst": "203.0.113.25", "dport": 25, "user": "postfix"})["verdict"] == "accept"
    assert explain(ir, {"src": HOST, "dst": "203.0.113.25", "dport": 25, "user": "www-data"})["verdict"] == "drop"
    with pytest.raises(AnsibleFilterError, match=r"flow.ct_state: 'new' is not for an inbound flow"):
        explain(ir, {"src": "203.0.113.9", "dst": HOST, "dport": 25, "direction": "inbound", "ct_state": "new"})
    found = local_ids([ir], "mail1", passwd=getent("passwd", {"postfix": ["x", "107", "114", "", "/", "/bin/false"]}))
    assert found[0]["local_ids"]["users"]["postfix"]["id"] == 107
    with pytest.raises(AnsibleFilterError, match=r"^warden.egress: host mail1: egress_roles.web_mail.allow\[0\].users\[0\]: 'postfix' is not a local user"):
        local_ids([ir], "mail1", passwd=getent("passwd", {"postfix": None}))
