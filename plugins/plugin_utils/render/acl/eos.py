# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Arista EOS: the ACLs rendered for arista.eos, read back, and in the device's forms
(private to the collection).

* render: ``eos_config`` is the ``config`` for ``arista.eos.eos_acls``;
* read back: ``read_eos`` turns its ``state: parsed`` into the platform-neutral entries of
  ``common``; ``eos_bindings`` reads the interface bindings from ``show running-config``;
* device form: ``eos_session`` is the configuration session, with its commit timer, that
  ``arista.eos.eos_command`` sends.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import read_number
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import (
    CAPABILITIES as ACL_CAPABILITIES, NAMES, STEP, aces, command_lines, new_entry, once_each, remark_groups,
)


# What arista.eos.eos_acls cannot express besides what no device ACL can: it renders IP
# protocol 4 (IP-in-IP) as "ip", which on the device matches every protocol, so 4 is
# refused rather than rendered. Its limits: a remark's length; the longest commit timer.
CAPABILITIES = {
    **ACL_CAPABILITIES,
    "refused_protocols": {4: "IP protocol 4 cannot be rendered for arista.eos.eos_acls (it renders it as 'ip', every protocol)"},
}
LIMITS = {"remark": 100, "confirm_timer": (24 * 3600 - 1, "commit timer takes at most 23:59:59"), "entries": 4096}


# --------------------------------------------------------------------------- render

# Protocol numbers arista.eos.eos_acls renders as names (4 aside: see CAPABILITIES).
EOS_PROTOCOL_NAMES = {"ahp": 51, "gre": 47, "icmp": 1, "igmp": 2, "ospf": 89, "pim": 103, "tcp": 6, "udp": 17, "vrrp": 112, "icmpv6": 58}


def _eos_address(net) -> dict:
    if net is None:
        return {"any": True}
    if net.num_addresses == 1:
        return {"host": str(net.network_address)}
    return {"subnet_address": str(net)}


