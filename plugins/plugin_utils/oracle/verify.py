# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flows to try -> what the oracle expects of each (private to the collection)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import Flow
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import parse_bool

FLOW_KEYS = {"name", "dst", "port", "proto", "src", "inconclusive_ok", "user", "group", "direction", "from_host"}


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
        dst = _address(flow.get("dst"), f"{fpath}.dst")
        proto = flow.get("proto", "tcp")
        if proto not in ("tcp", "udp"):
            raise PolicyError(f"{fpath}.proto", proto, "is not tcp or udp")
        inconclusive_ok = parse_bool(flow.get("inconclusive_ok", False), f"{fpath}.inconclusive_ok")
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
        decisions = []
        if ir is not None:
            decisions.append(("", evaluate(ir, sent)))
        for policy, interface in hops:
            if _crosses(policy, dst):
                decisions.append((f"edge {policy['target']}: ", evaluate(policy, sent.but(iif=interface, oif=policy["edge"]["outside"][0]))))
        if not decisions:
            raise PolicyError(fpath, flow, "crosses no policy: the host has no egress_role and no egress_gateway in front of this destination")
        denied = [(where, d) for where, d in decisions if d["verdict"] == "drop"]
        where, decision = denied[0] if denied else decisions[-1]
        out.append({
            "name": str(flow.get("name") or f"{proto}/{flow.get('port')} to {dst}"),
            "dst": str(dst),
            "port": sent.dport,
            "proto": proto,
            "src": None if src is None else str(src),
            "expect": "denied" if denied else "allowed",
            "reason": where + decision["reason"],
            "inconclusive_ok": inconclusive_ok,
            # as written: the probe runs the flow as this user
            **({"user": str(flow["user"]), "group": None if flow.get("group") is None else str(flow["group"])} if sent.user is not None else {}),
        })
    return out


def _inbound(ir: Mapping | None, flow: Mapping, fpath: str, own: list, peers: Mapping) -> dict:
    """An inbound flow (see expect_flows): what the other host's policy and this host's say."""
    peer = flow.get("from_host")
    if not isinstance(peer, str) or peer not in peers:
        raise PolicyError(f"{fpath}.from_host", peer, "must name the inventory host that opens the connection")
    if ir is None:
        raise PolicyError(fpath, flow, "is inbound, but this host has no egress_role (no policy of its own to answer by)")
    for key in ("user", "group"):
        if key in flow:
            raise PolicyError(f"{fpath}.{key}", flow[key], "is for an outbound flow (an inbound one is sent by the other host)")
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
