# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Built-in services and roles (private to the collection).

``egress_services`` and ``egress_roles`` add to these; an entry with the same name
replaces the built-in one whole.
"""

from __future__ import annotations

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