def eos_config(ir: Mapping, names: Mapping | None = None) -> list:
    """``config`` for arista.eos.eos_acls: entries at 10, 20, ...; each block of entries of one
    origin headed by a remark 5 before its first entry."""
    config = []
    for family, entries in aces(ir, capabilities=CAPABILITIES).items():
        out = []
        address = once_each(_eos_address)
        for index, (remark, entry) in enumerate(remark_groups(entries), 1):
            sequence = index * STEP
            if remark is not None:
                out.append({"sequence": sequence - STEP // 2, "remark": remark[:LIMITS["remark"]]})
            ace = {"sequence": sequence, "grant": entry["action"]}
            proto = entry["proto"]
            if isinstance(proto, int):
                ace["protocol"] = str(proto)
            elif proto == "icmp" and family == "ipv6":
                ace["protocol"] = "icmpv6"
            else:
                ace["protocol"] = proto or ("ip" if family == "ipv4" else "ipv6")
            ace["source"] = address(entry["src"])
            ace["destination"] = address(entry["dst"])
            if entry["ports"] is not None:
                low, high = entry["ports"]
                ace["destination"]["port_protocol"] = {"eq": str(low)} if low == high else {"range": f"{low} {high}"}
            if entry["established"]:
                ace["protocol_options"] = {"tcp": {"flags": {"established": True}}}
            if entry["log"]:
                ace["log"] = True  # the module writes 'log' whenever the key is present, even false
            out.append(ace)
        config.append({"afi": family, "acls": [{"name": (names or NAMES)[family], "aces": out}]})
    return config


# --------------------------------------------------------------------------- read back

def _eos_parsed_address(spec: Mapping):
    if not spec or spec.get("any"):
        return None
    if spec.get("host"):
        return ipaddress.ip_network(spec["host"])
    if spec.get("subnet_address"):
        return ipaddress.ip_network(spec["subnet_address"])
    return ipaddress.ip_network(f"{spec['address']}/{spec['wildcard_bits']}")


def _eos_ports(spec: Mapping):
    if not spec:
        return None
    if "eq" in spec:
        return (int(spec["eq"]),) * 2
    if "range" in spec:
        low, high = spec["range"].split()
        return int(low), int(high)
    raise ValueError(f"unexpected port match {spec}")


def read_eos(parsed: list) -> dict:
    """What ``arista.eos.eos_acls`` state parsed returned, as entries (remarks dropped)."""
    out: dict = {}
    for afi in parsed:
        for acl in afi["acls"]:
            entries = []
            for ace in acl.get("aces", []):
                if "grant" not in ace:
                    continue  # a remark
                proto = str(ace.get("protocol"))
                if proto in ("ip", "ipv6"):
                    proto = None
                elif read_number(proto) is not None:
                    proto = int(proto)
                elif proto in ("icmp", "icmpv6"):
                    proto = "icmp"
                elif proto not in ("tcp", "udp"):
                    proto = EOS_PROTOCOL_NAMES[proto]
                flags = (ace.get("protocol_options") or {}).get("tcp", {}).get("flags", {})
                dst = ace.get("destination") or {}
                entries.append(new_entry(
                    ace["grant"], "", proto=proto, src=_eos_parsed_address(ace.get("source")), dst=_eos_parsed_address(dst),
                    ports=_eos_ports(dst.get("port_protocol")), established=bool(flags.get("established")), log=bool(ace.get("log")),
                ) | {"sequence": int(ace["sequence"])})
            out[(afi["afi"], acl["name"])] = entries
    return out


def eos_bindings(running_config: str) -> list:
    """The interface ACL bindings in EOS ``show running-config`` text, in the shape the
    ``*_acl_interfaces`` modules gather. (arista.eos.eos_acl_interfaces reads only
    ``ip access-group`` lines that start a line, and EOS indents them under their interface,
    so its gathered state would show no binding at all.) Only lines inside an ``interface``
    section count: an ``ip access-group`` of another section is not an interface's."""
    out, current = [], None
    for line in str(running_config).splitlines():
        text = line.strip()
        if not text or text.startswith("!"):
            continue
        if not line[0].isspace():
            found = re.fullmatch(r"interface (\S+)", text)
            current = {"name": found.group(1), "access_groups": []} if found else None
            if current is not None:
                out.append(current)
            continue
        found = re.fullmatch(r"(ip|ipv6) access-group (\S+) (in|out)", text) if current is not None else None
        if found:
            afi = "ipv4" if found.group(1) == "ip" else "ipv6"
            group = next((g for g in current["access_groups"] if g["afi"] == afi), None)
            if group is None:
                group = {"afi": afi, "acls": []}
                current["access_groups"].append(group)
            group["acls"].append({"name": found.group(2), "direction": found.group(3)})
    return out


# --------------------------------------------------------------------------- device form

EOS_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def eos_session(session: str, acls, bindings=None, timer: str | None = None, replace: list | None = None) -> list:
    """The commands ``arista.eos.eos_command`` sends for one EOS configuration session:
    ``configure session NAME``; ``no ip access-list X`` for each ACL in ``replace`` (an ACL
    replaced in place); the ACL lines ``arista.eos.eos_acls`` rendered; the interface lines
    ``arista.eos.eos_acl_interfaces`` rendered; ``end``, which leaves the session pending; then
    ``configure session NAME commit timer HH:MM:SS`` (rolled back by the switch unless
    ``configure session NAME commit`` follows in time) or, with no timer, ``commit``. The
    session changes the running configuration at once, when it is committed."""
    if not EOS_SESSION.fullmatch(session or ""):
        raise ValueError(f"EOS session name {session!r} is not letters, digits, '-' and '_' (at most 64)")
    if timer is not None and not re.fullmatch(r"[0-9]{2}:[0-5][0-9]:[0-5][0-9]", timer):
        raise ValueError(f"EOS commit timer {timer!r} is not HH:MM:SS")
    acl_lines, bind_lines = command_lines(acls), command_lines(bindings)
    if not acl_lines:
        raise ValueError("the rendered EOS configuration has no access list")
    if any(line.split()[:1] == ["no"] for line in bind_lines):
        raise ValueError(f"the rendered EOS bindings remove a binding: {bind_lines}")
    removals = [f"no {'ipv6' if family == 'ipv6' else 'ip'} access-list {name}" for family, name in (replace or [])]
    commit = f"configure session {session} commit" + (f" timer {timer}" if timer else "")
    return [f"configure session {session}"] + removals + acl_lines + bind_lines + ["end", commit]
