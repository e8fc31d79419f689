# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy IR -> pf rules for the collection's own anchor (private to the collection).

Every rule is ``quick``, so the first rule that matches decides, as in the IR; the anchor
ends in a ``block ... quick`` catch-all for what it judges. Address sets are pf tables
holding both families.

A host policy (the box's own traffic) becomes ``out`` rules. An edge policy is about packets
forwarded from one interface out of an outside one; pf sees such a packet twice (``in`` on
the first interface, ``out`` on the second), so ``match in on IF tag WE_IN_IF`` rules mark
where a packet came in, and the edge rules are rendered once per (in, out) pair of declared
interfaces, each rule carrying ``on OUT tagged WE_IN_IN`` and the IR's interface conditions
resolved for that pair. A packet leaving by an outside interface that came in by an
undeclared one carries no tag; a final ``from ! self`` rule denies it, and the box's own
packets (``from self``) go on to the host rules. The same tables and rules load on OpenBSD
and FreeBSD; see docs/pf.md for what differs.

pf has no rate limit on logging: a ``block ... log`` rule logs every packet it blocks, so the
per-class, per-source alert limits of the other backends have no pf form; each alert class
keeps its own label instead.

What a host serves (rules in the connection's reply direction) is judged where pf creates
state: on the way in. ``match in ... to self ... tag WE_SERVED`` marks a new connection to a
served service, and ``block in ... to self ! tagged WE_SERVED`` refuses every other new TCP
and UDP connection and ICMP echo request to the box, so no state exists whose replies could
leave. A served connection is not passed here: the rest of pf.conf decides it as before.
Local users and groups are pf's ``user`` and ``group`` options (TCP and UDP only).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import ICMP_TYPES
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import RATE_SECONDS, TABLE_RE
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import new_rule
from ansible_collections.warden.egress.plugins.plugin_utils.render.common import CAPABLE, check_rules, describe, merge_sets, owners, policies, quote, specialise

TABLE_MAX = 31
LABEL_MAX = 63
FLOOD_TABLE = "warden_flood"
AF = {"ipv4": "inet", "ipv6": "inet6"}
SERVED_TAG = "WE_SERVED"
# The inbound packet that opens what a served reply rule answers (pf judges that one).
REQUEST_OF = {"echo-reply": "echo-request"}
# What pf.conf reads as an interface (a driver name, then its unit): a letter first, no '-'.
PF_IFNAME = (re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,14}"), "a letter, then at most 14 of letters, digits, '_.'")
# What pf cannot express, and its limits (``render.platforms`` gives them to the compile):
# local users and groups for TCP and UDP only; no limit the inventory can reach (a long
# address set name is cut with a hash of itself, a long label is clipped).
CAPABILITIES = {**CAPABLE, "name": "pf", "owners": ("tcp", "udp"), "meter": "max-src-conn-rate", "interface": PF_IFNAME,
                "dns_refusal": "a pf table is filled by pfctl, not by a resolver as it answers, so it would hold addresses "
                               "the clients are no longer given; list the upstream's addresses instead"}
LIMITS: dict = {}


def table_name(name: str) -> str:
    if len(name) <= TABLE_MAX:
        return name
    return f"{name[:TABLE_MAX - 7]}~{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def tag_name(interface: str) -> str:
    """The tag for packets that came in on ``interface``; a name that needs its characters
    replaced also carries a hash of itself, so 'vlan.1' and 'vlan_1' get different tags."""
    plain = re.sub(r"[^A-Za-z0-9_]", "_", interface)
    return "WE_IN_" + (plain if plain == interface else f"{plain}_{hashlib.sha256(interface.encode()).hexdigest()[:6]}")


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + " ".join(items) + " }"


def _ports(ranges: list) -> str:
    return _list([str(low) if low == high else f"{low}:{high}" for low, high in ranges])


def conn_rate(meter: Mapping) -> str:
    """An IR meter (rate, burst) as pf's ``max-src-conn-rate N/S``: the burst, in the time
    the rate takes to refill it."""
    count, unit = meter["rate"].split("/")
    per_second = int(count) / RATE_SECONDS[unit]
    burst = int(meter["burst"])
    return f"{burst}/{max(1, math.ceil(burst / per_second))}"


def _family_and_proto(rule: Mapping) -> list[str]:
    """A rule's address family (when its family or its ICMP says which) and protocol."""
    proto = rule["proto"]
    parts = []
    if rule["family"] != "any":
        parts.append(AF[rule["family"]])
    elif proto == "icmp":
        parts.append("inet")
    elif proto == "icmpv6":
        parts.append("inet6")
    if proto is not None:
        parts.append(f"proto {'icmp6' if proto == 'icmpv6' else proto}")
    return parts


def _owner_options(ir: Mapping, rule: Mapping) -> list[str]:
    """pf's ``user`` and ``group`` options for a rule's local users and groups."""
    out = []
    for kind, word in (("users", "user"), ("groups", "group")):
        found = owners(ir, rule, kind)
        if found is None:
            continue
        out.append(f"{word} {_list([str(v) if isinstance(v, int) else quote(v) for v in found])}")
    return out


class _Renderer:
    def __init__(self, irs: list) -> None:
        self.audit = irs[0]["mode"] == "audit"
        self.sets = merge_sets(irs)
        self.used_tables: set = set()
        self.meter = None
        self.flood = False

    def table(self, name: str) -> str:
        if name not in self.sets:
            raise ValueError(f"rule references undefined set {name}")
        self.used_tables.add(name)
        return f"<{table_name(name)}>"

    def served(self, rule: Mapping) -> list[str]:
        """A rule about the replies of connections opened from outside, as pf judges the
        inbound packet that opens such a connection (see the module's docstring)."""
        proto = rule["proto"]
        parts = _family_and_proto(rule)
        if proto is None:
            parts.append("proto { tcp udp }")
        src = self.table(rule["ct_orig_saddr_in"]) if rule.get("ct_orig_saddr_in") is not None else "any"
        port = f" port {_ports(rule['ct_orig_dports'])}" if rule.get("ct_orig_dports") is not None else ""
        parts.append(f"from {src} to self{port}")
        if proto in ("icmp", "icmpv6"):
            family = "ipv4" if proto == "icmp" else "ipv6"
            types = [REQUEST_OF.get(name, name) for name in rule["icmp_types"] or ["echo-reply"]]
            parts.append(f"{'icmp-type' if proto == 'icmp' else 'icmp6-type'} {_list([str(ICMP_TYPES[family][t]) for t in types])}")
        if rule["action"] == "accept":
            return [" ".join(["match in", *parts, f"tag {SERVED_TAG}", f"label {quote(rule['comment'], LABEL_MAX)}"])]
        if proto is not None or any(rule.get(key) is not None for key in ("ct_orig_saddr_in", "ct_orig_dports")):
            raise ValueError("pf renders only one denial of unserved replies: every new connection to the box that no served rule tagged")
        head = "match in log on ! lo" if self.audit else "block in log quick on ! lo"
        tail = f"! tagged {SERVED_TAG}" + (" tag WE_UNSERVED" if self.audit else "")
        # pf refuses the connection itself: say so (the IR's comment speaks of its replies).
        comment = "baseline: connections to what this host does not serve"
        label = quote(f"audit: {comment}" if self.audit else comment, LABEL_MAX)
        return [f"{head} {what} from any to self {kind} {tail} label {label}".replace("  ", " ") for what, kind in (
            ("proto { tcp udp }", ""), ("inet proto icmp", "icmp-type 8"), ("inet6 proto icmp6", "icmp6-type 128"))]

    def pickup(self, rule: Mapping) -> list[str]:
        """A connection to this box that pf has no state for (pf was off when it opened), as
        pf creates state from its next packet out: ACK without SYN (``flags A/SA``), from the
        served port to the served clients. ``sloppy``: pf learns a connection's window
        scaling from its SYNs, which it never saw here, so it does not check the window."""
        if rule["proto"] != "tcp" or rule.get("sports") is None:
            raise ValueError("pf picks up only tcp connections, from a port of the box")
        parts = ["pass out quick"]
        if rule["family"] != "any":
            parts.append(AF[rule["family"]])
        dst = self.table(rule["daddr_in"]) if rule["daddr_in"] is not None else "any"
        parts += ["proto tcp", f"from self port {_ports(rule['sports'])} to {dst}", "flags A/SA keep state (sloppy)",
                  f"label {quote(rule['comment'], LABEL_MAX)}"]
        return [" ".join(parts)]

    def line(self, rule: Mapping, on: str | None = None, tagged: str | None = None, not_self: bool = False,
             ir: Mapping | None = None) -> list[str]:
        """One IR rule as pf rules (one per family when only one family's table applies)."""
        if rule.get("sports") is not None or rule.get("midstream"):
            raise ValueError("pf writes a source port only for a connection picked up mid-stream (pickup)")
        action = rule["action"]
        if action == "ratelimit":
            # The meter itself is pf's source tracking on the pass rules below; what it
            # overloads is blocked here, where the IR puts the meter.
            self.meter = rule["meter"]
            self.flood = True
            action, source = "ratelimit", f"<{FLOOD_TABLE}>"
        else:
            source = None
        parts = []
        if action == "accept":
            parts.append("pass out")
        elif self.audit:
            parts.append("pass out log")
        else:
            parts.append("block out log")
        parts.append("quick")
        if on is not None:
            parts.append(f"on {on}")
        elif rule["oif"] is not None:
            parts.append(f"on {_list(rule['oif'])}")
        elif rule.get("oif_not") is not None:
            if len(rule["oif_not"]) != 1:
                raise ValueError("pf cannot negate a list of interfaces in one rule")
            parts.append(f"on ! {rule['oif_not'][0]}")
        proto = rule["proto"]
        parts.extend(_family_and_proto(rule))
        if rule.get("l4proto") is not None:
            parts.append(f"proto {int(rule['l4proto'])}")
        if source is not None:
            src = source
        elif rule.get("saddr_in") is not None:
            src = self.table(rule["saddr_in"])
        elif rule["saddr_not_in"] is not None:
            src = "! " + self.table(rule["saddr_not_in"])
        else:
            src = "any"
        if not_self:
            if src != "any":
                raise ValueError("a rule for undeclared interfaces cannot also match a source set")
            src = "! self"
        dst = self.table(rule["daddr_in"]) if rule["daddr_in"] is not None else "any"
        port = f" port {_ports(rule['dports'])}" if proto in ("tcp", "udp") and rule["dports"] is not None else ""
        if src == "any" and dst == "any" and not port:
            parts.append("all" if proto is None and rule.get("l4proto") is None else "from any to any")
        else:
            parts.append(f"from {src} to {dst}{port}")
        if proto in ("icmp", "icmpv6") and rule["icmp_types"] is not None:
            family = "ipv4" if proto == "icmp" else "ipv6"
            keyword = "icmp-type" if proto == "icmp" else "icmp6-type"
            parts.append(f"{keyword} {_list([str(ICMP_TYPES[family][name]) for name in rule['icmp_types']])}")
        if tagged is not None:
            parts.append(f"tagged {tagged}")
        if ir is not None:
            parts.extend(_owner_options(ir, rule))
        if action == "accept":
            if self.meter is not None and proto == "tcp":
                parts.append(f"keep state (max-src-conn-rate {conn_rate(self.meter)}, overload <{FLOOD_TABLE}> flush global)")
            else:
                parts.append("keep state")
        label = rule["comment"] if action == "accept" or not self.audit else f"audit: {rule['comment']}"
        parts.append(f"label {quote(label, LABEL_MAX)}")
        return [" ".join(parts)]


def _unconditional(rule: Mapping) -> bool:
    keys = ("saddr_in", "saddr_not_in", "daddr_in", "proto", "l4proto", "dports", "icmp_types", "hoplimit", "meter",
            "ct_direction", "ct_orig_dports", "ct_orig_saddr_in", "users", "groups", "sports", "midstream")
    return rule["family"] == "any" and all(rule.get(key) is None for key in keys)


def _edge_lines(rend: _Renderer, ir: Mapping) -> list[str]:
    edge = ir["edge"]
    declared = [entry["interface"] for entry in edge["inside"]] + list(edge["outside"])
    out = [f"match in on {name} all tag {tag_name(name)} label {quote('edge: came in on ' + name, LABEL_MAX)}" for name in declared]
    for outside in edge["outside"]:
        for inside in declared + [None]:
            rend.meter = None
            for rule in ir["rules"]:
                special = specialise(rule, inside, outside)
                if special is None:
                    continue
                if inside is None:
                    out.extend(rend.line(special, on=outside, not_self=True))
                else:
                    out.extend(rend.line(special, on=outside, tagged=tag_name(inside)))
                if _unconditional(special):
                    break
            else:
                out.extend(rend.line(new_rule("deny", "default", "default deny"), on=outside,
                                     tagged=tag_name(inside) if inside else None, not_self=inside is None))
    return out


def _host_lines(rend: _Renderer, ir: Mapping) -> list[str]:
    rend.meter = None
    out = []
    for rule in ir["rules"]:
        if rule.get("ct_direction") == "reply":
            out.extend(rend.served(rule))
            continue
        if rule.get("midstream"):
            out.extend(rend.pickup(rule))
            continue
        if rule["ct_state"] is not None:
            continue
        out.extend(rend.line(rule, ir=ir))
        if _unconditional(rule) and rule.get("oif") is None and rule.get("oif_not") is None:
            return out
    out.extend(rend.line(new_rule("deny", "default", "default deny")))
    return out


def render(policy, anchor: str = "warden_egress") -> str:
    """The anchor file (``pfctl -a ANCHOR -f FILE``) for one IR or a host and an edge IR."""
    irs = policies(policy, "kind", ("mode",), "anchor")
    check_rules(CAPABILITIES, irs)
    if not TABLE_RE.fullmatch(anchor):
        raise ValueError(f"refusing to render unsafe anchor name {anchor!r}")
    # Edge rules first: they judge forwarded packets; the host rules judge the rest.
    irs = sorted(irs, key=lambda ir: ir["kind"] != "edge")
    rend = _Renderer(irs)
    rules = []
    for ir in irs:
        rules.append("")
        rules.append(f"# {ir['kind']} policy ({describe([ir], kinds=False)})")
        rules.extend(_edge_lines(rend, ir) if ir["kind"] == "edge" else _host_lines(rend, ir))
    out = [
        f"# warden.egress policy for {irs[0]['target']} ({describe(irs)}; mode: {irs[0]['mode']})",
        f"# Generated: edit the inventory, not this file. Load with: pfctl -a {anchor} -f FILE",
        "",
    ]
    for name in sorted(rend.used_tables):
        members = rend.sets[name]["ipv4"] + rend.sets[name]["ipv6"]
        out.append(f"table <{table_name(name)}> persist" + (" { " + " ".join(members) + " }" if members else ""))
    if rend.flood:
        out.append(f"table <{FLOOD_TABLE}> persist")
    out.extend(rules)
    return "\n".join(out) + "\n"


def render_pf_conf(anchor: str = "warden_egress", anchor_file: str = "/etc/pf.anchors/warden_egress", extra: list | None = None) -> str:
    """A complete /etc/pf.conf that hooks the collection's anchor in (the opt-in full mode)."""
    if not TABLE_RE.fullmatch(anchor):
        raise ValueError(f"refusing to render unsafe anchor name {anchor!r}")
    if not re.fullmatch(r"/[A-Za-z0-9_./-]+", anchor_file):
        raise ValueError(f"refusing to render unsafe anchor file path {anchor_file!r}")
    lines = [
        "# /etc/pf.conf managed by warden.egress: edit the inventory (pf_egress_extra_rules), not this file.",
        "set skip on lo",
        "set block-policy drop",
        f'anchor "{anchor}"',
        f'load anchor "{anchor}" from "{anchor_file}"',
    ]
    for line in extra or []:
        if not isinstance(line, str) or "\n" in line or not line.strip():
            raise ValueError(f"pf_egress_extra_rules: {line!r} is not one pf rule on one line")
        lines.append(line)
    lines += [
        "# What the anchor does not decide: inbound, and outbound it has no rule for.",
        'pass in all keep state label "pf.conf: inbound is not decided by warden.egress"',
        'pass out all keep state label "pf.conf: outbound the anchor has no rule for"',
    ]
    return "\n".join(lines) + "\n"
