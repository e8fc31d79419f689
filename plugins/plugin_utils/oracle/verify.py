# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flows to try -> what the oracle expects of each (private to the collection).

A flow may go to a DNS name (``dst: dns:NAME``): the probe resolves it through the host's own
resolver just before it connects, so the oracle, which cannot know the answer, judges it by
the name (``Flow.dns_name``): allowed when a rule's names cover it (docs/dns.md).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import is_dns_entry, parse_name
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError, parse_bool
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import Flow
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate

FLOW_KEYS = {"name", "dst", "port", "proto", "src", "inconclusive_ok", "user", "group", "direction", "from_host", "family"}
FAMILIES = ("ipv4", "ipv6")
# The address a flow to a DNS name is judged with (the oracle allows it by the name): one of a
# documentation prefix, decided by the name. No resolver's real answer is there, so no set
# matches it by address but one that holds every address (0.0.0.0/0), as a real answer would.
STAND_IN = {"ipv4": ipaddress.ip_network("192.0.2.0/24"), "ipv6": ipaddress.ip_network("2001:db8:d25::/120")}


def stand_in(name: str, family: str) -> str:
    """The stand-in destination of a flow to ``name`` in ``family`` (see STAND_IN)."""
    return str(STAND_IN[family].network_address + 1 + hashlib.sha256(name.encode("ascii")).digest()[0] % 254)


def flow_dst_name(value: str, path: str) -> str:
    """The name of a flow's ``dst: dns:NAME``, checked as an upstream's name is; a wildcard is
    refused (a flow goes to one name, which the probe resolves)."""
    name = parse_name(value, path)
    if name.startswith("*."):
        raise PolicyError(path, value, "is a wildcard: a flow goes to one name, which the probe resolves (dns:api.example.com)")
    return name


def name_reason(ir: Mapping, decision: Mapping, dst: object) -> str:
    """A decision's reason. When a rule allowed a flow judged at its name's stand-in address by
    that name, the name that allowed it, and not the stand-in: ``role billing: https to apis
    (allowed by name: eu.api.example.com, which dns:api.example.com covers)``."""
    name = decision.get("dns_name")
    if decision.get("dns_entry") is None or str(dst) != stand_in(name, f"ipv{ipaddress.ip_address(str(dst)).version}"):
        return decision["reason"]
    entry = decision["dns_entry"]
    covered = "" if entry == name else f", which dns:{entry} covers"
    return f"{ir['rules'][decision['rule_index']]['comment']} (allowed by name: {name}{covered})"


def _address(value: object, path: str):
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        raise PolicyError(path, value, "is not an IP address") from None


def _first(addresses: list, version: int | None, path: str, what: str):
    same = [a for a in addresses if version is None or a.version == version]
    if not same:
        raise PolicyError(path, None, f"is needed: {what} has no {'IPv' + str(version) + ' ' if version else ''}address in egress_addresses")
    return same[0]


def _crosses(edge_ir: Mapping, dst) -> bool:
    """A destination inside the edge's inside prefixes does not cross the edge."""
    for entry in edge_ir["edge"]["inside"]:
        for prefix in entry["prefixes"]:
            if dst in ipaddress.ip_network(prefix):
                return False
    return True


def _judge(ir: Mapping | None, hops: list, sent: Flow, fpath: str, flow: Mapping, crosses) -> tuple[str, str]:
    """What every policy on the path says of ``sent``: (allowed or denied, the deciding rule).
    ``crosses(edge IR)`` says whether the flow crosses that edge."""
    decisions = []
    if ir is not None:
        decisions.append(("", ir, evaluate(ir, sent)))
    for policy, interface in hops:
        if crosses(policy):
            decisions.append((f"edge {policy['target']}: ", policy, evaluate(policy, sent.but(iif=interface, oif=policy["edge"]["outside"][0]))))
    if not decisions:
        raise PolicyError(fpath, flow, "crosses no policy: the host has no egress_role and no egress_gateway in front of this destination")
    denied = [d for d in decisions if d[2]["verdict"] == "drop"]
    where, policy, decision = denied[0] if denied else decisions[-1]
    return "denied" if denied else "allowed", where + name_reason(policy, decision, sent.dst)


