# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Juniper Junos: the firewall filters rendered for junipernetworks.junos, read back, and in
the device's forms (private to the collection).

* render: ``junos_config`` is the ``config`` for ``junipernetworks.junos.junos_acls``;
* read back: ``read_junos`` turns its ``state: parsed`` into the platform-neutral entries of
  ``common``;
* device forms: ``junos_running_config`` is the module's rendered XML as the device returns
  its configuration (what ``state: parsed`` reads); ``junos_load`` the XML
  ``junipernetworks.junos.junos_config`` loads in one ``commit confirmed``.
"""

from __future__ import annotations

import re
import xml.dom.minidom
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import read_number
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import network
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import (
    CAPABILITIES as ACL_CAPABILITIES, NAMES, STEP, AddressGroup, aces, group, new_entry, no_template,
)


# What junipernetworks.junos.junos_acls cannot express besides what no device ACL can: a
# TCP flag match (so the replies entry is left out) and a log action. Its limits: a term
# name's length; the longest commit confirmed.
CAPABILITIES = {**ACL_CAPABILITIES, "tcp_flags": False, "log": False}
LIMITS = {"term_name": 60, "confirm_timer": (65535 * 60, "commit confirmed takes 1 to 65535 minutes"), "entries": 4096}


# --------------------------------------------------------------------------- render

def _term_name(index: int, remark: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", remark).strip("-").lower()
    return f"t{index * STEP:04d}-{slug}"[:LIMITS["term_name"]].rstrip("-")


def _junos_address(match):
    return list(match.text) if isinstance(match, AddressGroup) else str(match)


def junos_config(ir: Mapping, names: Mapping | None = None) -> list:
    """``config`` for junipernetworks.junos.junos_acls: one term per entry, named by its
    position (spaced by 10, for ``insert term ... before``) and its origin.

    A rule's sources and destinations stay in one term (a term matches when the source is
    one of its source addresses and the destination one of its destination addresses), so
    the filter grows with the rules and the prefixes, not with their product.

    What the module cannot express is left out, not approximated: it has no TCP flag match,
    so the replies entry (established) is not rendered; it has no log action. Port ranges
    are given as ``eq: "LOW-HIGH"``: its ``range`` form renders an empty port match."""
    config = []
    for family, entries in aces(ir, grouped=True, capabilities=CAPABILITIES).items():
        out = []
        for index, entry in enumerate(entries, 1):
            if entry["established"] and not CAPABILITIES["tcp_flags"]:
                continue
            ace = {"name": _term_name(index, entry["remark"]), "grant": entry["action"]}
            proto = entry["proto"]
            if proto is not None:
                ace["protocol"] = str(proto) if isinstance(proto, int) else ("icmp6" if proto == "icmp" and family == "ipv6" else proto)
            if entry["src"] is not None:
                ace["source"] = {"address": _junos_address(entry["src"])}
            if entry["dst"] is not None or entry["ports"] is not None:
                ace["destination"] = {}
                if entry["dst"] is not None:
                    ace["destination"]["address"] = _junos_address(entry["dst"])
                if entry["ports"] is not None:
                    low, high = entry["ports"]
                    ace["destination"]["port_protocol"] = {"eq": str(low) if low == high else f"{low}-{high}"}
            out.append(ace)
        config.append({"afi": family, "acls": [{"name": (names or NAMES)[family], "aces": out}]})
    return config


# --------------------------------------------------------------------------- read back

def _junos_addresses(spec: Mapping) -> list:
    value = (spec or {}).get("address")
    if not value:
        return [None]
    return [network(v) for v in (value if isinstance(value, list) else [value])]


def _junos_ports(spec: Mapping):
    value = ((spec or {}).get("port_protocol") or {}).get("eq")
    if value is None:
        return None
    low, high = (str(value).split("-") + [str(value)])[:2]
    return int(low), int(high)


def read_junos(parsed: list) -> dict:
    """What ``junipernetworks.junos.junos_acls`` state parsed returned, as entries; a term
    with several source (destination) addresses matches a packet from (to) any of them, so
    its addresses become one ``AddressGroup``. A prefix-list match, which warden never
    renders and this reader cannot see into, is an error rather than read as any address."""
    out: dict = {}
    for afi in parsed:
        for acl in afi["acls"]:
            entries = []
            for ace in acl.get("aces", []):
                proto = ace.get("protocol")
                if proto is not None:
                    proto = int(proto) if read_number(str(proto)) is not None else ("icmp" if proto in ("icmp", "icmp6", "icmpv6") else proto)
                for side in ("source", "destination"):
                    if (ace.get(side) or {}).get("prefix_list"):
                        raise ValueError(f"term {ace.get('name')!r} matches a {side} prefix-list, which this check cannot read")
                entries.append(new_entry(ace.get("grant", "permit"), ace.get("name", ""), proto=proto,
                                         src=group(_junos_addresses(ace.get("source"))), dst=group(_junos_addresses(ace.get("destination"))),
                                         ports=_junos_ports(ace.get("destination")), log=False))
            out[(afi["afi"], acl["name"])] = entries
    return out


# --------------------------------------------------------------------------- device forms

NC_PREFIX = re.compile(r"(</?)nc:")


def _strip_netconf(text: str) -> str:
    """The module's XML without the NETCONF namespace, as the device's own XML reads."""
    return NC_PREFIX.sub(r"\1", text).replace(' xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"', "")


def junos_running_config(rendered: str) -> str:
    """The module's rendered XML as the device returns its configuration (the form its
    ``state: parsed`` reads): no NETCONF namespace, inside ``<configuration>``, each address
    as the ``<name>`` of its list entry (parsed fails on the bare form the module writes)."""
    body = _strip_netconf(rendered)
    body = re.sub(r"<(source|destination)-address>([^<]+)</\1-address>", r"<\1-address><name>\2</name></\1-address>", body)
    document = xml.dom.minidom.parseString(f"<rpc-reply><configuration>{body}</configuration></rpc-reply>")
    return document.documentElement.toprettyxml(indent="  ").strip()


def junos_inet6_form(rendered: str) -> str:
    """The module's rendered XML with each ``protocol`` match of an ``inet6`` filter written
    ``next-header``, the match Junos accepts in an IPv6 filter (the module writes
    ``protocol`` for both families, which the device refuses for inet6)."""

    def fix(match):
        return re.sub(r"<(/?)(nc:)?protocol>", r"<\1\2next-header>", match.group(0))

    return re.sub(r"<(nc:)?inet6>.*?</(nc:)?inet6>", fix, rendered, flags=re.S)


def junos_load(rendered: str, bindings: str | None = None) -> str:
    """What ``junipernetworks.junos.junos_config`` loads (``update: replace``) and commits
    confirmed, in one commit: both of the module's filters, the ``inet6`` one in
    ``next-header`` form, each marked to replace the filter of that name and nothing else,
    and, when given, the bindings ``junos_acl_interfaces`` rendered (merged: the filters are
    added to the outside unit's ``output-list``; nothing else on the interface changes)."""
    body = _strip_netconf(junos_inet6_form(rendered))
    families = []
    for family in ("inet6", "inet"):
        found = re.search(rf"<{family}>(.*?)</{family}>", body, flags=re.S)
        if not found:
            raise ValueError(f"the rendered Junos configuration has no {family} filter")
        families.append(f"<{family}>" + found.group(1).replace("<filter>", '<filter replace="replace">', 1) + f"</{family}>")
    bound = ""
    if bindings:
        bound = _strip_netconf(bindings if isinstance(bindings, str) else "".join(bindings))
        if not bound.startswith("<interfaces>") or "<output-list>" not in bound:
            raise ValueError("the rendered Junos bindings are not an interfaces output-list")
    load = f"<configuration><firewall><family>{families[1]}{families[0]}</family></firewall>{bound}</configuration>"
    xml.dom.minidom.parseString(load)  # well formed, or an error here rather than on the device
    return no_template(load, "Junos load")
