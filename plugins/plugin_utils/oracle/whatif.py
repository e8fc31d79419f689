# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What-if: the flows whose verdict differs between two compiled sites, with the rule that
decided on each side (private to the collection).

The flows judged are those given (learned flows, the hosts' verify flows) and flows drawn
from every rule of both sides' policies: one packet each rule was written for, at the low
and at the high end of its ports. A rule that only answers connections (``serves``) is
drawn as the inbound connection it answers. A rule whose destinations hold DNS names is
drawn once more for each name, as a flow to that name (``dns_name``, at the name's stand-in
address, ``verify.stand_in``), so that adding or removing ``dns:NAME`` shows the flows to
that name change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import is_dns_entry
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import Flow, learned_flow
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import Evaluator, normalise_packet
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.verify import flow_dst_name, name_reason, stand_in
from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import compile_site

INTERNET = {"ipv4": "203.0.113.1", "ipv6": "2001:db8:ffff::1"}
NO_POLICY = {"verdict": "accept", "denied": False, "origin": "none", "reason": "no policy of this kind on the host"}


def policies_by_kind(site: Iterable) -> dict[str, dict[str, dict]]:
    """``{host: {kind: IR}}`` from compile_site's ``(host, [IR, ...])`` pairs or a mapping of them."""
    pairs = site.items() if isinstance(site, Mapping) else site
    out: dict[str, dict[str, dict]] = {}
    for host, irs in pairs:
        if isinstance(irs, Mapping) and "kind" not in irs:
            out[host] = dict(irs)
        else:
            out[host] = {ir["kind"]: ir for ir in ([irs] if isinstance(irs, Mapping) else irs)}
    return out


def _member(ir: Mapping, set_name: str | None, family: str) -> str | None:
    """One address of a set of the IR (the prefix's first usable one)."""
    if set_name is None:
        return None
    for prefix in ir["sets"].get(set_name, {}).get(family, []):
        net = ipaddress.ip_network(prefix)
        return str(net.network_address if net.num_addresses <= 2 else net.network_address + 1)
    return None


def drawn_name(entry: str) -> str | None:
    """The name a flow is drawn to for a set's DNS name: the name itself, or for ``*.ZONE`` a
    name below the zone (``any.ZONE``); None when no name below it fits in 253 characters."""
    if not entry.startswith("*."):
        return entry
    for label in ("any", "a"):
        if len(entry) - 1 + len(label) <= 253:
            return f"{label}{entry[1:]}"
    return None


def _names(ir: Mapping, set_name: str | None) -> list[tuple[str, str]]:
    """(entry, the name drawn for it) for each DNS name of a set."""
    if set_name is None:
        return []
    pairs = [(entry, drawn_name(entry)) for entry in ir["sets"].get(set_name, {}).get("names", ())]
    return [(entry, name) for entry, name in pairs if name is not None]


def draw(host: str, kind: str, ir: Mapping, own: Iterable[str] = ()) -> list[dict]:
    """A packet for each rule of ``ir`` (two for a port range), as the rule was written for,
    and as many again for each DNS name its destinations hold (to that name).
    ``own`` are the host's addresses: a host policy's packets leave from them."""
    out = []
    own_by_family = {}
    for addr in own:
        parsed = ipaddress.ip_address(str(addr).split("/", maxsplit=1)[0])
        own_by_family.setdefault(f"ipv{parsed.version}", str(parsed))
    trusted = "trusted" if "trusted" in ir["sets"] else None
    for index, rule in enumerate(ir["rules"]):
        families = ["ipv4", "ipv6"] if rule["family"] == "any" else [rule["family"]]
        for family in families:
            src = (_member(ir, rule.get("saddr_in"), family) or (own_by_family.get(family) if kind == "host" else None)
                   or _member(ir, trusted, family))
            dst = _member(ir, rule["daddr_in"], family) or INTERNET[family]
            if src is None or rule["proto"] in ("icmp", "icmpv6") and rule["proto"] != ("icmp" if family == "ipv4" else "icmpv6"):
                continue
            packet: dict = {"src": src, "dst": dst}
            if rule.get("l4proto") is not None:
                packet["proto"] = rule["l4proto"]
            elif rule["proto"] is not None:
                packet["proto"] = rule["proto"]
            if rule["icmp_types"]:
                packet["icmp_type"] = rule["icmp_types"][0]
            for key in ("iif", "oif"):
                if rule.get(key):
                    packet[key] = rule[key][0]
            if rule["hoplimit"] is not None:
                packet["hoplimit"] = rule["hoplimit"]
            for rkey, pkey in (("users", "user"), ("groups", "group")):
                if rule.get(rkey):
                    packet[pkey] = rule[rkey][0]
            if rule.get("ct_direction") == "reply" and rule.get("ct_orig_dports") and kind == "host":
                # an answer to a served port: the inbound connection it answers
                packet.update(direction="inbound", src=_member(ir, rule.get("ct_orig_saddr_in"), family) or INTERNET[family],
                              dst=src, proto=packet.get("proto", "tcp"))
                ports = rule["ct_orig_dports"]
            else:
                if rule["ct_state"]:
                    packet["ct_state"] = "new" if "new" in rule["ct_state"] else rule["ct_state"][0]
                if rule.get("midstream"):
                    # the next packet of a connection to this host, picked up mid-stream
                    packet.update(midstream=True, sport=rule["sports"][0][0])
                ports = rule["dports"]
            origin = f"drawn from {host} {kind} rule {index} ({rule['comment']})"
            targets = [(origin, packet)]
            if packet.get("direction") != "inbound":
                targets += [(f"{origin}, name dns:{entry}", {**packet, "dst": stand_in(name, family), "dns_name": name})
                            for entry, name in _names(ir, rule["daddr_in"])]
            for where, each in targets:
                if each.get("proto", "tcp") in ("tcp", "udp"):
                    for port in sorted({ports[0][0], ports[-1][1]}) if ports else [443]:
                        out.append({"host": host, "kind": kind, "origin": where, "packet": {**each, "dport": port}})
                else:
                    out.append({"host": host, "kind": kind, "origin": where, "packet": each})
    return out


def _own(addresses, host: str) -> list[str]:
    if addresses is None:
        return []
    raw = addresses(host) if callable(addresses) else addresses.get(host)
    return [raw] if isinstance(raw, str) else list(raw or [])


def _decide(policies: Mapping, flow: Mapping, oracles: dict) -> dict:
    """The decision under the flow's policy, by one indexed ``Evaluator`` per policy (kept in ``oracles``)."""
    ir = policies.get(flow["host"], {}).get(flow["kind"])
    if ir is None:
        return dict(NO_POLICY)
    try:
        oracle = oracles.get(id(ir))
        if oracle is None:
            oracle = oracles[id(ir)] = Evaluator(ir)
        result = oracle.evaluate(flow["packet"])
    except PolicyError as exc:
        return {"verdict": "error", "denied": None, "origin": "error", "reason": str(exc)}
    return {**{k: result[k] for k in ("verdict", "denied", "origin")}, "reason": name_reason(ir, result, flow["packet"]["dst"])}


def _key(flow: Mapping, sides: tuple) -> tuple:
    """What makes two flows the same packet: its host and policy, and the packet as the oracle
    reads it (defaults filled in, under whichever side has the policy), so a learned flow
    (which names its ``oif``) and a drawn one (which leaves it to the default) are one."""
    ir = sides[0].get(flow["host"], {}).get(flow["kind"]) or sides[1].get(flow["host"], {}).get(flow["kind"])
    try:
        packet = normalise_packet(flow["packet"], ir=ir)
    except PolicyError:
        packet = flow["packet"]
    return (flow["host"], flow["kind"], tuple(sorted((k, str(v)) for k, v in packet.items())))


def what_if(before: Iterable, after: Iterable, flows: Iterable[Mapping] = (), addresses=None, after_addresses=None) -> dict:
    """Judge every flow under both sites; return those whose verdict (or denial) differs.

    ``before`` and ``after`` are compiled sites (see ``policies_by_kind``). ``flows`` are
    ``{host, kind (host|edge), packet, origin}``; flows drawn from both sides' rules are added
    (a host's from its own ``addresses``, a lookup or mapping of host -> addresses, when given;
    the after side's from ``after_addresses`` when that side has its own inventory).
    """
    sides = (policies_by_kind(before), policies_by_kind(after))
    judged: dict[tuple, dict] = {}
    given = list(flows)
    for side, own in zip(sides, (addresses, addresses if after_addresses is None else after_addresses)):
        for host in sorted(side):
            for kind, ir in sorted(side[host].items()):
                given.extend(draw(host, kind, ir, _own(own, host)))
    for flow in given:
        judged.setdefault(_key(flow, sides), flow)
    changed = []
    oracles: dict = {}  # both sides' policies live as long as this call, so their ids are stable keys
    for flow in judged.values():
        was, now = _decide(sides[0], flow, oracles), _decide(sides[1], flow, oracles)
        if (was["verdict"], was["denied"]) != (now["verdict"], now["denied"]):
            changed.append({"host": flow["host"], "kind": flow["kind"], "origin": flow.get("origin", "given"),
                            "packet": {k: str(v) for k, v in flow["packet"].items()}, "before": was, "after": now})
    changed.sort(key=lambda c: (c["host"], c["kind"], c["packet"].get("dst", ""), c["packet"].get("dport", "")))
    hosts = sorted(set(sides[0]) | set(sides[1]))
    return {"flows": len(judged), "changed": changed, "hosts": hosts,
            "policies_added": sorted(f"{h} {k}" for h in sides[1] for k in sides[1][h] if k not in sides[0].get(h, {})),
            "policies_removed": sorted(f"{h} {k}" for h in sides[0] for k in sides[0][h] if k not in sides[1].get(h, {}))}


def _ip_addresses(addresses, host: str) -> list:
    out = []
    for addr in _own(addresses, host):
        try:
            out.append(ipaddress.ip_address(str(addr).split("/", maxsplit=1)[0]))
        except ValueError:
            continue
    return out


def verify_flows(host_vars: Mapping[str, Mapping], addresses) -> list[dict]:
    """Each host's egress_verify_flows as what-if flows under its host policy, as verify
    judges them: an outbound flow sent by its ``user`` and ``group``, an inbound one
    (``direction: inbound``) opened by ``from_host`` and answered by this host."""
    out = []
    for host, variables in host_vars.items():
        own = _ip_addresses(addresses, host)
        for i, flow in enumerate(variables.get("egress_verify_flows") or []):
            if not isinstance(flow, Mapping):
                continue
            inbound = flow.get("direction") == "inbound"
            if is_dns_entry(flow.get("dst")) and not inbound:
                out.extend(_named_verify_flow(host, i, flow, own))
                continue
            try:
                dst = ipaddress.ip_address(str(flow["dst"])) if flow.get("dst") is not None else None
                src = ipaddress.ip_address(str(flow["src"])) if flow.get("src") is not None else None
            except ValueError:
                continue
            if inbound:
                theirs = _ip_addresses(addresses, flow["from_host"]) if isinstance(flow.get("from_host"), str) else []
                dst = dst or next((a for a in own if a.version == (src.version if src else 4)), None)
                src = src or next((a for a in theirs if dst is not None and a.version == dst.version), None)
            else:
                src = src or next((a for a in own if dst is not None and a.version == dst.version), None)
            if src is None or dst is None:
                continue
            given = {"src": str(src), "dst": str(dst), "proto": flow.get("proto", "tcp"), "port": flow.get("port")}
            if inbound:
                given["direction"] = "inbound"
            else:
                given.update({key: flow[key] for key in ("user", "group") if flow.get(key) is not None})
            try:
                packet = Flow.from_mapping(given, f"egress_verify_flows[{i}]", aliases=True).to_dict()
            except PolicyError:
                continue  # the verify role refuses it, naming the variable
            out.append({"host": host, "kind": "host", "origin": f"egress_verify_flows[{i}] of {host}", "packet": packet})
    return out


def _named_verify_flow(host: str, i: int, flow: Mapping, own: list) -> list[dict]:
    """A verify flow to ``dns:NAME`` as what-if flows: one to the name (at its stand-in
    address) in each family the verify role judges it in; none for one it would refuse."""
    where = f"egress_verify_flows[{i}]"
    try:
        name = flow_dst_name(flow["dst"], f"{where}.dst")
        src = ipaddress.ip_address(str(flow["src"])) if flow.get("src") is not None else None
    except (PolicyError, ValueError):
        return []
    family = f"ipv{src.version}" if src is not None else flow.get("family")
    out = []
    for fam in [family] if family else ["ipv4", "ipv6"]:
        mine = [src] if src is not None else [a for a in own if f"ipv{a.version}" == fam][:1]
        if fam not in ("ipv4", "ipv6") or not mine:
            continue
        given = {"src": str(mine[0]), "dst": stand_in(name, fam), "dns_name": name, "proto": flow.get("proto", "tcp"), "port": flow.get("port"),
                 **{key: flow[key] for key in ("user", "group") if flow.get(key) is not None}}
        try:
            packet = Flow.from_mapping(given, where, aliases=True).to_dict()
        except PolicyError:
            return []
        out.append({"host": host, "kind": "host", "origin": f"{where} of {host}", "packet": packet})
    return out


def learned_flows(flows: Iterable[Mapping]) -> list[dict]:
    """Learned flows (``learn.suggest.learn``'s ``flows``) as what-if flows."""
    return [{"host": f["reporter"], "kind": "edge" if f["iif"] else "host", "origin": f"learned on {f['reporter']}", "packet": learned_flow(f)}
            for f in flows]


def _word(decision: Mapping) -> str:
    if decision["verdict"] == "error":
        return "not judged"
    if not decision["denied"]:
        return "allowed"
    return "denied (audit: logged, let through)" if decision["verdict"] == "accept" else "denied"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _flow_text(packet: Mapping) -> str:
    """``src → dst proto/port``; a flow to a DNS name shows the name (with the address it
    went to, unless that is only the name's stand-in)."""
    dst = packet.get("dst")
    name = packet.get("dns_name")
    if name:
        family = "ipv6" if ":" in str(dst) else "ipv4"
        dst = f"dns:{name}" if str(dst) == stand_in(name, family) else f"dns:{name} ({dst})"
    what = f"{packet.get('src')} → {dst} {packet.get('proto', 'tcp')}{'/' + packet['dport'] if packet.get('dport') else ''}"
    if packet.get("direction") == "inbound":
        what += " (answer to inbound)"
    return what


def whatif_markdown(result: Mapping) -> str:
    """The what-if answer as a short Markdown page for a code review (with a role column when
    ``annotate`` has named each flow's role, and the inventories compared when given)."""
    lines = ["# What-if: flows whose verdict changes", ""]
    for label, key in (("Current", "current"), ("Proposed", "proposed")):
        if result.get("compared", {}).get(key):
            lines.append(f"{label}: {result['compared'][key]}  ")
    if result.get("compared"):
        lines.append("")
    lines += [f"{len(result['changed'])} of {result['flows']} flows judged change verdict.", ""]
    for label, key in (("Policies added", "policies_added"), ("Policies removed", "policies_removed")):
        if result[key]:
            lines += [f"{label}: {', '.join(result[key])}", ""]
    roles = any("role" in c for c in result["changed"])
    if result["changed"]:
        lines += ["| host | role | policy | flow | before | after |", "|---|---|---|---|---|---|"] if roles else \
            ["| host | policy | flow | before | after |", "|---|---|---|---|---|"]
        for c in result["changed"]:
            cells = [c["host"]] + ([c.get("role", "")] if roles else []) + [
                c["kind"], _flow_text(c["packet"]), f"{_word(c['before'])}: {c['before']['reason']}", f"{_word(c['after'])}: {c['after']['reason']}"]
            lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def _role(variables: Mapping | None, kind: str) -> str:
    if variables is None:
        return "not in the inventory"
    if kind == "edge":
        return "edge" if variables.get("egress_edge") is not None else "no edge"
    role = variables.get("egress_role")
    if role is None:
        return "no role"
    return ", ".join(str(r) for r in role) if isinstance(role, (list, tuple)) else str(role)


def annotate(result: dict, before_vars: Mapping[str, Mapping], after_vars: Mapping[str, Mapping]) -> dict:
    """Name each changed flow's role on each side (``client → mail_server`` when it changed)."""
    for c in result["changed"]:
        was, now = _role(before_vars.get(c["host"]), c["kind"]), _role(after_vars.get(c["host"]), c["kind"])
        c["role"] = was if was == now else f"{was} → {now}"
    return result


def summary(result: Mapping) -> list[str]:
    """One line for the run's output, then one per changed flow."""
    count = len(result["changed"])
    lines = [f"{count} flow{' differs' if count == 1 else 's differ'} (of {result['flows']} judged)"]
    for c in result["changed"]:
        who = f"{c['host']} ({c['role']})" if "role" in c else c["host"]
        lines.append(f"{who} {c['kind']} policy: {_flow_text(c['packet'])}: before {_word(c['before'])} ({c['before']['reason']}); "
                     f"after {_word(c['after'])} ({c['after']['reason']})")
    return lines


def compare(current: Mapping, proposed: Mapping, learned: Iterable[Mapping] = (), today=None) -> dict:
    """Compile two sites and judge every flow under both. Each side is ``{host_vars, addresses,
    groups}`` as ``compile_site`` takes them; ``learned`` are learned flows. A bad value raises
    the compiler's ``PolicyError`` with ``.side`` set to ``current`` or ``proposed``."""
    compiled = []
    for name, side in (("current", current), ("proposed", proposed)):
        try:
            compiled.append(list(compile_site(side["host_vars"], side["addresses"], side["groups"], today=today)))
        except PolicyError as exc:
            exc.side = name
            raise
    flows = learned_flows(learned) + verify_flows(current["host_vars"], current["addresses"]) + verify_flows(proposed["host_vars"], proposed["addresses"])
    return what_if(compiled[0], compiled[1], flows, addresses=current["addresses"], after_addresses=proposed["addresses"])
