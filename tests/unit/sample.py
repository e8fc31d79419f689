"""The example site used across unit tests (same shape as lab/inventory)."""

from __future__ import annotations

ADDRESSES = {
    "mail1": ["198.51.100.11", "2001:db8:10::11"],
    "dns1": ["198.51.100.12", "2001:db8:10::12"],
    "proxy1": ["198.51.100.13", "2001:db8:10::13"],
    "ws1": ["198.51.100.14", "2001:db8:10::14"],
    "intranet1": ["198.51.100.15", "2001:db8:10::15"],
}
GROUPS = {"dns_resolvers": ["dns1"], "proxies": ["proxy1"], "empty": []}
ROLES = {"mail1": "mail_server", "dns1": "dns_resolver", "proxy1": "web_proxy", "ws1": "client", "intranet1": "isolated"}


def site(**overrides) -> dict:
    variables = {
        "egress_trusted_prefixes": ["198.51.100.0/25", "2001:db8:10::/120"],
        "egress_upstreams": {
            "smtp_relays": ["203.0.113.25", "2001:db8:5100::25"],
            "dns_forwarders": ["203.0.113.53", "2001:db8:5100::53"],
            "internal_resolvers": "group:dns_resolvers",
            "internal_proxies": "group:proxies",
        },
        "egress_exceptions": [
            {"hosts": ["ws1"], "service": "https", "to": ["203.0.113.80", "2001:db8:5100::80"],
             "reason": "payroll portal", "owner": "finance-it", "expires": "2099-12-31"},
        ],
    }
    variables.update(overrides)
    return variables


def compile_for(host: str, **overrides) -> dict:
    from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy

    variables = site(**overrides)
    variables.setdefault("egress_role", ROLES[host])
    return compile_policy(variables, host, ADDRESSES, GROUPS)


EDGE = {
    "inside": [{"interface": "eth0", "prefixes": ["198.51.100.0/25", "2001:db8:10::/120"]}],
    "outside": "eth1",
    "never_leave": ["203.0.113.128/25"],
}
SEGMENTS = {"workstations": {"prefixes": ["198.51.100.64/28", "2001:db8:10::40/124"], "role": "client"}}


def edge_ir(edge=None, segments=None, **overrides) -> dict:
    """The example site's edge policy, on gateway gw1."""
    from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge

    variables = site(egress_edge=EDGE if edge is None else edge, egress_segments=SEGMENTS if segments is None else segments, **overrides)
    return compile_edge(variables, "gw1", ADDRESSES, GROUPS, dict(ROLES))