def expect_flows(ir: Mapping | None, flows: list, addresses: list, edges: list | None = None, path: str = "egress_verify_flows",
                 peers: Mapping | None = None) -> list[dict]:
    """Fill each flow's source and the verdict of every policy on its path.

    ``ir`` is the host's own policy (or None for a host without one); ``edges`` lists the
    gateways in front of the host, each ``{"policy": edge IR, "interface": inside interface}``.
    A flow is expected to get out only if every policy on its path lets it. ``addresses``
    are the host's own addresses; a flow without ``src`` leaves from the first of them in
    the destination's family (the probe then lets the kernel choose). A flow with
    ``inconclusive_ok: true`` passes verification when its outcome proves nothing (no route,
    no answer to a UDP datagram); it must still match the policy when it is conclusive.

    A flow with ``user`` (and optionally ``group``) is sent by that local user's process. A
    flow with ``direction: inbound`` is a connection opened to this host by the inventory host
    ``from_host`` (``peers`` maps it to its ``addresses`` and its own ``policy`` or None):
    ``dst`` is this host's address (default its first of the family of ``src``, or IPv4),
    ``src`` the other host's (default its first in the family of ``dst``). It gets through if
    the other host's policy lets it out and this host answers (it serves ``port`` to that
    source); an edge does not judge a connection coming in, nor the replies of one. Such a
    flow comes back with ``from_host``: the probe for it runs there.

    A flow whose ``dst`` is ``dns:NAME`` goes to whatever the host's resolver answers for the
    name when the probe asks (see ``_named``); it is expected allowed when a rule's names
    cover the name (and the port and protocol are the rule's), and crosses every edge in
    front of the host. It comes back with ``dst: dns:NAME`` and, when the probe is to ask for
    one family, ``family`` (without it, the probe tries each family its answer has).
    """
    own = []
    for i, addr in enumerate(addresses or []):
        try:
            own.append(ipaddress.ip_address(str(addr)))
        except ValueError:
            raise PolicyError(f"egress_addresses[{i}]", addr, "is not an IP address") from None
    if not isinstance(flows, list):
        raise PolicyError(path, flows, "must be a list of flows")
    hops = []
    for j, edge in enumerate(edges or []):
        policy = edge.get("policy") if isinstance(edge, Mapping) else None
        if not isinstance(policy, Mapping) or policy.get("kind") != "edge":
            raise PolicyError(f"egress_gateway[{j}]", edge, "is not an edge policy from warden.egress.edge_policy")
        inside = [e["interface"] for e in policy["edge"]["inside"]]
        interface = edge.get("interface") or (inside[0] if len(inside) == 1 else None)
        if interface not in inside:
            raise PolicyError(f"egress_gateway[{j}].interface", edge.get("interface"),
                              f"must name one of the gateway's inside interfaces ({', '.join(inside)})")
        hops.append((policy, interface))
    out = []
    for i, flow in enumerate(flows):
        fpath = f"{path}[{i}]"
        if not isinstance(flow, Mapping):
            raise PolicyError(fpath, flow, "must be a mapping with dst and port")
        for key in flow:
            if key not in FLOW_KEYS:
                raise PolicyError(f"{fpath}.{key}", flow[key], f"is not a known flow key ({', '.join(sorted(FLOW_KEYS))})")
        if flow.get("direction", "outbound") not in ("outbound", "inbound"):
            raise PolicyError(f"{fpath}.direction", flow.get("direction"), "is not outbound or inbound")
        if flow.get("direction") == "inbound":
            out.append(_inbound(ir, flow, fpath, own, peers or {}))
            continue
        if "from_host" in flow:
            raise PolicyError(f"{fpath}.from_host", flow["from_host"], "is for an inbound flow (direction: inbound)")
        if flow.get("group") is not None and flow.get("user") is None:
            raise PolicyError(f"{fpath}.group", flow["group"], "needs user (the process that sends)")
        name = dst = None
        if is_dns_entry(flow.get("dst")):
            name = flow_dst_name(flow["dst"], f"{fpath}.dst")
        elif "family" in flow:
            raise PolicyError(f"{fpath}.family", flow["family"], "is for a flow to a DNS name (dst: dns:NAME); an address has its own family")
        else:
            dst = _address(flow.get("dst"), f"{fpath}.dst")
        proto = flow.get("proto", "tcp")
        if proto not in ("tcp", "udp"):
            raise PolicyError(f"{fpath}.proto", proto, "is not tcp or udp")
        inconclusive_ok = parse_bool(flow.get("inconclusive_ok", False), f"{fpath}.inconclusive_ok")
        if name is not None:
            out.extend(_named(ir, hops, flow, fpath, own, name, proto, inconclusive_ok))
            continue
        src = flow.get("src")
        if src is None:
            same = [a for a in own if a.version == dst.version]
            if not same:
                raise PolicyError(fpath, flow, f"has no src and the host has no IPv{dst.version} address in egress_addresses")
            effective = str(same[0])
        else:
            effective = str(src)
        sent = Flow.from_mapping({"src": effective, "dst": str(dst), "proto": proto, "port": flow.get("port"), "user": flow.get("user"),
                                  "group": flow.get("group")}, fpath, aliases=True)
        expect, reason = _judge(ir, hops, sent, fpath, flow, lambda policy: _crosses(policy, dst))
        out.append(_row(flow, str(flow.get("name") or f"{proto}/{flow.get('port')} to {dst}"), str(dst), {}, sent, src,
                        (expect, reason, inconclusive_ok), proto))
    return out


