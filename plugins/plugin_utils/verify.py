# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flows to try -> what the oracle expects of each (private to the collection)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.evaluate import evaluate

FLOW_KEYS = {"name", "dst", "port", "proto", "src"}


def expect_flows(ir: Mapping, flows: list, addresses: list, path: str = "egress_verify_flows") -> list[dict]:
    """Fill each flow's source and the oracle's verdict.

    ``addresses`` are the host's own addresses; a flow without ``src`` leaves from the
    first of them in the destination's family (the probe then lets the kernel choose).
    """
    own = []
    for i, addr in enumerate(addresses or []):
        try:
            own.append(ipaddress.ip_address(str(addr)))
        except ValueError:
            raise PolicyError(f"egress_addresses[{i}]", addr, "is not an IP address") from None
    if not isinstance(flows, list):
        raise PolicyError(path, flows, "must be a list of flows")
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
        src = flow.get("src")
        if src is None:
            same = [a for a in own if a.version == dst.version]
            if not same:
                raise PolicyError(fpath, flow, f"has no src and the host has no IPv{dst.version} address in egress_addresses")
            effective = str(same[0])
        else:
            effective = str(src)
        decision = evaluate(ir, {"src": effective, "dst": str(dst), "proto": proto, "dport": flow.get("port")})
        out.append({
            "name": str(flow.get("name") or f"{proto}/{flow.get('port')} to {dst}"),
            "dst": str(dst),
            "port": int(flow["port"]),
            "proto": proto,
            "src": None if src is None else str(src),
            "expect": "denied" if decision["verdict"] == "drop" else "allowed",
            "reason": decision["reason"],
        })
    return out
