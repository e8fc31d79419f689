# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the renderers share: how several policies of one table are put together, the text
they may carry, the header that describes them, the log limits, and what a renderer can
express (``CAPABLE``, which each renderer's ``CAPABILITIES`` narrow, held to a rule by
``refusal``) (private to the collection)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import LOCAL_NAME_RE, RATE_SECONDS

COMMENT_MAX = 120
SAFE_TEXT = re.compile(rf"[A-Za-z0-9_ .,:/()#-]{{1,{COMMENT_MAX}}}")


def clip(comment: str, limit: int = COMMENT_MAX) -> str:
    """A rule's comment cut to what a backend's rule may carry, marked with '...': a comment
    names the rule's origin (role, service, upstream, the clients a service is served to),
    which long names can take past the limit; what it matches is in the rule itself."""
    return comment if len(comment) <= limit else comment[: limit - 3].rstrip() + "..."


def quote(value: str, limit: int | None = None) -> str:
    """Text for a ruleset, in double quotes (cut to ``limit`` first, when given); anything
    that could break out of the quotes is refused."""
    if limit is not None:
        value = clip(value, limit)
    if not SAFE_TEXT.fullmatch(value):
        raise ValueError(f"refusing to render unsafe text into the ruleset: {value!r}")
    return f'"{value}"'


# Log lines that may be written at once: per verdict chain (all sources), and per alert
# class and source (see alert_burst).
LOG_BURST = 5
ALERT_BURST = 5
VERDICT_CHAINS = ("deny", "alert", "ratelimit", "unserved")
# A header line stays short whatever the number of roles (ipset reads lines of at most 1024
# characters; pf and nft have their own limits).
DESCRIBE_MAX = 200


def alert_class(rule: Mapping) -> str:
    """The alert class an ``alert`` rule belongs to (each class has its own log limit)."""
    name = rule.get("alert_class") or "alert"
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
        raise ValueError(f"refusing to render unsafe alert class {name!r}")
    return name