def _row(flow: Mapping, name: str, dst: str, extra: Mapping, sent: Flow, src, verdict: tuple, proto: str) -> dict:
    """One flow for the probe: what it sends and what the policy expects (``verdict``:
    expect, reason, inconclusive_ok). The user and group as written: the probe runs the flow
    as this user."""
    expect, reason, inconclusive_ok = verdict
    return {
        "name": name,
        "dst": dst,
        **extra,
        "port": sent.dport,
        "proto": proto,
        "src": None if src is None else str(src),
        "expect": expect,
        "reason": reason,
        "inconclusive_ok": inconclusive_ok,
        **({"user": str(flow["user"]), "group": None if flow.get("group") is None else str(flow["group"])} if sent.user is not None else {}),
    }


def _named(ir: Mapping | None, hops: list, flow: Mapping, fpath: str, own: list, name: str, proto: str, inconclusive_ok: bool) -> list[dict]:
    """A flow to a DNS name (see expect_flows): judged by the name, at its stand-in address, in
    the family asked for (``family``, or that of ``src``), else in each family the host has an
    address of. One row when those agree (the probe then tries each family its answer has;
    with one family, only that one); one row a family, each asking its own, when they do not."""
    family = flow.get("family")
    if family is not None and family not in FAMILIES:
        raise PolicyError(f"{fpath}.family", family, "is not ipv4 or ipv6")
    src = flow.get("src")
    if src is not None:
        version = _address(src, f"{fpath}.src").version
        if family is not None and family != f"ipv{version}":
            raise PolicyError(f"{fpath}.family", family, f"is not the family of src ({src})")
        family = f"ipv{version}"
    families = [family] if family else [f for f in FAMILIES if any(f"ipv{a.version}" == f for a in own)]
    if not families:
        raise PolicyError(fpath, flow, "has no src and the host has no address in egress_addresses")
    judged = []
    for fam in families:
        mine = [a for a in own if f"ipv{a.version}" == fam] if src is None else [src]
        if not mine:
            raise PolicyError(fpath, flow, f"has no src and the host has no IPv{fam[-1]} address in egress_addresses")
        effective = str(mine[0])
        sent = Flow.from_mapping({"src": effective, "dst": stand_in(name, fam), "dns_name": name, "proto": proto, "port": flow.get("port"),
                                  "user": flow.get("user"), "group": flow.get("group")}, fpath, aliases=True)
        judged.append((fam, sent, *_judge(ir, hops, sent, fpath, flow, lambda policy: True)))
    if len({expect for dummy, dummy, expect, dummy in judged}) == 1:
        judged = [(families[0] if len(families) == 1 else None, *judged[0][1:])]
    out = []
    for fam, sent, expect, reason in judged:
        suffix = f" ({fam})" if fam is not None and len(judged) > 1 else ""
        # no family: the probe tries each family of the answer
        out.append(_row(flow, str(flow.get("name") or f"{proto}/{flow.get('port')} to dns:{name}") + suffix, f"dns:{name}",
                        {"family": fam} if fam is not None else {}, sent, src, (expect, reason, inconclusive_ok), proto))
    return out


