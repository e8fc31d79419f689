# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy IR -> nftables ruleset text (private to the collection).

The output is one ``nft -f`` file that creates the collection's own table if it is
missing, deletes it, and declares it again: loaded as one transaction, so the table is
replaced atomically and no other table is touched.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import TABLE_RE
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import FAMILIES
from ansible_collections.warden.egress.plugins.plugin_utils.render.audit import (
    AUDIT_ENTRIES,
    AUDIT_ONCE,
    AUDIT_PORT_PROTOS,
    audit_once,
    audit_prefix,
    audit_tag,
)
from ansible_collections.warden.egress.plugins.plugin_utils.render.dns import FAMILY_DIGIT, HALVES, named_sets, resolver_files
from ansible_collections.warden.egress.plugins.plugin_utils.render.common import (
    CAPABLE,
    LINUX_IFNAME,
    LOG_BURST,
    VERDICT_CHAINS,
    alert_burst,
    alert_class,
    alert_timeout,
    check_rules,
    clip,
    describe,
    merge_sets,
    owners,
    policies,
    quote,
)

SET_TYPES = {"ipv4": "ipv4_addr", "ipv6": "ipv6_addr"}
SUFFIX = {"ipv4": "v4", "ipv6": "v6"}
ADDR_KW = {"ipv4": "ip", "ipv6": "ip6"}
# What nftables cannot express, and its limits (``render.platforms`` gives them to the
# compile): a log prefix of 127 characters takes every egress_log.prefix with its word.
CAPABILITIES = {**CAPABLE, "dns_names": True, "name": "nftables", "meter": "a dynamic set", "interface": LINUX_IFNAME}
LIMITS = {"log_line": 127}
# Audit mode's flow sets: (name, key type, key expression) per family, with and without a port.
AUDIT_SETS = {
    family: [
        (f"audit_seen{SUFFIX[family][1]}", f"{SET_TYPES[family]} . {SET_TYPES[family]} . inet_proto . inet_service",
         f"{ADDR_KW[family]} saddr . {ADDR_KW[family]} daddr . meta l4proto . th dport"),
        (f"audit_seen_other{SUFFIX[family][1]}", f"{SET_TYPES[family]} . {SET_TYPES[family]} . inet_proto",
         f"{ADDR_KW[family]} saddr . {ADDR_KW[family]} daddr . meta l4proto"),
    ]
    for family in FAMILIES
}


def _ports(ranges: list) -> str:
    items = [str(low) if low == high else f"{low}-{high}" for low, high in ranges]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _names(items: list) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _ifnames(names: list) -> str:
    quoted = [quote(name) for name in names]
    return quoted[0] if len(quoted) == 1 else "{ " + ", ".join(quoted) + " }"


def _families(rule: Mapping, per_family: bool = False) -> list:
    """The families a rule is written out for: set matches and per-source meters are per
    family; anything else is one rule for both (None)."""
    sets = [rule.get("saddr_in"), rule["saddr_not_in"], rule["daddr_in"], rule.get("ct_orig_saddr_in")]
    if rule["family"] != "any":
        return [rule["family"]]
    if any(sets) or rule.get("meter") or per_family:
        return ["ipv4", "ipv6"]
    return [None]


def _alert_log_lines(ir: Mapping, rule: Mapping, log: Mapping) -> list[str]:
    """The log line of an alert rule, one per family, written just before the rule itself:
    each class has its own meter keyed on the source address, so every source of every
    class gets ``alert_burst`` lines at once and ``rate`` after that, whoever else is noisy.
    The counter counts the lines logged."""
    name = alert_class(rule)
    prefix = f"{log['prefix']} alert: "
    lines = []
    for family in _families(rule, per_family=True):
        parts = _match_parts(ir, rule, family)
        parts.append(f"update @alert_{name}_{SUFFIX[family]} {{ {ADDR_KW[family]} saddr limit rate {log['rate']} burst {alert_burst(log)} packets }}")
        parts.append(f"counter log prefix {quote(prefix)} comment {quote(clip(rule['comment']))}")
        lines.append(" ".join(parts))
    return lines