def alert_burst(log: Mapping) -> int:
    """Alert lines a source may write at once in one class: ``ALERT_BURST``, or a day's
    worth of ``rate`` when that is less (iptables' hashlimit refuses a longer burst)."""
    count, unit = log["rate"].split("/")
    return max(1, min(ALERT_BURST, int(count) * RATE_SECONDS["day"] // RATE_SECONDS[unit]))


def alert_timeout(log: Mapping) -> int:
    """Seconds a source's alert meter is kept after its last alert: the time its burst
    takes to refill (a fresh meter is a full one), at least a minute."""
    count, unit = log["rate"].split("/")
    return max(60, math.ceil(alert_burst(log) * RATE_SECONDS[unit] / int(count)))


def owners(ir: Mapping, rule: Mapping, kind: str) -> list | None:
    """A rule's ``users`` or ``groups`` as the ruleset writes them: numbers, with each name
    replaced by its number when the IR has it (``local_ids``, looked up on the target), or
    else the name (the tool resolves it when it loads the rules, and fails if it is missing)."""
    entries = rule.get(kind)
    if entries is None:
        return None
    if not entries:
        raise ValueError(f"refusing to render a rule with an empty {kind} list")
    ids = ir.get("local_ids", {}).get(kind, {})
    out = []
    for entry in entries:
        if isinstance(entry, int) and not isinstance(entry, bool) and 0 <= entry <= 4294967294:
            out.append(entry)
        elif isinstance(entry, str) and LOCAL_NAME_RE.fullmatch(entry):
            found = (ids.get(entry) or {}).get("id")
            out.append(found if isinstance(found, int) and not isinstance(found, bool) else entry)
        else:
            raise ValueError(f"refusing to render unsafe {kind} entry {entry!r}")
    return out


def merge_sets(irs: list) -> dict:
    sets: dict = {}
    for ir in irs:
        for name, families in ir["sets"].items():
            if name in sets and sets[name] != families:
                raise ValueError(f"set {name} differs between the policies of one table")
            sets[name] = families
    return dict(sorted(sets.items()))


def policies(policy, distinct: str, same: tuple, owner: str) -> list:
    """One IR, or a list of them, as a list: at most one per value of ``distinct`` (hook,
    kind), and all agreeing on ``same``, since they share one ``owner`` (table, anchor)."""
    irs = list(policy) if isinstance(policy, (list, tuple)) else [policy]
    if not irs:
        raise ValueError("nothing to render")
    values = [ir[distinct] for ir in irs]
    if len(set(values)) != len(values):
        raise ValueError(f"two policies for the same {distinct}: {values}")
    for ir in irs[1:]:
        for key in same:
            if ir[key] != irs[0][key]:
                raise ValueError(f"policies of one {owner} disagree on {key}")
    return irs


def describe(irs: list, kinds: bool = True) -> str:
    """What the policies of one file are for, in at most DESCRIBE_MAX characters: each
    policy's kind (unless ``kinds`` is false) and roles, the roles cut short with their count
    when there are many."""
    parts = []
    for ir in irs:
        roles = ir["roles"]
        text = ", ".join(roles) or "-"
        room = DESCRIBE_MAX // len(irs) - len(ir["kind"]) - 1
        if len(text) > room:
            shown = []
            for role in roles:
                if len(", ".join(shown + [role])) + len(f", and {len(roles)} more") > room:
                    break
                shown.append(role)
            text = ", ".join(shown) + f", and {len(roles) - len(shown)} more" if shown else f"{len(roles)} roles"
        parts.append(f"{ir['kind']} {text}" if kinds else text)
    return "; ".join(parts)


def specialise(rule: Mapping, inside: str | None, outside: str):
    """The rule for packets in on ``inside`` (None: an undeclared interface) and out on
    ``outside``; None when it cannot match them. Connection-state rules are left out: they
    are pf's state table's business, and a device ACL has no connection state."""
    if rule["ct_state"] is not None and rule["ct_state"] != ["new"]:
        return None
    if rule.get("iif") is not None and inside not in rule["iif"]:
        return None
    if rule.get("iif_not") is not None and inside in rule["iif_not"]:
        return None
    if rule["oif"] is not None and outside not in rule["oif"]:
        return None
    if rule.get("oif_not") is not None and outside in rule["oif_not"]:
        return None
    return {**rule, "iif": None, "iif_not": None, "oif": None, "oif_not": None, "ct_state": None}


# What a renderer can express. Each renderer module declares how it differs (its
# ``CAPABILITIES``, beside its ``LIMITS``); ``refusal`` holds a rule against a declaration, and
# ``render.platforms`` gives the compile each platform's, so a policy a platform cannot
# express is refused before anything is rendered.
CAPABLE = {
    "name": None,                      # how a refusal names the renderer
    "kinds": ("host", "edge"),         # the policies it renders: a box's own traffic, a gateway's forwarded traffic
    "owners": None,                    # the protocols whose local users and groups it matches (None: every one; (): none)
    "connection_state": True,          # served replies (ct_direction), connections picked up mid-stream, source ports
    "cannot": None,                    # what a refusal says of owners or connection state it has not
    "refused_protocols": {},           # an IP protocol number -> why it cannot be rendered
    "meter": None,                     # what holds the per-source limit on new connections (None: it is left out)
    "one_inside_one_outside": False,   # an edge of exactly one inside and one outside interface
    "tcp_flags": True,                 # it matches TCP flags (replies by ACK or RST)
    "log": True,                       # it has a log action
    "interface": None,                 # (the interface names it takes, as a regex; the same in words)
    "dns_names": False,                # sets a local resolver fills with the addresses it answers for a name (docs/dns.md)
    "dns_refusal": "it has no set a resolver can fill as it answers; list the upstream's addresses instead",
}
# What Linux takes as an interface name (at most 15 characters, no '/', ':' or white space,
# not '.' or '..'), without '@' (which 'ip' prints as a separator) and anything else a
# ruleset comment cannot carry.
LINUX_IFNAME = (re.compile(r"(?!\.\.?\Z)[A-Za-z0-9_.-]{1,15}"), "at most 15 of letters, digits, '_.-'; not '.' or '..'")


def refusal(capabilities: Mapping, rule: Mapping, kind: str = "host") -> str | None:
    """Why the renderer that declares ``capabilities`` cannot express ``rule`` of a ``kind``
    policy (host, edge); None when it can."""
    owned = rule.get("users") is not None or rule.get("groups") is not None
    stateful = rule.get("ct_direction") is not None or rule.get("sports") is not None or bool(rule.get("midstream"))
    if owned and capabilities["owners"] == () or stateful and not capabilities["connection_state"]:
        return capabilities["cannot"]
    if owned and kind != "host":
        return "an edge rule cannot match local users or groups"
    if owned and capabilities["owners"] is not None and rule["proto"] not in capabilities["owners"]:
        which = "users" if rule.get("users") is not None else "groups"
        return f"{capabilities['name']} matches {which} only for {' and '.join(capabilities['owners'])}, not {rule['proto']!r}"
    if rule.get("l4proto") is not None and int(rule["l4proto"]) in capabilities["refused_protocols"]:
        return capabilities["refused_protocols"][int(rule["l4proto"])]
    return None


def check_rules(capabilities: Mapping, irs: list) -> None:
    """Refuse, naming the rule, the first rule of ``irs`` the renderer cannot express."""
    for ir in irs:
        for rule in ir["rules"]:
            reason = refusal(capabilities, rule, ir["kind"])
            if reason is not None:
                raise ValueError(f"rule {rule['comment']!r}: {reason}")
