# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Policy IR: the contract between the compile and every renderer (private to the
collection). Its shape is documented in ``docs/policy-ir.md``.

Pure Python: no Ansible imports. ``new_rule`` is the one constructor of an IR rule,
``rule_key`` what makes two rules the same, and ``check_ir`` the schema check every
filter door applies before a renderer reads an IR.
"""

from __future__ import annotations

from collections.abc import Mapping

IR_SCHEMA = 1
FAMILIES = ("ipv4", "ipv6")
KINDS = {"host": "output", "edge": "forward"}
ACTIONS = ("accept", "deny", "alert", "ratelimit", "unserved")

RULE_FIELDS = (
    "family",           # any | ipv4 | ipv6
    "iif",              # list of input interface names
    "oif",              # list of output interface names
    "oif_not",          # list: matches when the output interface is none of these
    "ct_state",         # list of conntrack states
    "saddr_in",         # set name: source in the set
    "saddr_not_in",     # set name: source not in the set
    "daddr_in",         # set name: destination in the set
    "proto",            # tcp | udp | icmp | icmpv6
    "l4proto",          # a raw IP protocol number (OSPF 89, EIGRP 88)
    "dports",           # merged port ranges
    "icmp_types",
    "hoplimit",
    "meter",            # {rate, burst}: per-source limit on new connections; matches when exceeded
    "iif_not",          # list: matches when the input interface is none of these
    "ct_direction",     # original (a connection this host opened) | reply (one opened from outside)
    "ct_orig_dports",   # port ranges: the connection's original destination port (what the client asked for)
    "ct_orig_saddr_in",  # set name: the connection's original source (the client) is in the set
    "users",            # local users (names or uids): the sending socket's owner is one of them
    "groups",           # local groups (names or gids): the sending socket's group is one of them
    "sports",           # port ranges: the packet's source port (this host's port, for a connection it answers)
    "midstream",        # true: a TCP packet with ACK and without SYN, tracked from this packet on (see compile.host.pickup_rules)
)
SET_FIELDS = ("saddr_in", "saddr_not_in", "daddr_in", "ct_orig_saddr_in")
# Keys a rule may carry besides its match: its action, where it comes from, and (alert rules) the class.
RULE_EXTRA = ("action", "origin", "comment", "alert_class")
IR_KEYS = ("schema", "target", "kind", "hook", "platform", "table", "mode", "default", "log", "sets", "rules")


def new_rule(action: str, origin: str, comment: str, **match) -> dict:
    """One IR rule: every match field present (``None``: not matched on; family ``any``)."""
    out = {"action": action}
    for field in RULE_FIELDS:
        out[field] = match.pop(field, "any" if field == "family" else None)
    out["origin"] = origin
    out["comment"] = comment
    if match:  # pragma: no cover - programming error
        raise TypeError(f"unknown match keys {sorted(match)}")
    return out


def rule_key(one: Mapping) -> tuple:
    """What makes two rules the same rule (their origin and comment aside)."""
    return tuple((k, repr(v)) for k, v in one.items() if k not in ("origin", "comment"))


def dedupe(rules: list[dict], keys: list | None = None) -> list[dict]:
    """The rules without repeats, first kept; ``keys`` may give each rule's key ready-made."""
    seen = set()
    out = []
    for one, key in zip(rules, keys or map(rule_key, rules)):
        if key in seen:
            continue
        seen.add(key)
        out.append(one)
    return out


def new_ir(kind: str, target: str, settings: Mapping, roles: list, sets: Mapping, rules: list, exceptions: list, warnings: list,
           **extra) -> dict:
    """A Policy IR: ``settings`` the target's platform, table, mode and log; ``extra`` what
    one kind has of its own (a host's ``replies`` and ``local_ids``, an edge's ``edge``), in
    the order ``docs/policy-ir.md`` shows."""
    head = {"schema": IR_SCHEMA, "target": target, "kind": kind, "hook": KINDS[kind], "platform": settings["platform"],
            "table": settings["table"], "mode": settings["mode"], "roles": roles, "default": "deny"}
    if "replies" in extra:
        head["replies"] = extra.pop("replies")
    head["log"] = settings["log"]
    return {**head, **extra, "sets": dict(sorted(sets.items())), "rules": rules, "exceptions": exceptions, "warnings": warnings}


def ir_problem(ir: object) -> str | None:
    """Why ``ir`` is not a Policy IR this collection wrote (None: it is one). Checks the
    shape a renderer relies on: the schema version, the kind and its hook, every key, every
    rule's fields and action, and that every set a rule names is defined."""
    if not isinstance(ir, Mapping):
        return f"is a {type(ir).__name__}, not a mapping"
    missing = [key for key in IR_KEYS if key not in ir]
    if missing:
        return f"has no {', '.join(missing)}"
    if ir["schema"] != IR_SCHEMA:
        return f"is schema {ir['schema']!r}, not {IR_SCHEMA}"
    if not isinstance(ir["kind"], str) or KINDS.get(ir["kind"]) != ir["hook"]:
        return f"is kind {ir['kind']!r} with hook {ir['hook']!r}"
    sets, rules = ir["sets"], ir["rules"]
    if not isinstance(sets, Mapping) or not isinstance(rules, list):
        return "has sets that are not a mapping or rules that are not a list"
    for index, one in enumerate(rules):
        if not isinstance(one, Mapping):
            return f"has rules[{index}] that is not a mapping"
        unknown = set(one) - set(RULE_FIELDS) - set(RULE_EXTRA)
        absent = [field for field in RULE_FIELDS + ("action", "origin", "comment") if field not in one]
        if unknown or absent:
            return f"has rules[{index}] with fields {sorted(unknown)} unknown and {absent} missing"
        if not isinstance(one["action"], str) or one["action"] not in ACTIONS:
            return f"has rules[{index}] with action {one['action']!r}"
        for field in SET_FIELDS:
            if one[field] is not None and (not isinstance(one[field], str) or one[field] not in sets):
                return f"has rules[{index}] naming set {one[field]!r}, which it does not define"
    return None