def _rule_lines(ir: Mapping, rule: Mapping, deny: str = "deny") -> list[str]:
    """One IR rule -> one nft rule per family it needs (set matches are per family), and per
    original destination port range (nft 1.0.6 lists an anonymous set of ``ct original
    proto-dst`` values as '[invalid type]', which it cannot read back)."""
    lines = []
    ranges = rule.get("ct_orig_dports") or [None]
    named = rule["daddr_in"] is not None and ir["sets"][rule["daddr_in"]].get("names")
    for family, ports, half in [(f, p, h) for f in _families(rule) for p in ranges for h in ((None, *HALVES) if named else (None,))]:
        if named and half is None and not ir["sets"][rule["daddr_in"]][family]:
            continue  # no listed address of this family: only the name sets can match
        parts = _match_parts(ir, rule, family, half)
        if ports is not None:
            low, high = ports
            parts.append(f"ct original proto-dst {low if low == high else f'{low}-{high}'}")
        if rule.get("meter") is not None:
            meter = rule["meter"]
            parts.append(
                f"update @meter_{SUFFIX[family]} {{ {ADDR_KW[family]} saddr limit rate over {meter['rate']} burst {int(meter['burst'])} packets }}"
            )
        verdict = "accept" if rule["action"] == "accept" else f"goto {deny if rule['action'] == 'deny' else rule['action']}"
        if rule["action"] == "ratelimit" and ir["mode"] == "audit":
            verdict = "jump ratelimit"  # audit: log the burst, then judge the flow as any other (so a denied one is audited)
        parts.append(verdict)
        parts.append(f"comment {quote(clip(rule['comment']))}")
        lines.append(" ".join(parts))
    return lines


def dns_set(name: str, half: str, family: str) -> str:
    """The nft set of one half of a name set (render.dns), for one family."""
    return f"dns_{name}_{half}_{SUFFIX[family]}"


def _match_parts(ir: Mapping, rule: Mapping, family: str | None, half: str | None = None) -> list[str]:
    """The match expressions of one IR rule for one family (None: both), its destination
    the half ``half`` of a name set when given; a rule's original destination ports are
    written by _rule_lines, after these."""
    parts = []
    if rule.get("iif") is not None:
        parts.append(f"iifname {_ifnames(rule['iif'])}")
    if rule.get("iif_not") is not None:
        parts.append(f"iifname != {_ifnames(rule['iif_not'])}")
    if rule["oif"] is not None:
        parts.append(f"oifname {_ifnames(rule['oif'])}")
    if rule.get("oif_not") is not None:
        parts.append(f"oifname != {_ifnames(rule['oif_not'])}")
    if rule["ct_state"] is not None:
        parts.append("ct state " + ",".join(rule["ct_state"]))
    if rule.get("ct_direction") is not None:
        if rule["ct_direction"] not in ("original", "reply"):
            raise ValueError(f"refusing to render unknown ct_direction {rule['ct_direction']!r}")
        parts.append(f"ct direction {rule['ct_direction']}")
    if rule.get("ct_orig_saddr_in") is not None:
        parts.append(f"ct original {ADDR_KW[family]} saddr @{rule['ct_orig_saddr_in']}_{SUFFIX[family]}")
    if rule.get("saddr_in") is not None:
        parts.append(f"{ADDR_KW[family]} saddr @{rule['saddr_in']}_{SUFFIX[family]}")
    if rule["saddr_not_in"] is not None:
        parts.append(f"{ADDR_KW[family]} saddr != @{rule['saddr_not_in']}_{SUFFIX[family]}")
    if rule["daddr_in"] is not None:
        target = rule["daddr_in"] + "_" + SUFFIX[family] if half is None else dns_set(rule["daddr_in"], half, family)
        parts.append(f"{ADDR_KW[family]} daddr @{target}")
    if rule["hoplimit"] is not None:
        parts.append(f"ip6 hoplimit {int(rule['hoplimit'])}")
    proto = rule["proto"]
    if proto in ("tcp", "udp"):
        if rule["dports"] is not None:
            parts.append(f"{proto} dport {_ports(rule['dports'])}")
        if rule.get("sports") is not None:
            parts.append(f"{proto} sport {_ports(rule['sports'])}")
        if rule["dports"] is None and rule.get("sports") is None:
            parts.append(f"meta l4proto {proto}")
    if rule.get("midstream"):
        if proto != "tcp":
            raise ValueError(f"refusing to render a midstream match for {proto!r}: it is a tcp packet without SYN")
        parts.append("tcp flags & (syn | ack) == ack")
    elif proto in ("icmp", "icmpv6"):
        if rule["icmp_types"] is not None:
            parts.append(f"{proto} type {_names(rule['icmp_types'])}")
        else:
            parts.append(f"meta l4proto {proto}")
    if rule.get("l4proto") is not None:
        parts.append(f"meta l4proto {int(rule['l4proto'])}")
    for kind, key in (("users", "skuid"), ("groups", "skgid")):
        found = owners(ir, rule, kind)
        if found is not None:
            parts.append(f"meta {key} " + _names([str(v) if isinstance(v, int) else quote(v) for v in found]))
    if family is not None and not any(p.startswith(ADDR_KW[family] + " ") for p in parts) and proto not in ("icmp", "icmpv6"):
        parts.insert(0, f"meta nfproto {family}")
    return parts


