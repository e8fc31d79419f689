# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each platform's limits and what its renderer cannot express, for the compile (private to
the collection).

Every renderer module declares its own: ``LIMITS`` (what its tool and kernel leave to the
inventory) and ``CAPABILITIES`` (how it differs from ``render.common.CAPABLE``). The compile
asks here, with the platform's name, so a policy a platform cannot hold is refused with the
variable that asks for it, before anything is rendered; the renderers refuse the same again
from the same declarations:

* ``check_target``: the target's table and log settings against the platform's limits;
* ``check_interface``: an interface name as the platform takes one;
* ``check_meter``: the edge's per-source limit on new connections;
* ``check_names``: the DNS names a policy's sets hold, against the platform's ``dns_names``;
* ``refusal``: why a rule cannot be expressed (None when it can).
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import RATE_RE, RATE_SECONDS
from ansible_collections.warden.egress.plugins.plugin_utils.render import common, iptables, nftables, pf
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import VENDORS

RENDERERS = {"nftables": nftables, "iptables": iptables, "pf": pf, **VENDORS}


def limits(platform: str) -> Mapping:
    """The limits ``platform``'s renderer declares (``LIMITS``)."""
    return RENDERERS[platform].LIMITS


def capabilities(platform: str) -> Mapping:
    """What ``platform``'s renderer can express (``CAPABILITIES``): ``kinds`` (host, edge),
    ``owners``, ``connection_state``, ``meter``, ``one_inside_one_outside``, ``interface``..."""
    return RENDERERS[platform].CAPABILITIES


def check_target(platform: str, mode: str, table: str, log: Mapping) -> None:
    """Refuse a table name and log settings (``log``: denied, rate, prefix, already each
    valid on its own) that ``platform`` cannot hold: a ``PolicyError`` naming the variable."""
    limit = limits(platform)
    if "table" in limit and len(table) > limit["table"]:
        raise PolicyError("egress_table", table, f"is too long for egress_platform {platform} (at most {limit['table']} characters)")
    if "rate_per_second" in limit:
        count, unit = RATE_RE.fullmatch(log["rate"]).groups()
        if int(count) > limit["rate_per_second"] * RATE_SECONDS[unit]:
            raise PolicyError("egress_log.rate", log["rate"],
                              f"is faster than egress_platform {platform} can limit (at most {limit['rate_per_second']}/second)")
    prefix = log["prefix"]
    if "log_prefix" in limit and len(prefix) > limit["log_prefix"]:
        raise PolicyError("egress_log.prefix", prefix, f"is too long for egress_platform {platform} (at most {limit['log_prefix']} characters)")
    if "audit_log_prefix" in limit and mode == "audit" and log["denied"] and len(prefix) > limit["audit_log_prefix"]:
        raise PolicyError("egress_log.prefix", prefix, f"is too long for egress_platform {platform} in egress_mode audit (at most"
                          f" {limit['audit_log_prefix']} characters: each audit line starts '{prefix} audit[host]: ',"
                          f" at most {limit['log_line']})")


def check_interface(platform: str, value: object, path: str) -> str:
    """``value`` when it is an interface name ``platform`` takes, else a ``PolicyError``."""
    pattern, rule = capabilities(platform)["interface"]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PolicyError(path, value, f"is not an interface name for egress_platform {platform} ({rule})")
    return value


def check_meter(platform: str, meter: Mapping, path: str = "egress_edge.conn_limit") -> None:
    """Refuse a per-source limit on new connections (``meter``: rate, burst, each valid on
    its own) whose burst ``platform``'s meter cannot hold."""
    seconds = limits(platform).get("burst_seconds")
    count, unit = RATE_RE.fullmatch(meter["rate"]).groups()
    if seconds is not None and meter["burst"] * RATE_SECONDS[unit] > int(count) * seconds:
        worth = "a day's" if seconds == RATE_SECONDS["day"] else f"{seconds} seconds'"
        raise PolicyError(f"{path}.burst", meter["burst"], f"is more than {worth} worth of {meter['rate']}, "
                                                           f"which egress_platform {platform} ({capabilities(platform)['meter']}) cannot hold")


def refusal(platform: str, rule: Mapping, kind: str = "host") -> str | None:
    """Why ``platform``'s renderer cannot express ``rule`` of a ``kind`` policy (host, edge),
    in the words its renderer refuses it with; None when it can."""
    return common.refusal(capabilities(platform), rule, kind)


def check_names(platform: str, sets: Mapping) -> None:
    """Refuse DNS names (``dns:`` entries of an upstream, a set's ``names``) on a platform
    whose renderer has no set a resolver can fill (``dns_names``), naming the upstream."""
    if capabilities(platform)["dns_names"]:
        return
    for set_name, members in sorted(sets.items()):
        if members.get("names"):
            upstream = set_name[len("up_"):] if set_name.startswith("up_") else set_name
            raise PolicyError(f"egress_upstreams.{upstream}", [f"dns:{name}" for name in members["names"]],
                              f"holds DNS names, which egress_platform {platform} cannot follow: {capabilities(platform)['dns_refusal']}")
