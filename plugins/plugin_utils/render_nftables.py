# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy IR -> nftables ruleset text (private to the collection).

The output is one ``nft -f`` file that creates the collection's own table if it is
missing, deletes it, and declares it again: loaded as one transaction, so the table is
replaced atomically and no other table is touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SAFE_TEXT = re.compile(r"^[A-Za-z0-9_ .,:/()#-]{1,120}$")
SET_TYPES = {"ipv4": "ipv4_addr", "ipv6": "ipv6_addr"}
SUFFIX = {"ipv4": "v4", "ipv6": "v6"}
ADDR_KW = {"ipv4": "ip", "ipv6": "ip6"}


def _text(value: str) -> str:
    """Quote text for the ruleset; anything that could break out of a string is refused."""
    if not SAFE_TEXT.match(value):
        raise ValueError(f"refusing to render unsafe text into the ruleset: {value!r}")
    return f'"{value}"'


def _ports(ranges: list) -> str:
    items = [str(low) if low == high else f"{low}-{high}" for low, high in ranges]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _names(items: list) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _rule_lines(rule: Mapping) -> list[str]:
    """One IR rule -> one nft rule per family it needs (set matches are per family)."""
    families = [rule["family"]] if rule["family"] != "any" else [None]
    if rule["family"] == "any" and (rule["saddr_not_in"] or rule["daddr_in"]):
        families = ["ipv4", "ipv6"]
    lines = []
    for family in families:
        parts = []
        if rule["oif"] is not None:
            parts.append(f"oifname {_text(rule['oif'])}")
        if rule["ct_state"] is not None:
            parts.append("ct state " + ",".join(rule["ct_state"]))
        if rule["saddr_not_in"] is not None:
            parts.append(f"{ADDR_KW[family]} saddr != @{rule['saddr_not_in']}_{SUFFIX[family]}")
        if rule["daddr_in"] is not None:
            parts.append(f"{ADDR_KW[family]} daddr @{rule['daddr_in']}_{SUFFIX[family]}")
        if rule["hoplimit"] is not None:
            parts.append(f"ip6 hoplimit {int(rule['hoplimit'])}")
        proto = rule["proto"]
        if proto in ("tcp", "udp"):
            if rule["dports"] is not None:
                parts.append(f"{proto} dport {_ports(rule['dports'])}")
            else:
                parts.append(f"meta l4proto {proto}")
        elif proto in ("icmp", "icmpv6"):
            if rule["icmp_types"] is not None:
                parts.append(f"{proto} type {_names(rule['icmp_types'])}")
            else:
                parts.append(f"meta l4proto {proto}")
        if family is not None and not any(p.startswith(ADDR_KW[family] + " ") for p in parts) and proto not in ("icmp", "icmpv6"):
            parts.insert(0, f"meta nfproto {family}")
        verdict = "accept" if rule["action"] == "accept" else "goto deny"
        parts.append(verdict)
        parts.append(f"comment {_text(rule['comment'])}")
        lines.append(" ".join(parts))
    return lines


def render(ir: Mapping) -> str:
    """Render the whole ``nft -f`` file for ``ir``."""
    table = ir["table"]
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$", table):
        raise ValueError(f"refusing to render unsafe table name {table!r}")
    audit = ir["mode"] == "audit"
    log = ir["log"]
    out = [
        f"# warden.egress policy for {ir['target']} (roles: {', '.join(ir['roles'])}; mode: {ir['mode']})",
        "# Generated: edit the inventory, not this file. Loading it replaces only this table.",
        f"table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
    ]
    for name, families in ir["sets"].items():
        for family in ("ipv4", "ipv6"):
            out.append(f"\tset {name}_{SUFFIX[family]} {{")
            out.append(f"\t\ttype {SET_TYPES[family]}")
            out.append("\t\tflags interval")
            if families[family]:
                out.append("\t\telements = { " + ", ".join(families[family]) + " }")
            out.append("\t}")
    out.append("")
    out.append("\tchain deny {")
    if log["denied"]:
        prefix = f"{log['prefix']} {'audit' if audit else 'deny'}: "
        out.append(f"\t\tlimit rate {log['rate']} burst 5 packets log prefix {_text(prefix)} comment {_text('log denied')}")
    out.append("\t\taccept comment \"audit mode: log only\"" if audit else "\t\tdrop comment \"denied\"")
    out.append("\t}")
    out.append("")
    out.append(f"\tchain {ir['hook']} {{")
    out.append(f"\t\ttype filter hook {ir['hook']} priority filter; policy {'accept' if audit else 'drop'};")
    for rule in ir["rules"]:
        for line in _rule_lines(rule):
            out.append(f"\t\t{line}")
    out.append("\t\tgoto deny comment \"default deny\"")
    out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"