def _inbound(ir: Mapping | None, flow: Mapping, fpath: str, own: list, peers: Mapping) -> dict:
    """An inbound flow (see expect_flows): what the other host's policy and this host's say."""
    peer = flow.get("from_host")
    if not isinstance(peer, str) or peer not in peers:
        raise PolicyError(f"{fpath}.from_host", peer, "must name the inventory host that opens the connection")
    if ir is None:
        raise PolicyError(fpath, flow, "is inbound, but this host has no egress_role (no policy of its own to answer by)")
    for key in ("user", "group", "family"):
        if key in flow:
            raise PolicyError(f"{fpath}.{key}", flow[key], "is for an outbound flow (an inbound one is sent by the other host)")
    if is_dns_entry(flow.get("dst")):
        raise PolicyError(f"{fpath}.dst", flow["dst"], "is a DNS name: an inbound flow comes to an address of this host")
    proto = flow.get("proto", "tcp")
    if proto not in ("tcp", "udp"):
        raise PolicyError(f"{fpath}.proto", proto, "is not tcp or udp")
    inconclusive_ok = parse_bool(flow.get("inconclusive_ok", False), f"{fpath}.inconclusive_ok")
    theirs = [_address(a, f"{fpath}.from_host") for a in peers[peer].get("addresses") or []]
    src = _address(flow["src"], f"{fpath}.src") if flow.get("src") is not None else None
    dst = _address(flow["dst"], f"{fpath}.dst") if flow.get("dst") is not None else None
    if dst is None:
        dst = _first(own, src.version if src else 4, f"{fpath}.dst", "this host")
    if src is None:
        src = _first(theirs, dst.version, f"{fpath}.src", f"host {peer}")
    if src.version != dst.version:
        raise PolicyError(f"{fpath}.src", str(src), "is not of the same address family as dst")
    sent = Flow.from_mapping({"src": str(src), "dst": str(dst), "proto": proto, "port": flow.get("port")}, fpath, aliases=True)
    decisions = []
    if peers[peer].get("policy") is not None:
        decisions.append((f"{peer}: ", evaluate(peers[peer]["policy"], sent)))
    decisions.append(("", evaluate(ir, sent.but(direction="inbound"))))
    denied = [(where, d) for where, d in decisions if d["verdict"] == "drop"]
    where, decision = denied[0] if denied else decisions[-1]
    return {
        "name": str(flow.get("name") or f"{proto}/{flow.get('port')} in from {peer}"),
        "dst": str(dst),
        "port": sent.dport,
        "proto": proto,
        "src": None if flow.get("src") is None else str(src),
        "expect": "denied" if denied else "allowed",
        "reason": where + decision["reason"],
        "inconclusive_ok": inconclusive_ok,
        "from_host": peer,
    }