def _verdict_chain(name: str, log: Mapping, audit: bool) -> list[str]:
    """A chain that logs (under one limit) and drops, or accepts in audit mode. Alerts are
    logged before they get here, per class and source (``_alert_log_lines``)."""
    lines = [f"\tchain {name} {{"]
    if log["denied"] and name != "alert":
        word = "audit" if audit and name == "deny" else name
        prefix = f"{log['prefix']} {word}: "
        lines.append(f"\t\tlimit rate {log['rate']} burst {LOG_BURST} packets log prefix {quote(prefix)} comment {quote('log ' + name)}")
    if audit and name == "ratelimit":
        lines.append("\t\treturn comment \"audit mode: log, then judge the flow\"")
    else:
        lines.append("\t\taccept comment \"audit mode: log only\"" if audit else f"\t\tdrop comment {quote(name)}")
    lines.append("\t}")
    return lines


def _audit_chain(ir: Mapping, log: Mapping) -> list[str]:
    """Audit mode: the chain a would-be-denied flow of one policy goes to. A flow that is in
    its set was logged less than AUDIT_ONCE ago and is let through; any other is added to the
    set, counted and logged with the policy's tag (and, on the host's own output path, the
    local user id), and let through. ``th dport`` means something for AUDIT_PORT_PROTOS
    only; any other protocol is keyed on the addresses and the protocol."""
    tag = audit_tag(ir)
    prefix = f'"{audit_prefix(log, tag, LIMITS["log_line"])}"'
    flags = " flags skuid" if tag == "host" else ""
    ports = "{ " + ", ".join(AUDIT_PORT_PROTOS) + " }"
    lines = [f"\tchain audit_{tag} {{"]
    for family in FAMILIES:
        for (name, dummy, key), match in zip(AUDIT_SETS[family], (f"meta l4proto {ports}", f"meta l4proto != {ports}")):
            lines.append(f"\t\t{match} {key} @{name} accept comment \"audit: logged within the hour\"")
            lines.append(f"\t\t{match} add @{name} {{ {key} }} counter log prefix {prefix}{flags} accept comment \"audit: first packet of a flow\"")
    lines.append("\t\taccept comment \"audit mode: log only\"")
    lines.append("\t}")
    return lines


def dnsmasq(policy, servers: list[str] | None = None, resolv_file: str = "") -> dict:
    """The local resolver's files for the policies of one table (render.dns): its dnsmasq
    configuration (``conf``, empty when no set holds a name; forwarding to ``servers``, by
    default the policies' ``egress_dns.servers``, else to those of ``resolv_file``), the
    flush file of each half (``flush``: half -> ``nft -f`` text) and ``lifetime``."""
    irs = policies(policy, "hook", ("table", "mode", "log"), "table")
    table = irs[0]["table"]
    if not TABLE_RE.fullmatch(table):
        raise ValueError(f"refusing to render unsafe table name {table!r}")
    return resolver_files(irs, "nftset", lambda name, half, family: f"{FAMILY_DIGIT[family]}#inet#{table}#{dns_set(name, half, family)}",
                          lambda name, half, family: f"flush set inet {table} {dns_set(name, half, family)}", servers, resolv_file)


