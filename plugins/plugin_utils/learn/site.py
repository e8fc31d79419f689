# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Learned flows in the site's own terms: who sent them, to which upstream, which service,
and which of them are findings rather than candidates to allow (private to the collection)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import ALERT_CLASSES
from ansible_collections.warden.egress.plugins.plugin_utils.compile.roles import allow_entries
from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import SitePolicies, targets
from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import lifetime
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import PrefixIndex

# Services whose servers a site designates; reaching any other server is a finding.
DESIGNATED = {"dns": ("dns",), "ntp": ("ntp",), "smtp": ("smtp", "submission", "smtps")}
MAIL_PORTS = {25, 465, 587}


def _networks(sets: Mapping) -> list:
    return [ipaddress.ip_network(p) for family in ("ipv4", "ipv6") for p in sets.get(family, [])]


def _inside(address, networks) -> bool:
    if isinstance(networks, PrefixIndex):
        return bool(networks.lookup(address))
    return any(address.version == net.version and address in net for net in networks)


class LearnSite(SitePolicies):
    """An inventory compiled (``SitePolicies``) and indexed for learning: the site's
    designated servers, who may send mail, and the upstreams by address. ``host_vars``,
    ``addresses`` and ``groups`` are what ``compile.site.compile_site`` takes."""

    def __init__(self, host_vars: Mapping[str, Mapping], addresses: Callable | Mapping, groups: Mapping,
                 today: datetime.date | None = None) -> None:
        super().__init__(host_vars, addresses, groups, today)
        names = targets(host_vars)
        first = host_vars[names[0]] if names else {}
        self.services: dict[str, dict] = self.site.services
        self.upstreams: dict[str, dict] = self.site.upstreams
        self.role_defs: dict[str, tuple] = self.site.role_defs
        self.raw = {name: first.get(name) for name in ("egress_upstreams", "egress_services", "egress_roles", "egress_exceptions")}
        self.prefixes = sorted({ir["log"]["prefix"] for irs in self.policies.values() for ir in irs.values()} or {"warden-egress"})
        self.designated = self._designated()
        self.designated_text = {kind: ", ".join(sorted({str(n) for n in nets})) or "none designated" for kind, nets in self.designated.items()}
        # parsed once: a site's upstreams can hold thousands of prefixes
        self.upstream_index = PrefixIndex()
        self.upstream_size: dict[str, int] = {}
        for name, sets in self.upstreams.items():
            if name != "any":
                for net in _networks(sets):
                    self.upstream_index.add(net, name)
                    self.upstream_size[name] = self.upstream_size.get(name, 0) + net.num_addresses
        self.never_index = PrefixIndex()
        for net in self.never_leave:
            self.never_index.add(net)
        self.designated_index = {kind: PrefixIndex() for kind in self.designated}
        for kind, nets in self.designated.items():
            for net in nets:
                self.designated_index[kind].add(net)
        self._upstreams_of: dict[str, list[str]] = {}
        self._naming: dict[str, set[str]] | None = None  # a dns: name -> the upstreams that list it, made when first asked
        self.mailers = self.mail_roles()

    def role_allows(self, role: str) -> list[dict]:
        spec, path = self.role_defs.get(role, ({"allow": []}, role))
        return allow_entries(spec, path)

    def _designated(self) -> dict[str, list]:
        """Per designated service: the networks of every upstream (but ``any``) a role allows it to."""
        out: dict[str, list] = {name: [] for name in DESIGNATED}
        for role in self.role_defs:
            for entry in self.role_allows(role):
                for kind, services in DESIGNATED.items():
                    if set(entry["services"]) & set(services):
                        for upstream in entry["to"]:
                            if upstream != "any" and upstream in self.upstreams:
                                out[kind].extend(_networks(self.upstreams[upstream]))
        return out

    def mail_roles(self) -> set[str]:
        """Roles allowed to send mail (any allow entry of an SMTP-family service)."""
        return {role for role in self.role_defs if any(set(e["services"]) & set(DESIGNATED["smtp"]) for e in self.role_allows(role))}

    # ------------------------------------------------------------------ attribution

    def _edge_matches(self, host: str, record: Mapping) -> bool:
        edge = self.policies.get(host, {}).get("edge")
        if edge is None:
            return False
        inside = {entry["interface"] for entry in edge["edge"]["inside"]}
        outside = set(edge["edge"]["outside"])
        return record["iif"] in inside | outside and record["oif"] in inside | outside

    def _unwritten(self, host: str, record: Mapping) -> str | None:
        """Why the policy of ``host`` that the line's form names (host or edge) would not
        write it: another log prefix, no denied lines, or a word its mode does not log."""
        kind = "edge" if record["iif"] else "host"
        ir = self.policies.get(host, {}).get(kind)
        if ir is None:
            return None
        log, mode, word = ir["log"], ir["mode"], record["word"]
        if record["prefix"] != log["prefix"]:
            return f"prefix {record['prefix']!r}: the {kind} policy of {host} logs as {log['prefix']!r}"
        if not log["denied"]:
            return f"the {kind} policy of {host} logs no denied flows (egress_log.denied: false)"
        if word == "audit" and mode != "audit" or word == "deny" and mode == "audit":
            return f"'{word}' from the {kind} policy of {host}, which is in {mode} mode"
        return None

    def owner(self, record: Mapping, seen_on: list[str]) -> dict:
        """Whose policy wrote a kernel line found in the logs of ``seen_on`` (one host, or
        several sharing a kernel log), for ``learn.collect``. A host's own output line belongs
        to the host holding it whose address is its source; a forwarded line (``IN=`` set) to
        the host holding it whose edge policy has its ``IN`` and ``OUT`` interfaces. Its prefix,
        tag and word must be what that policy writes in its mode, or it is rejected. A line with
        no such host is a finding (``not_this_host``, ``no_edge_policy``, ``owner_undecided``),
        never given to a host by guess."""
        edge = record["iif"] is not None
        if edge:
            candidates = [h for h in seen_on if self._edge_matches(h, record)]
        else:
            mine = set(self.hosts_at.get(ipaddress.ip_address(record["src"]), []))
            candidates = [h for h in seen_on if h in mine and "host" in self.policies.get(h, {})]
        fitting = [h for h in candidates if self._unwritten(h, record) is None]
        if len(fitting) == 1:
            return {"reporter": fitting[0]}
        if len(candidates) == 1:
            return {"reporter": candidates[0], "reject": ("not_this_policy", self._unwritten(candidates[0], record))}
        if len(seen_on) == 1 and not candidates:
            host = seen_on[0]
            why = self._unwritten(host, record)
            if why is not None:
                return {"reporter": host, "reject": ("not_this_policy", why)}
            if edge:
                has = "edge" in self.policies.get(host, {})
                return {"reporter": host, "finding": {"class": "no_edge_policy", "why": (
                    f"a forwarded packet (IN={record['iif']} OUT={record['oif']}) in the log of {host}, "
                    + ("whose edge policy has no such interfaces" if has else "which has no edge policy"))}}
            owners = self.hosts_at.get(ipaddress.ip_address(record["src"]), [])
            if "host" not in self.policies.get(host, {}):
                return {"reporter": host, "finding": {"class": "no_host_policy", "why": f"in the log of {host}, which has no host policy"}}
            return {"reporter": host, "finding": {"class": "not_this_host", "why": (
                f"source is not this host's: {record['src']} is not an address of {host}"
                + (f" (it is {', '.join(owners)}'s)" if owners else ""))}}
        what = "several of them" if candidates else "none of them"
        who = "has an edge policy with these interfaces" if edge else f"has {record['src']} as its address"
        return {"reporter": None, "finding": {"class": "owner_undecided", "why": (
            f"in the shared kernel log of {', '.join(seen_on)}: {what} {who}, so nothing says whose policy wrote it")}}

    def service(self, flow: Mapping) -> str | None:
        """The site's service (built-in or egress_services) that names this protocol and port."""
        matches = []
        for name, spec in self.services.items():
            if flow["proto"] in ("icmp", "icmpv6") and spec["protos"] == ["icmp"] and flow["icmp_type"] == "echo-request":
                matches.append((0, name))
            elif flow["proto"] in spec["protos"] and spec["ports"] and any(low <= (flow["dport"] or 0) <= high for low, high in spec["ports"]):
                width = sum(high - low + 1 for low, high in spec["ports"]) * len(spec["protos"])
                matches.append((width, name))
        return min(matches)[1] if matches else None

    def upstreams_of(self, address: str) -> list[str]:
        """Every upstream (but ``any``) that holds ``address``, narrowest first."""
        if address in self._upstreams_of:
            return self._upstreams_of[address]
        addr = ipaddress.ip_address(address)
        longest: dict[str, int] = {}
        for name, net in self.upstream_index.lookup(addr):
            longest[name] = max(longest.get(name, 0), net.prefixlen)
        found = sorted((-length, self.upstream_size[name], name) for name, length in longest.items())
        self._upstreams_of[address] = [found_name for *dummy, found_name in found]
        return self._upstreams_of[address]

    def upstreams_naming(self, names: list[str]) -> list[str]:
        """Every upstream (but ``any``) that lists one of ``names`` as a ``dns:`` entry of its
        own (the name itself, not a parent or a wildcard over it)."""
        if not names:
            return []
        if self._naming is None:
            self._naming = {}
            for upstream, sets in self.upstreams.items():
                for name in sets.get("names") or () if upstream != "any" else ():
                    self._naming.setdefault(name, set()).add(upstream)
        return sorted({upstream for name in names for upstream in self._naming.get(name, ())})

    def answer_lifetime(self, host: str | None, edge: bool) -> int:
        """How long (seconds) an address stays allowed after its resolver answered it, for the
        policy of ``host`` that logged a flow (its edge policy for a forwarded one): the
        policy's own when it has names, else what it would have with the site's ``egress_dns``
        (a host's own resolver is asked first: the site resolvers' cache does not count)."""
        ir = self.policies.get(host, {}).get("edge" if edge else "host") if host is not None else None
        if ir is not None and ir.get("dns"):
            return ir["dns"]["lifetime"]
        settings = dict(self.site.dns)
        if not edge:
            settings["upstream_cache_ttl"] = 0
        return lifetime(settings)

    # ------------------------------------------------------------------ classification

    def findings(self, flow: Mapping, source: Mapping, service: str | None) -> list[dict]:
        """Why a flow must not become an allow suggestion (empty: it may)."""
        out = []
        dst = ipaddress.ip_address(flow["dst"])
        port, proto = flow["dport"], flow["proto"]
        if source["kind"] == "unknown":
            out.append({"class": "unknown_source", "why": f"{flow['src']} is no inventory host and in no segment"})
        if flow.get("attribution"):
            out.append(dict(flow["attribution"]))
        for name, spec in ALERT_CLASSES.items():
            hit = any(proto == p and any(low <= (port or 0) <= high for low, high in ranges) for p, ranges in spec["match"])
            if not hit:
                continue
            if name == "smtp":
                if source["roles"] and set(source["roles"]) & self.mailers:
                    continue
                out.append({"class": "smtp", "why": f"SMTP (port {port}) from {source['name']}, whose roles ({', '.join(source['roles']) or 'none'}) "
                                                    f"do not send mail"})
            else:
                out.append({"class": name, "why": f"{spec['description']} (port {port}/{proto})"})
        if _inside(dst, self.never_index):
            out.append({"class": "never_leave", "why": f"{dst} is a special-purpose, private, multicast or never-leave destination"})
        for kind, services in DESIGNATED.items():
            if service in services and not _inside(dst, self.designated_index[kind]):
                if kind == "smtp" and any(f["class"] == "smtp" for f in out):
                    continue
                out.append({"class": f"undesignated_{kind}",
                            "why": f"{service} to {dst}, not one of the site's {kind.upper()} servers ({self.designated_text[kind]})"})
        return out
