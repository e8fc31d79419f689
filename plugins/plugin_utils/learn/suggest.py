# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From learned flows to a reviewed inventory change: aggregate per role, classify, suggest,
and replay every flow through the oracle before and after (private to the collection).

Nothing here changes an inventory or a host: the suggestion is data for a person to review.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import PREFIX
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import learned_flow
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import Evaluator, evaluate, normalise_packet, rule_matches
from ansible_collections.warden.egress.plugins.plugin_utils.learn.collect import collect
from ansible_collections.warden.egress.plugins.plugin_utils.learn.resolver import ResolverLog, flow_names
from ansible_collections.warden.egress.plugins.plugin_utils.learn.site import LearnSite

UNKNOWN_ROLE = "(no role)"
MERGED = ("egress_upstreams", "egress_services", "egress_roles", "egress_exceptions")
# What the replay fills into a suggested exception's blanks, so the suggestion compiles; the
# suggestion itself leaves them empty (null), and the compiler refuses it until a person fills them.
REPLAY_PLACEHOLDER = {"reason": "learned flow (replay)", "owner": "replay", "days": 30}


def _name_part(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", str(text).lower()).strip("_")[:20] or "x"


def _upstream_name(role: str, service: str) -> str:
    """A new upstream's name: ``learned_<role>_<service>``, within the compiler's 32 characters."""
    name = f"learned_{_name_part(role)}_{_name_part(service.removeprefix('learned_'))}"
    if len(name) > 32:
        name = f"{name[:25]}_{hashlib.sha256(name.encode()).hexdigest()[:6]}"
    return name


def _host_address(address: str) -> str:
    addr = ipaddress.ip_address(address)
    return f"{addr}/{addr.max_prefixlen}"


def _who(flow: Mapping) -> str:
    """The local user and group a flow was sent as, in the kernel's numbers."""
    parts = [f"uid {flow['uid']}" if flow.get("uid") is not None else "", f"gid {flow['gid']}" if flow.get("gid") is not None else ""]
    return " ".join(p for p in parts if p) or "no local user"


def oracle_flow(flow: Mapping) -> dict:
    """``learned_flow``: with the name its client was answered for (``dns_name``), when its
    host's resolver log says, the oracle decides as the kernel would, by the name."""
    return learned_flow(flow)


def names_of(flow: Mapping) -> list[str]:
    """The names a learned flow's address was answered for (``learn.resolver``), sorted."""
    return [entry["name"] for entry in flow.get("dns_names") or []]


def owner_finding(site: LearnSite, flow: Mapping) -> dict | None:
    """A ``user_restricted`` finding when an allow of the host's policy limited to local users
    or groups would let this flow out but for who sent it: the flow is denied because of its
    user (``www-data`` sending mail where only ``postfix`` may), and allowing it to the role
    would let every user send it."""
    if flow.get("iif") is not None:
        return None
    ir = site.policies.get(flow["reporter"], {}).get("host")
    restricted = [r for r in (ir or {}).get("rules", []) if r["action"] == "accept" and (r.get("users") or r.get("groups"))]
    if not restricted:
        return None
    try:
        pkt = normalise_packet(oracle_flow(flow), ir=ir)
    except PolicyError:
        return None
    for rule in restricted:
        if not rule_matches(ir, rule, pkt) and rule_matches(ir, {**rule, "users": None, "groups": None}, pkt):
            kind = "users" if rule.get("users") else "groups"
            return {"class": "user_restricted",
                    "why": f"sent as {_who(flow)}, not one of the {kind} ({', '.join(str(o) for o in rule[kind])}) of {rule['comment']}"}
    return None


def annotate(site: LearnSite, flows: list[dict]) -> list[dict]:
    """Each flow with its source, role, service, matching upstreams and findings (a flow its
    user is denied is a finding: see ``owner_finding``). An upstream matches by the flow's
    address, else by a name the flow's address was answered for that it lists."""
    out = []
    for flow in flows:
        source = site.source(flow)
        service = site.service(flow)
        upstreams = site.upstreams_of(flow["dst"]) or site.upstreams_naming(names_of(flow))
        findings = site.findings(flow, source, service)
        restricted = owner_finding(site, flow)
        if restricted is not None:
            findings = [*findings, restricted]
        role = source["roles"][0] if source["roles"] else UNKNOWN_ROLE
        out.append({**flow, "source": source, "role": role, "service": service, "upstreams": upstreams, "findings": findings})
    return out


def owner_limited(site: LearnSite) -> dict[str, set[str]]:
    """Per role, the services some allow entry of it limits to local users or groups."""
    out: dict[str, set[str]] = {}
    for role in site.role_defs:
        try:
            entries = site.role_allows(role)
        except PolicyError:
            continue
        out[role] = {svc for e in entries if e["owners"] for svc in e["services"]}
    return out


def _what(flow: Mapping) -> str:
    if flow["service"]:
        return flow["service"]
    if flow["dport"] is not None:
        return f"{flow['proto']}/{flow['dport']}"
    if flow["icmp_type"] is not None:
        return f"{flow['proto']} {flow['icmp_type']}"
    return f"protocol {flow['proto']}"


def aggregate(flows: list[dict]) -> dict[str, list[dict]]:
    """Per role: service (or protocol/port), destination, hosts, count, first and last seen."""
    rows: dict[tuple, dict] = {}
    for flow in flows:
        key = (flow["role"], _what(flow), flow["dst"])
        row = rows.setdefault(key, {"service": key[1], "destination": flow["dst"], "upstream": (flow["upstreams"] or [None])[0],
                                    "sources": set(), "count": 0, "first_seen": None, "last_seen": None, "findings": set(), "names": set()})
        row["sources"].add(flow["source"]["name"])
        row["names"].update(names_of(flow))
        row["count"] += flow["count"]
        for edge, pick in (("first_seen", min), ("last_seen", max)):
            if flow[edge]:
                row[edge] = pick(filter(None, (row[edge], flow[edge])))
        row["findings"].update(f["class"] for f in flow["findings"])
    out: dict[str, list[dict]] = {}
    for (role, _what_, _dst), row in sorted(rows.items()):
        out.setdefault(role, []).append({**row, "hosts": len(row["sources"]), "sources": sorted(row["sources"]), "findings": sorted(row["findings"]),
                                         "names": sorted(row["names"])})
    return out


def _entries(target: str | tuple) -> list[str]:
    """What a group's target adds to a new upstream: its address, or its ``dns:`` names."""
    return list(target) if isinstance(target, tuple) else [target]


def suggest(site: LearnSite, flows: list[dict], notes: list | None = None) -> tuple[dict, list[dict]]:
    """The inventory change that would allow every learned flow that is not a finding, and the
    flows left for a person (no role, or nothing a service can express).

    A flow to a destination an existing upstream holds is allowed to that upstream; the new
    destinations of a role and service share a new upstream ``learned_<role>_<service>``. A
    port no service names becomes a service ``learned_<proto>_<port>``. A destination only one
    host of a role with several members (a segment counts as several) went to becomes an
    exception for that host, with its reason, owner and expiry left empty for a person to fill
    in (the compiler refuses it until then).

    Where the role limits the service to local users or groups (``users:``/``groups:`` on an
    allow entry), the suggestion keeps a limit: the allow names the flow's user (``users:
    [UID]``, the number the kernel logged) and is never an exception (an exception cannot name
    users); such a flow with no local user is left for a person.

    A new destination whose address the flow's own resolver answered for a name (``dns_names``,
    see ``learn.resolver``) is suggested as ``dns:NAME``, never as its address (every name when
    it was answered for several; never a wildcard); an exception reaches it through a new
    upstream ``learned_<host>_only_<service>``, since an exception's ``to`` cannot hold a name.
    ``notes`` (a list, when given) gets one entry per suggested name: where it goes and the
    flows' evidence.
    """
    limited = owner_limited(site)
    members: dict[str, int] = {}
    for roles in site.host_roles.values():
        for role in roles[:1]:
            members[role] = members.get(role, 0) + 1
    for segment in site.segments.values():
        for role in segment["roles"][:1]:
            members[role] = members.get(role, 0) + 2  # a segment is many hosts
    services: dict[str, dict] = {}
    upstreams: dict[str, list] = {}
    groups: dict[tuple, dict] = {}
    review = []
    for flow in flows:
        if flow["findings"]:
            continue
        if flow["role"] == UNKNOWN_ROLE:
            review.append({**flow, "why": "its source has no role"})
            continue
        service = flow["service"]
        if service is None:
            if flow["proto"] not in ("tcp", "udp"):
                review.append({**flow, "why": f"{_what(flow)} is not something a service can name"})
                continue
            service = f"learned_{flow['proto']}_{flow['dport']}"
            services[service] = {"proto": flow["proto"], "ports": [flow["dport"]]}
        user = None
        if service in limited.get(flow["role"], ()):
            if flow.get("uid") is None:
                review.append({**flow, "why": f"role {flow['role']} lets only some local users send {service}, and this flow has no local user"})
                continue
            user = flow["uid"]
        # one group per existing upstream, or per new destination: its names, else its address
        # (and per user, where the role limits the service)
        names = names_of(flow)
        if flow["upstreams"]:
            target: str | tuple = flow["upstreams"][0]
        else:
            target = tuple(PREFIX + name for name in names) if names else _host_address(flow["dst"])
        group = groups.setdefault((flow["role"], service, target, user), {"sources": set(), "kinds": set(), "new": not flow["upstreams"],
                                                                          "named": []})
        group["sources"].add(flow["source"]["name"])
        group["kinds"].add(flow["source"]["kind"])
        if isinstance(target, tuple):
            group["named"].append(flow)
    roles: dict[str, dict] = {}
    exceptions: list[dict] = []
    lones: dict[tuple, dict] = {}  # (hosts, service) -> its exception: one look-up per group, not a scan
    for (role, service, target, user), group in sorted(groups.items(), key=lambda item: tuple(str(part) for part in item[0])):
        if user is None and len(group["sources"]) == 1 and group["kinds"] == {"host"} and members.get(role, 0) > 1:
            hosts = sorted(group["sources"])
            lone = lones.get((tuple(hosts), service))
            if lone is None:
                lone = lones[(tuple(hosts), service)] = {"hosts": hosts, "service": service, "to": [], "reason": None, "owner": None,
                                                         "expires": None}
                exceptions.append(lone)
            if isinstance(target, tuple):  # an exception's to holds no name: an upstream of its own does
                upstream = _upstream_name(f"{hosts[0]}_only", service)
                _add(upstreams, upstream, target)
                _note(notes, upstream, target, group, hosts)
                target = upstream
            if target not in lone["to"]:
                lone["to"].append(target)
            continue
        upstream = target
        if group["new"]:
            upstream = _upstream_name(role, service)
            _add(upstreams, upstream, target)
            if isinstance(target, tuple):
                _note(notes, upstream, target, group, [role])
        if role not in roles:
            spec, _path = site.role_defs.get(role, ({"allow": []}, role))
            roles[role] = copy.deepcopy(dict(spec))
            roles[role]["allow"] = list(roles[role].get("allow") or [])
        entry = {"service": service, "to": upstream} if user is None else {"service": service, "to": upstream, "users": [user]}
        if entry not in roles[role]["allow"]:
            roles[role]["allow"].append(entry)
    change = {"egress_upstreams": dict(sorted(upstreams.items())), "egress_services": dict(sorted(services.items())),
              "egress_roles": roles, "egress_exceptions": exceptions}
    return {k: v for k, v in change.items() if v}, review


def _add(upstreams: dict[str, list], upstream: str, target: str | tuple) -> None:
    """A group's address or names into a new upstream, each once."""
    entries = upstreams.setdefault(upstream, [])
    entries.extend(entry for entry in _entries(target) if entry not in entries)


def _note(notes: list | None, upstream: str, target: tuple, group: Mapping, whom: list[str]) -> None:
    """Where a suggested name goes, for whom, and from which flows' answers."""
    if notes is None:
        return
    notes.append({"upstream": upstream, "names": [entry[len(PREFIX):] for entry in target], "for": whom,
                  "flows": [{"reporter": f["reporter"], "src": f["src"], "dst": f["dst"], "what": _what(f), "dns_names": f["dns_names"]}
                            for f in group["named"]]})


def apply_change(host_vars: Mapping[str, Mapping], change: Mapping, today: datetime.date, fill_blanks: bool = False) -> dict:
    """Every host's variables with ``change`` merged in (a new dict; the inventory is untouched):
    upstreams, services and roles by name, exceptions appended, any other variable replaced
    (``egress_edge`` only on the hosts that have one).
    ``fill_blanks`` fills an exception's empty reason/owner/expiry (for the replay only)."""
    out = {}
    shared: dict[tuple, object] = {}  # one merged object per original: the compiler parses a site once per distinct object

    def once(name: str, original: object, build):
        key = (name, id(original))
        if key not in shared:
            shared[key] = (original, build())
        return shared[key][1]

    added = []
    for exc in change.get("egress_exceptions") or []:
        exc = dict(exc)
        if fill_blanks:
            exc["reason"] = exc["reason"] or REPLAY_PLACEHOLDER["reason"]
            exc["owner"] = exc["owner"] or REPLAY_PLACEHOLDER["owner"]
            exc["expires"] = exc["expires"] or (today + datetime.timedelta(days=REPLAY_PLACEHOLDER["days"])).isoformat()
        added.append(exc)
    for host, variables in host_vars.items():
        merged = dict(variables)
        for name, value in change.items():
            if name not in MERGED and (name != "egress_edge" or "egress_edge" in variables):
                merged[name] = value  # e.g. egress_mode: enforce, on every host
        for name in ("egress_upstreams", "egress_services", "egress_roles"):
            if change.get(name):
                original = variables.get(name)
                merged[name] = once(name, original, lambda name=name, original=original: {**(original or {}), **change[name]})
        if added:
            original = variables.get("egress_exceptions")
            merged["egress_exceptions"] = once("egress_exceptions", original, lambda original=original: list(original or []) + added)
        out[host] = merged
    return out


def judge(site: LearnSite, flow: Mapping, oracles: dict | None = None) -> dict | None:
    """The oracle's decision for a learned flow under the policy of the host that logged it
    (its edge policy for a forwarded packet), or None when that host has no such policy.
    ``oracles`` keeps one indexed ``Evaluator`` per policy across calls (same answers as
    ``evaluate``, in time that does not grow with the policy's sets)."""
    ir = site.policies.get(flow["reporter"], {}).get("edge" if flow["iif"] else "host")
    if ir is None:
        return None
    try:
        if oracles is None:
            return evaluate(ir, oracle_flow(flow))
        oracle = oracles.get(id(ir))
        if oracle is None:
            oracle = oracles[id(ir)] = Evaluator(ir)
        return oracle.evaluate(oracle_flow(flow))
    except PolicyError as exc:
        return {"error": str(exc)}


def replay(before: LearnSite, after: LearnSite, flows: list[dict]) -> dict:
    """How many learned flows each policy denies: today's and the suggested one."""
    result = {"flows": len(flows), "denied_now": 0, "denied_suggested": 0, "not_replayed": [], "still_denied": []}
    oracles: dict = {}  # the sites' policies live as long as this call, so their ids are stable keys
    for flow in flows:
        now, then = judge(before, flow, oracles), judge(after, flow, oracles)
        if now is None or then is None or "error" in now or "error" in then:
            why = (now or then or {}).get("error") or f"{flow['reporter']} has no {'edge' if flow['iif'] else 'host'} policy"
            result["not_replayed"].append({"reporter": flow["reporter"], "src": flow["src"], "dst": flow["dst"], "why": why})
            continue
        result["denied_now"] += now["denied"]
        result["denied_suggested"] += then["denied"]
        if then["denied"]:
            result["still_denied"].append({"reporter": flow["reporter"], "src": flow["src"], "dst": flow["dst"], "what": _what(flow),
                                           "rule": then["reason"], "findings": [f["class"] for f in flow["findings"]]})
    return result


def named_flows(flows: list[dict]) -> list[dict]:
    """Each collected flow with the names its own resolver answered its address for before
    every one of its lines (``dns_names``, and the first as ``dns_name``, what the oracle
    judges by), from ``collect``'s ``_names``."""
    out = []
    for flow in flows:
        flow = dict(flow)
        found = flow.pop("_names", None)
        if found and flow["reporter"] is not None:
            flow["dns_names"] = flow_names(found, flow["reporter"])
            flow["dns_name"] = flow["dns_names"][0]["name"]
        out.append(flow)
    return out


def learn(host_vars: Mapping[str, Mapping], addresses, groups: Mapping, logs: Mapping, today: datetime.date | None = None,
          year: int | None = None, resolver_logs: Mapping | None = None) -> dict:
    """The whole analysis: gathered logs -> flows, per-role aggregate, findings, suggestion, replay.
    ``resolver_logs`` (optional) maps hosts to their local resolver's journal records
    (``journalctl -u warden-egress-dns.service -o json``, ``learn.resolver``): a flow whose
    address its own host's resolver answered for a name, within the lifetime before each of
    its lines, carries the name and is suggested by it."""
    today = today or datetime.date.today()
    site = LearnSite(host_vars, addresses, groups, today=today)
    resolver = ResolverLog(resolver_logs) if resolver_logs is not None else None

    def answered(reporter, record, micros):  # the names the reporter's own resolver gave the line's destination, within its lifetime
        return resolver.answered(reporter, record["dst"], micros, site.answer_lifetime(reporter, record["iif"] is not None))

    gathered = collect(logs, site.prefixes, year=year or today.year, owner=site.owner, answered=answered if resolver is not None else None)
    flows = annotate(site, named_flows(gathered["flows"]))
    notes: list = []
    change, review = suggest(site, flows, notes)
    after = LearnSite(apply_change(host_vars, change, today, fill_blanks=True), addresses, groups, today=today)
    findings = [{"reporter": f["reporter"], "source": f["source"]["name"], "role": f["role"], "dst": f["dst"], "what": _what(f),
                 "count": f["count"], "classes": [x["class"] for x in f["findings"]], "why": "; ".join(x["why"] for x in f["findings"])}
                for f in flows if f["findings"]]
    stamps = [s for h in gathered["hosts"].values() for s in (h["first"], h["last"]) if s]
    return {
        "window": {"first": min(stamps) if stamps else None, "last": max(stamps) if stamps else None},
        "hosts": gathered["hosts"],
        "targets": sorted(site.policies),
        "problems": gathered["problems"],
        "shared": gathered["shared"],
        "flows": flows,
        "roles": aggregate(flows),
        "findings": findings,
        "review": [{"reporter": f["reporter"], "src": f["src"], "dst": f["dst"], "what": _what(f), "why": f["why"]} for f in review],
        "suggestion": change,
        "names": notes,
        "resolver": None if resolver is None else {"hosts": resolver.hosts, "problems": resolver.problems},
        "replay": replay(site, after, flows),
    }
