# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit record the Linux renderers share (private to the collection).

In audit mode a would-be-denied flow is logged once, and not again for ``AUDIT_ONCE``
seconds (a flow still sending then is logged again, so a long-lived flow shows up once an
hour); the kernel remembers at most ``AUDIT_ENTRIES`` flows per set (an nftables dynamic
set, an ipset with a timeout on iptables). A flow is keyed on its source and destination
addresses, its protocol and, for ``AUDIT_PORT_PROTOS``, its destination port (on iptables,
ICMP also on its type and code). Each line says which policy decided, as a tag after the word:
``<prefix> audit[host]: `` (the host's own output policy) or ``<prefix> audit[edge]: `` (a
gateway's forward path). See docs/learn.md, "The audit record".
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import PREFIX_RE
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import KINDS

AUDIT_ONCE = 3600
# A full set lets a new flow through: nftables without a line, iptables (whose ipset cannot
# add it) with a line for each of its packets. Never a drop: audit mode only logs.
AUDIT_ENTRIES = 65536
AUDIT_PORT_PROTOS = ("tcp", "udp", "udplite", "sctp")
# The audit tag of a log line is the kind of IR that wrote it.
AUDIT_TAGS = tuple(KINDS)
# What the tag adds to egress_log.prefix (the longest tag).
AUDIT_PREFIX_EXTRA = max(len(f" audit[{tag}]: ") for tag in AUDIT_TAGS)


def audit_once(irs: list) -> bool:
    """Whether the policies of one table log their would-be denials once per flow: audit
    mode with denied flows logged (otherwise the deny chain is rendered as before)."""
    return irs[0]["mode"] == "audit" and bool(irs[0]["log"]["denied"])


def audit_tag(ir: Mapping) -> str:
    """Which policy an IR is, as the audit line names it."""
    if ir["kind"] not in AUDIT_TAGS:
        raise ValueError(f"refusing to render an audit line for policy kind {ir['kind']!r}")
    return ir["kind"]


def audit_prefix(log: Mapping, tag: str, limit: int) -> str:
    """``<prefix> audit[<tag>]: `` (safe to put in quotes as it is), refused when it is longer
    than the tool's ``limit``."""
    if tag not in AUDIT_TAGS:
        raise ValueError(f"refusing to render an audit line for policy kind {tag!r}")
    if not isinstance(log["prefix"], str) or not PREFIX_RE.fullmatch(log["prefix"]):
        raise ValueError(f"refusing to render unsafe log prefix {log['prefix']!r}")
    prefix = f"{log['prefix']} audit[{tag}]: "
    if len(prefix) > limit:
        raise ValueError(f"egress_log.prefix: {log['prefix']!r} is too long for an audit line (log prefix {prefix!r} exceeds {limit})")
    return prefix
