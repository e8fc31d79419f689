"""playbooks/explain.yml (warden.egress.explain): one flow from the command line, judged by
every policy on its path, host and edge, on any platform; bad input stops with the variable
and the value.

The hosts point at containers that do not exist: the playbook must contact none of them."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

SITE = {
    "ansible_connection": "containers.podman.podman",
    "ansible_host": "warden-test-does-not-exist",
    "egress_trusted_prefixes": ["198.51.100.0/25", "192.0.2.0/27"],
    "egress_upstreams": {"smtp_relays": ["203.0.113.25"], "internal_resolvers": ["198.51.100.53"],
                         "dns_forwarders": ["203.0.113.53"], "internal_proxies": ["198.51.100.10"]},
    "egress_segments": {"lan2": {"prefixes": ["198.51.100.64/26"], "role": "client"}},
}
HOSTS = {
    "proxy1": {"egress_role": "web_proxy", "egress_addresses": ["198.51.100.10"]},
    "mail1": {"egress_role": "mail_server", "egress_addresses": ["198.51.100.11"]},
    "printer": {"egress_addresses": ["198.51.100.20"]},
    "lonely": {"egress_addresses": ["192.0.2.5"]},
    "trial1": {"egress_role": "mail_server", "egress_mode": "audit", "egress_addresses": ["192.0.2.30"]},
    "gw1": {"egress_edge": {"inside": [{"interface": "eth0", "prefixes": ["198.51.100.0/26"]}], "outside": "eth1"}},
    "rtr1": {"egress_platform": "ios", "egress_edge": {"inside": [{"interface": "GigabitEthernet0/0", "prefixes": ["198.51.100.64/26"]}],
                                                       "outside": "GigabitEthernet0/1"}},
}


def explain(tmp_path, *extra: str, site: dict | None = None) -> tuple[int, str]:
    """Run the playbook by its collection name (``site``: more inventory variables of the
    group all); return its exit code and its output with the whitespace normalised (the
    result formats fold long lines)."""
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"vars": {**SITE, **(site or {})}, "hosts": HOSTS}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_CALLBACK_RESULT_FORMAT="yaml", ANSIBLE_NOCOLOR="1")
    args = [item for pair in extra for item in ("-e", pair)]
    result = subprocess.run(["ansible-playbook", "warden.egress.explain", "-i", str(path), *args],
                            capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    output = " ".join((result.stdout + result.stderr).split())
    assert "UNREACHABLE" not in output and "unreachable=1" not in output
    return result.returncode, output


def test_allowed_by_the_host_and_the_edge(tmp_path):
    rc, out = explain(tmp_path, "explain_src=198.51.100.10", "explain_dst=203.0.113.5", "explain_port=443")
    assert rc == 0, out[-3000:]
    assert "flow tcp/443 from 198.51.100.10 (host proxy1, role web_proxy) to 203.0.113.5" in out
    assert "proxy1: host policy (nftables): ALLOWED by rule" in out and "(role:web_proxy): role web_proxy: https to any" in out
    assert "gw1: edge policy (nftables, in eth0 out eth1): ALLOWED by rule" in out
    assert "overall: ALLOWED by every policy on the path (2)" in out
    assert "rtr1:" not in out  # its inside prefixes do not hold the source
    assert "reserved name" not in out  # Ansible warned of -e port=, a name it reserves


def test_denied_by_the_host(tmp_path):
    rc, out = explain(tmp_path, "explain_src=198.51.100.11", "explain_dst=203.0.113.5", "explain_port=443", "explain_proto=tcp")
    assert rc == 0, out[-3000:]
    assert "mail1: host policy (nftables): DENIED by the default deny: no rule allows this flow" in out
    assert "overall: DENIED by the host policy of mail1" in out


def test_allowed_by_the_host_denied_by_the_edge(tmp_path):
    """web_proxy may reach any address on 443; the edge never lets a private destination out."""
    rc, out = explain(tmp_path, "explain_src=198.51.100.10", "explain_dst=10.1.2.3", "explain_port=443")
    assert rc == 0, out[-3000:]
    assert "proxy1: host policy (nftables): ALLOWED by rule" in out
    assert "gw1: edge policy (nftables, in eth0 out eth1): DENIED by rule" in out
    assert "(baseline): baseline: special-purpose, private" in out
    assert "overall: DENIED by the edge policy of gw1" in out


def test_a_segment_behind_a_router_edge(tmp_path):
    """A source with no policy of its own (a segment) meets only its gateway, an IOS ACL here."""
    rc, out = explain(tmp_path, "explain_src=198.51.100.70", "explain_dst=198.51.100.10", "explain_port=3128")
    assert rc == 0, out[-3000:]
    assert "from 198.51.100.70 (segment lan2, role client)" in out
    assert "rtr1: edge policy (ios, in GigabitEthernet0/0 out GigabitEthernet0/1): ALLOWED by rule" in out
    assert "role client: http_proxy to internal_proxies" in out
    assert "gw1:" not in out
    rc, out = explain(tmp_path, "explain_src=198.51.100.70", "explain_dst=203.0.113.9", "explain_port=53", "explain_proto=udp")
    assert rc == 0, out[-3000:]
    assert "flow udp/53 from 198.51.100.70" in out and "overall: DENIED by the edge policy of rtr1" in out


def test_a_host_policy_in_audit_mode_lets_the_flow_out_and_says_so(tmp_path):
    rc, out = explain(tmp_path, "explain_src=192.0.2.30", "explain_dst=203.0.113.5", "explain_port=443")
    assert rc == 0, out[-3000:]
    assert "trial1: host policy (nftables): DENIED (audit mode: let out and logged) by the default deny" in out
    assert "overall: ALLOWED on the wire, but the host policy of trial1 denies it in audit mode (it is logged)" in out
    rc, out = explain(tmp_path, "explain_src=192.0.2.30", "explain_dst=203.0.113.25", "explain_port=25")
    assert rc == 0, out[-3000:]
    assert "trial1: host policy (nftables): ALLOWED by rule" in out and "overall: ALLOWED by every policy on the path (1)" in out


def test_a_user_the_role_names_gets_out_and_another_does_not(tmp_path):
    """mail_server, as this site writes it, lets only postfix (or the group mail) send mail:
    the playbook answers for the user and group given, and for no user at all."""
    roles = {"egress_roles": {"mail_server": {"allow": [{"service": "smtp", "to": "smtp_relays", "users": ["postfix"]},
                                                        {"service": "smtp", "to": "smtp_relays", "groups": ["mail"]}]}}}
    mail = ("explain_src=198.51.100.11", "explain_dst=203.0.113.25", "explain_port=25")
    rc, out = explain(tmp_path, *mail, "explain_user=postfix", site=roles)
    assert rc == 0, out[-3000:]
    assert "flow tcp/25 from 198.51.100.11 (host mail1, role mail_server) to 203.0.113.25, sent as user postfix" in out
    assert "mail1: host policy (nftables): ALLOWED by rule" in out and "overall: ALLOWED by every policy on the path (2)" in out
    rc, out = explain(tmp_path, *mail, "explain_user=www-data", site=roles)
    assert rc == 0, out[-3000:]
    assert "sent as user www-data" in out and "mail1: host policy (nftables): DENIED by rule" in out
    assert "overall: DENIED by the host policy of mail1" in out
    rc, out = explain(tmp_path, *mail, "explain_user=www-data", "explain_group=mail", site=roles)
    assert rc == 0, out[-3000:]
    assert "sent as user www-data, group mail" in out and "overall: ALLOWED by every policy on the path (2)" in out
    rc, out = explain(tmp_path, *mail, site=roles)
    assert rc == 0, out[-3000:]
    assert "sent as" not in out and "overall: DENIED by the host policy of mail1" in out


@pytest.mark.parametrize(("extra", "message"), [
    (("explain_dst=203.0.113.5", "explain_port=443"), "src: None is required: give the source address of the flow with -e explain_src=ADDRESS"),
    (("explain_src=198.51.100.10", "explain_port=443"), "dst: None is required"),
    (("explain_src=proxy1", "explain_dst=203.0.113.5", "explain_port=443"), "src: 'proxy1' is not an IP address"),
    (("explain_src=198.51.100.10", "explain_dst=203.0.113.5.7", "explain_port=443"), "dst: '203.0.113.5.7' is not an IP address"),
    (("explain_src=198.51.100.10", "explain_dst=2001:db8::1", "explain_port=443"), "dst: '2001:db8::1' is not of the address family of src"),
    (("explain_src=198.51.100.10", "explain_dst=203.0.113.5", "explain_port=70000"), "port: '70000' is not a port (1-65535)"),
    (("explain_src=198.51.100.10", "explain_dst=203.0.113.5", "explain_port=https"), "port: 'https' is not a port (1-65535)"),
    (("explain_src=198.51.100.10", "explain_dst=203.0.113.5"), "port: None is required for proto tcp"),
    (("explain_src=198.51.100.10", "explain_dst=203.0.113.5", "explain_port=443", "explain_proto=sctp"), "proto: 'sctp' is not one of tcp, udp, icmp"),
    (("explain_src=198.51.100.10", "explain_dst=203.0.113.5", "explain_port=443", "explain_user=1abc"),
     "user: '1abc' is not a local user name or number"),
    (("explain_src=198.51.100.10", "explain_dst=203.0.113.5", "explain_port=443", "explain_group=-1"), "group: '-1' is not a local group name or number"),
    (("explain_src=192.0.2.99", "explain_dst=203.0.113.5", "explain_port=443"),
     "src: '192.0.2.99' is the address of no inventory host (egress_addresses or ansible_host) and in no egress_segments prefix"),
    (("explain_src=192.0.2.5", "explain_dst=203.0.113.5", "explain_port=443"),
     "src: '192.0.2.5' (host lonely) crosses no policy: no egress_role of its own and no gateway (egress_edge) whose inside prefixes hold it"),
], ids=["no-src", "no-dst", "src-not-an-address", "dst-not-an-address", "mixed-families", "port-out-of-range",
        "port-not-a-number", "no-port", "unknown-proto", "bad-user", "bad-group", "unknown-source", "no-policy-on-the-path"])
def test_bad_input_names_the_variable_and_the_value(tmp_path, extra, message):
    rc, out = explain(tmp_path, *extra)
    assert rc != 0
    assert f"warden.egress.explain: {message}" in out, out[-3000:]
    assert "overall:" not in out


def test_inventory_variables_named_like_the_flow_are_not_taken_for_it(tmp_path):
    """An inventory's own src, dst, port or proto (here in the group all, which the playbook's
    localhost reads) is no part of the flow: only the explain_ variables are."""
    inventory = {"src": "198.51.100.11", "dst": "203.0.113.5", "port": 25, "proto": "udp"}
    rc, out = explain(tmp_path, "explain_src=198.51.100.10", "explain_dst=203.0.113.9", "explain_port=443", site=inventory)
    assert rc == 0, out[-3000:]
    assert "flow tcp/443 from 198.51.100.10 (host proxy1, role web_proxy) to 203.0.113.9" in out
    rc, out = explain(tmp_path, "explain_src=198.51.100.10", "explain_dst=203.0.113.9", site=inventory)
    assert rc != 0
    assert "warden.egress.explain: port: None is required for proto tcp: give the destination port with -e explain_port=NUMBER" in out, out[-3000:]
