# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One flow judged by every policy on its path through the site (private to the collection).

The path of a flow from ``src``: the source host's own policy, when ``src`` is the address of
an inventory host with an egress_role, then the edge policy of every gateway whose inside
prefixes hold ``src`` (whatever platform enforces it). The site is compiled and the source
mapped to its host or segment by ``compile.site.SitePolicies``, as the learn role maps a logged flow;
each policy's verdict and deciding rule come from the oracle (``evaluate``).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import SitePolicies, targets
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import Flow
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import PROTOCOLS
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate

# The question's parts: the module's options (``port`` is ``dport`` as a person writes it).
QUESTION = ("src", "dst", "dport", "port", "proto", "user", "group")


def parse_flow(question: Mapping) -> Flow:
    """The flow a person asks about (the explain module's options, from the command line
    ``-e explain_src=... -e explain_dst=... -e explain_port=... -e explain_proto=... -e explain_user=...
    -e explain_group=...``), checked: a bad value raises ``PolicyError`` naming the part of the flow.
    Text is read with the spaces around it left out, and an empty value is no value."""
    for key in question:
        if key not in QUESTION:
            raise PolicyError(key, question[key], f"is not a part of the flow ({', '.join(QUESTION)})")
    given = {}
    for key, value in question.items():
        value = value.strip() if isinstance(value, str) else value
        if value is not None and value != "":
            given[key] = value
    for name in ("src", "dst"):
        if name not in given:
            what = "source" if name == "src" else "destination"
            raise PolicyError(name, question.get(name), f"is required: give the {what} address of the flow with -e explain_{name}=ADDRESS")
    proto = given.get("proto", "tcp")
    if proto not in PROTOCOLS:
        raise PolicyError("proto", proto, f"is not one of {', '.join(PROTOCOLS)}")
    port = next((key for key in ("port", "dport") if key in given), None)
    if proto == "icmp" and port is not None:
        raise PolicyError(port, given[port], "is not for proto icmp (an echo request has no port)")
    if proto != "icmp" and port is None:
        raise PolicyError("port", question.get("port"), f"is required for proto {proto}: give the destination port with -e explain_port=NUMBER")
    return Flow.from_mapping({**given, "proto": proto}, path="", aliases=True)


def _holds(edge: Mapping, address) -> bool:
    """Whether one of an edge's inside prefixes holds ``address``."""
    return any(address in net for entry in edge["inside"] for net in map(ipaddress.ip_network, entry["prefixes"])
               if net.version == address.version)


def path_of(site: SitePolicies, flow: Flow) -> tuple[dict, list[tuple[str, dict]]]:
    """Who sends ``flow`` (``{kind, name, roles}``) and the policies on its path, as
    ``(host, IR)`` in the order the flow meets them."""
    src = flow.src
    host = site.by_address.get(src)
    source = site.source({"src": str(src), "iif": None, "reporter": None})
    if source["kind"] == "unknown" and host is not None:
        source = {"kind": "host", "name": host, "roles": []}
    if source["kind"] == "unknown":
        raise PolicyError("src", str(src), "is the address of no inventory host (egress_addresses or ansible_host) "
                                           "and in no egress_segments prefix")
    path = []
    if host is not None and "host" in site.policies.get(host, {}):
        path.append((host, site.policies[host]["host"]))
    for gateway, irs in site.policies.items():
        if "edge" in irs and gateway != host and _holds(irs["edge"]["edge"], src):
            path.append((gateway, irs["edge"]))
    if not path:
        where = f"host {host}" if host is not None else f"segment {source['name']}"
        raise PolicyError("src", str(src), f"({where}) crosses no policy: no egress_role of its own and no gateway "
                                           "(egress_edge) whose inside prefixes hold it")
    return source, path


def _rule(decision: Mapping) -> str:
    if decision["rule_index"] is None:
        return f"by the {decision['reason']}"
    return f"by rule {decision['rule_index']} ({decision['origin']}): {decision['reason']}"


def _verdict(decision: Mapping) -> str:
    if not decision["denied"]:
        return "ALLOWED"
    return "DENIED" if decision["verdict"] == "drop" else "DENIED (audit mode: let out and logged)"


def _sender(flow: Flow) -> str:
    """Who the flow is sent as, when the question names a local user or group."""
    parts = [f"user {flow.user}" if flow.user is not None else "", f"group {flow.group}" if flow.group is not None else ""]
    named = ", ".join(p for p in parts if p)
    return f", sent as {named}" if named else ""


def explain_path(site: SitePolicies, flow: Flow | Mapping) -> dict:
    """Every policy's decision on ``flow`` (a ``Flow``, from ``parse_flow``), the overall
    verdict and readable lines, one per policy and one for the whole path."""
    flow = Flow.from_mapping(flow, path="")
    source, path = path_of(site, flow)
    policies = []
    for host, ir in path:
        decision = evaluate(ir, flow)
        policies.append({"host": host, "kind": ir["kind"], "platform": ir["platform"], "mode": ir["mode"], **decision})
    what = f"{flow.proto}/{flow.dport}" if flow.dport is not None else flow.proto
    roles = f", role {', '.join(source['roles'])}" if source["roles"] else ""
    lines = [f"flow {what} from {flow.src} ({source['kind']} {source['name']}{roles}) to {flow.dst}{_sender(flow)}"]
    for p in policies:
        where = f", in {p['iif']} out {p['oif']}" if p["kind"] == "edge" else ""
        lines.append(f"{p['host']}: {p['kind']} policy ({p['platform']}{where}): {_verdict(p)} {_rule(p)}")
    dropped = [p for p in policies if p["verdict"] == "drop"]
    audited = [p for p in policies if p["denied"] and p["verdict"] == "accept"]
    if dropped:
        verdict = "denied"
        overall = f"overall: DENIED by the {dropped[0]['kind']} policy of {dropped[0]['host']}"
    elif audited:
        verdict = "allowed"
        overall = (f"overall: ALLOWED on the wire, but the {audited[0]['kind']} policy of {audited[0]['host']} "
                   "denies it in audit mode (it is logged)")
    else:
        verdict = "allowed"
        overall = f"overall: ALLOWED by every policy on the path ({len(policies)})"
    lines.append(overall)
    return {"flow": flow.to_dict(), "source": source, "policies": policies, "verdict": verdict, "lines": lines}


def explain_site(host_vars: Mapping[str, Mapping], addresses: Callable | Mapping, groups: Mapping, flow: Flow | Mapping,
                 today: datetime.date | None = None) -> dict:
    """``explain_path`` on the site ``host_vars`` describes (what ``compile_site`` takes). A bad
    inventory value raises ``PolicyError`` with ``.host`` and ``.label``, as the site compile."""
    flow = Flow.from_mapping(flow, path="")
    if not targets(host_vars):
        raise PolicyError("src", str(flow.src), "crosses no policy: no host has an egress_role or an egress_edge in this inventory")
    return explain_path(SitePolicies(host_vars, addresses, groups, today=today), flow)