def render(policy) -> str:
    """Render the whole ``nft -f`` file for one IR, or for several (one chain per hook)
    sharing one table: a gateway's own host policy and its edge policy."""
    irs = policies(policy, "hook", ("table", "mode", "log"), "table")
    check_rules(CAPABILITIES, irs)
    first = irs[0]
    table = first["table"]
    if not TABLE_RE.fullmatch(table):
        raise ValueError(f"refusing to render unsafe table name {table!r}")
    audit = first["mode"] == "audit"
    out = [
        f"# warden.egress policy for {first['target']} ({describe(irs)}; mode: {first['mode']})",
        "# Generated: edit the inventory, not this file. Loading it replaces only this table.",
        f"table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
    ]
    for name, families in merge_sets(irs).items():
        for family in FAMILIES:
            out.append(f"\tset {name}_{SUFFIX[family]} {{")
            out.append(f"\t\ttype {SET_TYPES[family]}")
            out.append("\t\tflags interval")
            if families[family]:
                out.append("\t\telements = { " + ", ".join(families[family]) + " }")
            out.append("\t}")
    for name in named_sets(irs):
        for family in FAMILIES:
            for half in HALVES:
                out.append(f"\tset {dns_set(name, half, family)} {{")
                out.append(f"\t\ttype {SET_TYPES[family]}")
                out.append("\t\tflags dynamic")  # filled by the resolver: its members are not the policy's (nft_apply)
                out.append("\t}")
    rules = [rule for ir in irs for rule in ir["rules"]]
    if any(rule.get("meter") for rule in rules):
        for family in FAMILIES:
            out.append(f"\tset meter_{SUFFIX[family]} {{")
            out.append(f"\t\ttype {SET_TYPES[family]}")
            out.append("\t\tflags dynamic,timeout")
            out.append("\t\ttimeout 1m")
            out.append("\t}")
    classes = sorted({alert_class(rule) for rule in rules if rule["action"] == "alert"}) if first["log"]["denied"] else []
    for name in classes:
        for family in FAMILIES:
            out.append(f"\tset alert_{name}_{SUFFIX[family]} {{")
            out.append(f"\t\ttype {SET_TYPES[family]}")
            out.append("\t\tflags dynamic,timeout")
            out.append(f"\t\ttimeout {alert_timeout(first['log'])}s")
            out.append("\t}")
    once = audit_once(irs)
    if once:
        for family in FAMILIES:
            for name, key_type, dummy in AUDIT_SETS[family]:
                out.append(f"\tset {name} {{")
                out.append(f"\t\ttype {key_type}")
                out.append("\t\tflags dynamic,timeout")
                out.append(f"\t\ttimeout {AUDIT_ONCE}s")
                out.append(f"\t\tsize {AUDIT_ENTRIES}")
                out.append("\t}")
    # In audit mode each policy's would-be denials go to its own audit chain instead.
    used = {rule["action"] for rule in rules} | {"deny"}
    if once:
        used.discard("deny")
    for name in VERDICT_CHAINS:
        if name in used:
            out.append("")
            out.extend(_verdict_chain(name, first["log"], audit))
    for ir in irs if once else []:
        out.append("")
        out.extend(_audit_chain(ir, first["log"]))
    for ir in irs:
        deny = f"audit_{audit_tag(ir)}" if once else "deny"
        out.append("")
        out.append(f"\tchain {ir['hook']} {{")
        out.append(f"\t\ttype filter hook {ir['hook']} priority filter; policy {'accept' if audit else 'drop'};")
        for rule in ir["rules"]:
            if rule["action"] == "alert" and first["log"]["denied"]:
                out.extend(f"\t\t{line}" for line in _alert_log_lines(ir, rule, first["log"]))
            for line in _rule_lines(ir, rule, deny):
                out.append(f"\t\t{line}")
        out.append(f"\t\tgoto {deny} comment \"default deny\"")
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"
