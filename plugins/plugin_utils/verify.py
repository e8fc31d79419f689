# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flows to try -> what the oracle expects of each (private to the collection)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.evaluate import evaluate

FLOW_KEYS = {"name", "dst", "port", "proto", "src", "inconclusive_ok"}


def _crosses(edge_ir: Mapping, dst) -> bool:
    """A destination inside the edge's inside prefixes does not cross the edge."""
    for entry in edge_ir["edge"]["inside"]:
        for prefix in entry["prefixes"]:
            if dst in ipaddress.ip_network(prefix):
                return False
    return True


def expect_flows(ir: Mapping | None, flows: list, addresses: list, edges: list | None = None, path: str = "egress_verify_flows") -> list[dict]:
    """Fill each flow's source and the verdict of every policy on its path.

    ``ir`` is the host's own policy (or None for a host without one); ``edges`` lists the
    gateways in front of the host, each ``{"policy": edge IR, "interface": inside interface}``.
    A flow is expected to get out only if every policy on its path lets it. ``addresses``
    are the host's own addresses; a flow without ``src`` leaves from the first of them in
    the destination's family (the probe then lets the kernel choose). A flow with
    ``inconclusive_ok: true`` passes verification when its outcome proves nothing (no route,
    no answer to a UDP datagram); it must still match the policy when it is conclusive.
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
        try:
            dst = ipaddress.ip_address(str(flow.get("dst")))
        except ValueError:
            raise PolicyError(f"{fpath}.dst", flow.get("dst"), "is not an IP address") from None
        proto = flow.get("proto", "tcp")
        if proto not in ("tcp", "udp"):
            raise PolicyError(f"{fpath}.proto", proto, "is not tcp or udp")
        inconclusive_ok = flow.get("inconclusive_ok", False)
        if not isinstance(inconclusive_ok, bool):
            raise PolicyError(f"{fpath}.inconclusive_ok", inconclusive_ok, "must be true or false")
        src = flow.get("src")
        if src is None:
            same = [a for a in own if a.version == dst.version]
            if not same:
                raise PolicyError(fpath, flow, f"has no src and the host has no IPv{dst.version} address in egress_addresses")
            effective = str(same[0])
        else:
            effective = str(src)
        packet = {"src": effective, "dst": str(dst), "proto": proto, "dport": flow.get("port")}
        decisions = []
        if ir is not None:
            decisions.append(("", evaluate(ir, packet)))
        for policy, interface in hops:
            if _crosses(policy, dst):
                decisions.append((f"edge {policy['target']}: ", evaluate(policy, {**packet, "iif": interface, "oif": policy["edge"]["outside"][0]})))
        if not decisions:
            raise PolicyError(fpath, flow, "crosses no policy: the host has no egress_role and no egress_gateway in front of this destination")
        denied = [(where, d) for where, d in decisions if d["verdict"] == "drop"]
        where, decision = denied[0] if denied else decisions[-1]
        out.append({
            "name": str(flow.get("name") or f"{proto}/{flow.get('port')} to {dst}"),
            "dst": str(dst),
            "port": int(flow["port"]),
            "proto": proto,
            "src": None if src is None else str(src),
            "expect": "denied" if denied else "allowed",
            "reason": where + decision["reason"],
            "inconclusive_ok": inconclusive_ok,
        })
    return out
