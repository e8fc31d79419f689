# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Built-in services and roles, and the other names a policy is written with: platforms,
alert classes, special-purpose destinations, routing protocols, ICMP types (private to the
collection).

``egress_services`` and ``egress_roles`` add to these; an entry with the same name
replaces the built-in one whole.
"""

from __future__ import annotations

# What egress_platform may name: the host and gateway firewalls, then the routers and
# switches, which enforce a site's edge only, as ACLs.
DEVICE_PLATFORMS = ("ios", "eos", "junos")
PLATFORMS = ("nftables", "iptables", "pf") + DEVICE_PLATFORMS

SERVICES: dict[str, dict] = {
    "dns": {"proto": ["udp", "tcp"], "ports": [53]},
    "smtp": {"proto": "tcp", "ports": [25]},
    "submission": {"proto": "tcp", "ports": [587]},
    "smtps": {"proto": "tcp", "ports": [465]},
    "http": {"proto": "tcp", "ports": [80]},
    "https": {"proto": "tcp", "ports": [443]},
    "http_proxy": {"proto": "tcp", "ports": [3128]},
    "ntp": {"proto": "udp", "ports": [123]},
    "ssh": {"proto": "tcp", "ports": [22]},
    "imap": {"proto": "tcp", "ports": [143]},
    "imaps": {"proto": "tcp", "ports": [993]},
    "pop3": {"proto": "tcp", "ports": [110]},
    "pop3s": {"proto": "tcp", "ports": [995]},
    "ftp": {"proto": "tcp", "ports": [21]},
    "ldap": {"proto": "tcp", "ports": [389]},
    "ldaps": {"proto": "tcp", "ports": [636]},
    "syslog": {"proto": "udp", "ports": [514]},
    "ping": {"proto": "icmp"},
}

# Upstream names that built-in roles refer to; the site defines them in egress_upstreams.
ROLES: dict[str, dict] = {
    "mail_server": {
        "description": "Sends mail only to the named relays; resolves names through the internal resolvers.",
        "allow": [
            {"service": "smtp", "to": "smtp_relays"},
            {"service": "dns", "to": "internal_resolvers"},
        ],
    },
    "dns_resolver": {
        "description": "Internal resolver: DNS only to its forwarders.",
        "allow": [{"service": "dns", "to": "dns_forwarders"}],
    },
    "web_proxy": {
        "description": "HTTP and HTTPS to anywhere; resolves names through the internal resolvers.",
        "allow": [
            {"service": ["http", "https"], "to": "any"},
            {"service": "dns", "to": "internal_resolvers"},
        ],
    },
    "client": {
        "description": "A workstation or server that may only use the internal proxies and resolvers.",
        "allow": [
            {"service": "dns", "to": "internal_resolvers"},
            {"service": "http_proxy", "to": "internal_proxies"},
        ],
    },
    "isolated": {
        "description": "Nothing leaves (an intranet server with no business on the Internet).",
        "allow": [],
    },
}

# Upstreams every site has.
BUILTIN_UPSTREAMS: dict[str, list[str]] = {"any": ["0.0.0.0/0", "::/0"]}

# Denied flows worth an alert, not just a log line (egress_log.alert). SMTP reaching this
# point was not allowed by any role: a host that is not a mail server is sending mail.
ALERT_CLASSES: dict[str, dict] = {
    "irc": {"description": "IRC, a classic botnet control channel", "match": [("tcp", [[6660, 6669], [6697, 6697], [7000, 7000]])]},
    "backdoor": {
        "description": "ports of well-known remote-access trojans (Back Orifice, NetBus, SubSeven, BO2K)",
        "match": [("tcp", [[1243, 1243], [6711, 6711], [12345, 12346], [20034, 20034], [27374, 27374], [31337, 31337], [54320, 54321]]),
                  ("udp", [[31337, 31337], [54321, 54321]])],
    },
    "smtp": {"description": "SMTP from a host no role allows to send mail", "match": [("tcp", [[25, 25], [465, 465], [587, 587]])]},
}

# Destinations that never leave a site by its outside interface: special-purpose ranges
# (RFC 6890), private addresses (RFC 1918, RFC 4193), multicast and broadcast. The
# documentation ranges are left out on purpose: the lab and examples use them as "the
# Internet"; add them with egress_edge.never_leave where that matters.
NEVER_LEAVE: dict[str, list[str]] = {
    "ipv4": ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
             "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4"],
    "ipv6": ["::/128", "::1/128", "::ffff:0:0/96", "100::/64", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8"],
}

# Routing protocols, blocked at the edge unless the box routes (egress_edge.routes).
ROUTING_PROTOCOLS: list[dict] = [
    {"name": "BGP", "proto": "tcp", "ports": [[179, 179]]},
    {"name": "RIP", "family": "ipv4", "proto": "udp", "ports": [[520, 520]]},
    {"name": "RIPng", "family": "ipv6", "proto": "udp", "ports": [[521, 521]]},
    {"name": "OSPF", "l4proto": 89},
    {"name": "EIGRP", "l4proto": 88},
]

# ICMP types as the IR names them (nftables' names), with their numbers, which iptables and
# pf take.
ICMP_TYPES: dict[str, dict[str, int]] = {
    "ipv4": {"echo-request": 8, "echo-reply": 0, "destination-unreachable": 3, "time-exceeded": 11, "parameter-problem": 12},
    "ipv6": {
        "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
        "echo-request": 128, "echo-reply": 129, "mld-listener-report": 131, "nd-router-solicit": 133,
        "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "mld2-listener-report": 143,
    },
}
