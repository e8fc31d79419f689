# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sets a resolver fills and the local resolver's configuration, for the renderers that
have such sets (nftables, iptables; private to the collection). docs/dns.md tells the whole story.

An upstream that holds DNS names (a set with ``names``) is matched by its listed addresses
and by two more sets per family, its halves ``a`` and ``b``. The host's (or gateway's) own
dnsmasq adds every address it answers for a covered name to both halves, as the answer
passes, before the client has it. A timer empties one half every ``lifetime`` seconds, the
halves in turn. An address stays in at least one half for ``lifetime`` seconds after any
answer for it (the half emptied next after the answer is refilled by no one, but the other
is emptied no sooner than ``lifetime`` later), whether or not it was already there: re-adding
an element refreshes nothing, so no element timeout is relied on, and the local cache, the
site resolvers' caches and the clients' grace together fit in ``lifetime`` (``egress_dns``).

Pure Python: no Ansible imports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.render.common import LINUX_IFNAME

HALVES = ("a", "b")
FAMILY_DIGIT = {"ipv4": "4", "ipv6": "6"}
# What a name in a dnsmasq option may hold: model.dnsnames checked it already; this is the
# last word before the text is written into a configuration file.
SAFE_NAME = re.compile(r"(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+")


def named_sets(irs: list) -> dict[str, list[str]]:
    """The sets of ``irs`` that hold DNS names: set name -> its names, sorted by set."""
    out: dict[str, list[str]] = {}
    for ir in irs:
        for name, members in ir["sets"].items():
            if members.get("names"):
                out[name] = list(members["names"])
    return dict(sorted(out.items()))


def settings(irs: list) -> Mapping | None:
    """The ``dns`` settings of the policies that carry names (the longest lifetime when a
    host and an edge policy share one table)."""
    found = [ir["dns"] for ir in irs if ir.get("dns")]
    if not found:
        return None
    return max(found, key=lambda one: one["lifetime"])


def dnsmasq_conf(irs: list, option: str, targets: Callable[[str, str, str], str], servers: list[str], resolv_file: str = "") -> str:
    """The local dnsmasq's configuration for ``irs``: where it listens (loopback only), the
    servers it forwards to (``servers``; none: those of ``resolv_file``, the host's own as
    they were before it asked this resolver), its cache limit, and for each name set the
    sets an answer goes into: the dnsmasq ``option`` (``nftset``) naming, for one half of one
    family, ``targets(set, half, family)``. Empty when no policy holds a name."""
    sets = named_sets(irs)
    dns = settings(irs)
    if not sets or dns is None:
        return ""
    lines = [
        f"# warden.egress: the local resolver that fills the name sets of {irs[0]['target']} (docs/dns.md).",
        "# Generated: edit the inventory, not this file.",
        "no-hosts",
        "bind-interfaces",
        "listen-address=127.0.0.1",
        "listen-address=::1",
    ]
    # A gateway answers the site's resolvers on its inside interfaces too (they forward to it,
    # so that what the clients are told passes the resolver that fills the edge's sets).
    for ir in irs:
        for inside in (ir.get("edge") or {}).get("inside", []):
            if not LINUX_IFNAME[0].fullmatch(inside["interface"]):
                raise ValueError(f"refusing to write interface name {inside['interface']!r}")
            lines.append(f"interface={inside['interface']}")
    lines += [
        "no-negcache",
        # 0 would mean no limit to dnsmasq: with cache_ttl 0 nothing is cached.
        f"max-cache-ttl={dns['cache_ttl']}" if dns["cache_ttl"] else "cache-size=0",
    ]
    if dns.get("log_answers", True):
        # Each query and answer, to syslog (the journal, under the unit): "SERIAL CLIENT/PORT
        # query[A] NAME from CLIENT", then "... reply NAME is ADDRESS" or "is <CNAME>" along a
        # chain, one serial for all lines of one query, so learn reads the name asked for each
        # address (learn/resolver.py). Queued, never waited for: a slow journal drops lines
        # (and dnsmasq says how many) rather than hold an answer back.
        lines += ["log-queries=extra", "log-async=25"]
    if servers:
        lines.append("no-resolv")
    elif not re.fullmatch(r"/[A-Za-z0-9_./-]+", resolv_file or ""):
        raise ValueError(f"no resolver to forward to: give egress_dns.servers, or a resolv file (not {resolv_file!r})")
    else:
        lines.append(f"resolv-file={resolv_file}")
    for server in servers:
        if not re.fullmatch(r"[0-9a-fA-F.:]+", server):
            raise ValueError(f"refusing to write resolver address {server!r}")
        lines.append(f"server={server}")
    for set_name, names in sets.items():
        for name in names:
            if not SAFE_NAME.fullmatch(name):
                raise ValueError(f"refusing to write DNS name {name!r}")
        where = ",".join(targets(set_name, half, family) for family in FAMILY_DIGIT for half in HALVES)
        # One name a line: dnsmasq refuses a line much longer than a name and its sets.
        lines.extend(f"{option}=/{name}/{where}" for name in names)
    return "\n".join(lines) + "\n"


def flush_lines(irs: list, flush: Callable[[str, str, str], str]) -> dict[str, str]:
    """What the timer runs to empty each half: half -> the lines (``flush(set, half,
    family)`` gives the backend's command for one set)."""
    sets = named_sets(irs)
    return {half: "".join(flush(name, half, family) + "\n" for name in sets for family in FAMILY_DIGIT) for half in HALVES}


def resolver_files(irs: list, option: str, target: Callable[[str, str, str], str], flush: Callable[[str, str, str], str],
                   servers: list[str] | None = None, resolv_file: str = "") -> dict:
    """A backend's local resolver files for the policies ``irs`` of one table: ``conf`` (the
    dnsmasq configuration, ``option`` naming ``target(set, half, family)``; forwarding to
    ``servers``, by default the policies' ``egress_dns.servers``, else to those of
    ``resolv_file``), ``flush`` (half -> the lines that empty it, ``flush(set, half,
    family)`` a line) and ``lifetime``."""
    dns = settings(irs) or {}
    conf = dnsmasq_conf(irs, option, target, dns.get("servers", []) if servers is None else servers, resolv_file)
    return {"conf": conf, "flush": flush_lines(irs, flush), "lifetime": dns.get("lifetime")}
