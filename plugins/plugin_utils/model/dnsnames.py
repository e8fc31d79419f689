# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upstreams named by DNS (private to the collection): the ``dns:NAME`` and ``dns:*.ZONE``
entries of ``egress_upstreams``, the ``egress_dns`` settings that say how long an address a
resolver answered stays allowed, and what a name covers.

What a name covers is what the resolver that fills the sets matches (dnsmasq's ``nftset``
and ``ipset``, matched as its ``--address``): ``dns:api.example.com`` is that name and every
name below it; ``dns:*.example.com`` every name below example.com, but not example.com.

Pure Python: no Ansible imports. A bad value raises ``PolicyError`` naming the variable
path and the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError, parse_bool

PREFIX = "dns:"
LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
NAME_MAX = 253
# egress_dns: each setting, its default and its bounds (seconds).
DNS_DEFAULTS = {"cache_ttl": 300, "grace": 120, "upstream_cache_ttl": 0}
DNS_BOUNDS = {"cache_ttl": (0, 86400), "grace": (0, 86400), "upstream_cache_ttl": (0, 86400)}
# Switches and their defaults. log_answers: the local resolver logs each query and answer
# (dnsmasq's log-queries) to the journal, where warden.egress.learn reads which name an
# address was answered for (docs/learn.md, "Names").
DNS_SWITCHES = {"log_answers": True}
DNS_KEYS = set(DNS_DEFAULTS) | set(DNS_SWITCHES) | {"servers"}


def is_dns_entry(entry: object) -> bool:
    return isinstance(entry, str) and entry[:len(PREFIX)].lower() == PREFIX


def parse_name(entry: str, path: str) -> str:
    """``dns:NAME`` or ``dns:*.ZONE`` checked: the name in lower case, without a final dot,
    ``*.`` kept in front of a zone."""
    text = entry[len(PREFIX):]
    name = text.lower()
    if name.endswith("."):
        name = name[:-1]
    wildcard = name.startswith("*.")
    bare = name[2:] if wildcard else name
    if not bare:
        raise PolicyError(path, entry, "names no host after dns:")
    if "*" in bare:
        raise PolicyError(path, entry, "has a '*' that is not the whole first label: only dns:*.ZONE is a wildcard")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        raise PolicyError(path, entry, "is an IP address, not a name: write the address without dns:")
    if len(bare) > NAME_MAX:
        raise PolicyError(path, entry, f"is a name of {len(bare)} characters; a DNS name has at most {NAME_MAX}")
    labels = bare.split(".")
    for label in labels:
        if not LABEL_RE.fullmatch(label):
            raise PolicyError(path, entry, f"has the label {label!r}, which is not a DNS label (letters, digits and '-', 1 to 63, "
                                           "not starting or ending with '-')")
    if labels[-1].isdigit():
        raise PolicyError(path, entry, "ends in a numeric label, which no DNS name has (is it an address?)")
    if len(labels) < 2:
        raise PolicyError(path, entry, "is a single label: name a host in a domain (api.example.com)" if not wildcard else
                          "is a wildcard over a top-level domain: name a zone of at least two labels (*.example.com)")
    return f"*.{bare}" if wildcard else bare


def flow_name(value: object, path: str) -> str:
    """The name a flow's client resolved to reach its destination (a flow's ``name``):
    a host name, no wildcard, in lower case without a final dot."""
    if not isinstance(value, str) or value.startswith("*"):
        raise PolicyError(path, value, "is not a DNS name (api.example.com)")
    return parse_name(PREFIX + value, path)


def covers(pattern: str, name: str) -> bool:
    """Whether the upstream entry ``pattern`` (as ``parse_name`` returns it) covers ``name``
    (lower case, no final dot): the name and the names below it; for ``*.ZONE`` the names
    below the zone only."""
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern or name.endswith("." + pattern)


def lifetime(settings: Mapping) -> int:
    """How often each of a name set's two halves is emptied (seconds): an address a resolver
    answered stays in the set at least this long after the answer passed the local resolver.
    See docs/dns.md: the local cache, the site resolver's cache in front of it, and the
    clients' own caching (grace) all have to fit."""
    return max(1, settings["cache_ttl"] + settings["upstream_cache_ttl"] + settings["grace"])


def parse_dns_settings(raw: object) -> dict:
    """``egress_dns``: the local resolver's cache limit (``cache_ttl``), the longest any
    resolver between the clients and it may cache an answer (``upstream_cache_ttl``, on a
    gateway the site's resolvers), the clients' own grace (``grace``), whether the local
    resolver logs its answers for ``warden.egress.learn`` (``log_answers``, default true) and,
    optionally, the servers the local resolver asks (``servers``, addresses)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise PolicyError("egress_dns", raw, "must be a mapping")
    unknown = sorted(set(raw) - DNS_KEYS)
    if unknown:
        raise PolicyError(f"egress_dns.{unknown[0]}", raw[unknown[0]], f"is not a known key ({', '.join(sorted(DNS_KEYS))})")
    out = dict(DNS_DEFAULTS)
    for key, (low, high) in DNS_BOUNDS.items():
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise PolicyError(f"egress_dns.{key}", value, f"is not a number of seconds ({low}-{high})")
            out[key] = value
    for key in DNS_SWITCHES:  # kept only when given: a policy at the defaults reads as before
        if key in raw:
            out[key] = parse_bool(raw[key], f"egress_dns.{key}")
    servers = raw.get("servers", [])
    if not isinstance(servers, list):
        raise PolicyError("egress_dns.servers", servers, "must be a list of IP addresses")
    out["servers"] = []
    for i, server in enumerate(servers):
        try:
            out["servers"].append(str(ipaddress.ip_address(str(server))))
        except ValueError:
            raise PolicyError(f"egress_dns.servers[{i}]", server, "is not an IP address") from None
    if out["cache_ttl"] == 0 and out["upstream_cache_ttl"] == 0 and out["grace"] == 0:
        raise PolicyError("egress_dns.grace", 0, "leaves no time between an answer and the connection it is for: "
                                                 "with cache_ttl and upstream_cache_ttl 0, give grace at least 1")
    return out
