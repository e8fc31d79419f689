# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory variables -> Policy IR for one target (private to the collection).

Pure Python: no Ansible imports. Every input is validated here; a bad value raises
``PolicyError`` naming the variable path and the value, before anything is rendered.
The checks every value goes through, services and upstreams are in ``model.inputs``; what
each role allows and serves, as rules, in ``compile.roles``.

The IR is plain data (dicts, lists, strings, ints) so it can travel through Ansible
facts unchanged. Its shape is documented in ``docs/policy-ir.md``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.compile.roles import Plans
from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import ALERT_CLASSES, PLATFORMS
from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import lifetime
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError, parse_bool
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import (
    HOST_RE, PREFIX_RE, RATE_RE, TABLE_RE, as_list, check_keys, as_mapping, read_number,
)
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import dedupe, new_ir, new_rule, rule_key
from ansible_collections.warden.egress.plugins.plugin_utils.model.site import Site, parse_roles
from ansible_collections.warden.egress.plugins.plugin_utils.render.platforms import capabilities, check_names, check_target

MODES = ("enforce", "audit")
LOG_KEYS = {"denied", "rate", "prefix", "alert"}
# A service wider than this many ports is warned about (it also hides the alert classes).
WIDE_PORTS = 1024
DEFAULT_LOG = {"denied": True, "rate": "10/minute", "prefix": "warden-egress", "alert": ["irc", "backdoor", "smtp"]}

# ICMP that IPv4 and IPv6 need to work (errors, path MTU), and IPv6 neighbour discovery.
ICMP_ERRORS_V4 = ["destination-unreachable", "time-exceeded", "parameter-problem"]
ICMP_ERRORS_V6 = ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem"]
ICMPV6_ND = ["nd-router-solicit", "nd-neighbor-solicit", "nd-neighbor-advert"]
ICMPV6_MLD = ["mld-listener-report", "mld2-listener-report"]


# --------------------------------------------------------------------------- rules


def _baseline_rules(served: bool) -> tuple[list[dict], list[dict]]:
    """The baseline around a host's served replies: (before, after). When replies are
    judged by what the host serves (``served``), only this host's own connections get their
    replies and related packets out here; a packet of a connection opened from outside must
    match a served service (placed between the two parts) or is denied as ``unserved``."""
    before = [new_rule("accept", "baseline", "baseline: loopback", oif=["lo"])]
    if served:
        before.append(new_rule("accept", "baseline", "baseline: replies and related traffic of connections this host opened",
                               ct_state=["established", "related"], ct_direction="original"))
    else:
        before.append(new_rule("accept", "baseline", "baseline: replies and related traffic", ct_state=["established", "related"]))
    return before, [
        new_rule("deny", "baseline", "baseline: invalid state", ct_state=["invalid"]),
        new_rule("accept", "baseline", "baseline: IPv6 neighbour discovery", family="ipv6", proto="icmpv6", icmp_types=ICMPV6_ND, hoplimit=255),
        new_rule("accept", "baseline", "baseline: IPv6 multicast listener reports", family="ipv6", proto="icmpv6", icmp_types=ICMPV6_MLD, hoplimit=1),
        new_rule("deny", "baseline", "baseline: anti-spoofing IPv4", family="ipv4", saddr_not_in="trusted"),
        new_rule("deny", "baseline", "baseline: anti-spoofing IPv6", family="ipv6", saddr_not_in="trusted"),
        new_rule("accept", "baseline", "baseline: ICMP errors", family="ipv4", proto="icmp", icmp_types=ICMP_ERRORS_V4),
        new_rule("accept", "baseline", "baseline: ICMPv6 errors and path MTU", family="ipv6", proto="icmpv6", icmp_types=ICMP_ERRORS_V6),
    ]


UNSERVED = new_rule("unserved", "baseline", "baseline: replies of connections to a service this host does not serve", ct_direction="reply")


def alert_rules(classes: list[str], **match) -> list[dict]:
    """Denied flows of a dangerous kind, logged under their own prefix (after every allow).
    ``alert_class`` names the class: each class is logged under its own per-source limit."""
    rules = []
    for name in classes:
        for proto, ports in ALERT_CLASSES[name]["match"]:
            rules.append({**new_rule("alert", "alert", f"alert: {name}", proto=proto, dports=ports, **match), "alert_class": name})
    return rules


def wide_service_warnings(site: Site, uses: Mapping[str, set]) -> list[str]:
    """Warn about each service wider than WIDE_PORTS ports, naming what allows it here.
    ``uses`` maps a service name to the roles and exceptions that allow it."""
    warnings = []
    for name in sorted(uses):
        count = sum(high - low + 1 for low, high in site.services[name]["ports"] or [])
        if count > WIDE_PORTS:
            warnings.append(f"service {name} opens {count} ports (more than {WIDE_PORTS}; a range that wide also lets out "
                            f"the alert classes inside it), allowed by {', '.join(sorted(uses[name]))}")
    return warnings


def exception_warnings(exc: Mapping, today: datetime.date, warn_days: int, scope: str) -> list[str]:
    """Expired exceptions (not applied) and those that expire within ``warn_days``, with the owner."""
    label = f"egress_exceptions[{exc['index']}] ({', '.join(exc['service'])} for {', '.join(exc['hosts'])}){scope}"
    days = (datetime.date.fromisoformat(exc["expires"]) - today).days
    if days < 0:
        return [f"{label} expired on {exc['expires']} and is not applied; owner {exc['owner']}: renew or remove it"]
    if days <= warn_days:
        return [f"{label} expires on {exc['expires']}, in {days} day{'s' if days != 1 else ''}; owner {exc['owner']}: renew or remove it"]
    return []


# --------------------------------------------------------------------------- replies and SSH


REPLIES = ("auto", "served", "any")
# Connection plugins that reach a host without a network session to it (nothing to cut).
LOCAL_CONNECTIONS = {"local", "podman", "buildah", "docker", "lxc", "lxd", "incus", "chroot", "jail", "zone", "kubectl", "oc", "qubes"}


def _served_mode(variables: Mapping, roles: list[str], plans: Mapping) -> tuple[bool, list[str], list[str]]:
    """Whether replies are judged by what the host serves: (served, the roles that declare
    serves, warnings). ``egress_replies``: auto (when a role declares serves), served, any."""
    raw = variables.get("egress_replies", "auto")
    if raw not in REPLIES:
        raise PolicyError("egress_replies", raw, f"is not one of: {', '.join(REPLIES)}")
    serving = [role for role in roles if plans[role]["serves"] is not None]
    warnings = []
    if raw == "any" and serving:
        warnings.append(f"egress_replies is any: what {', '.join(f'role {r}' for r in serving)} serves is not enforced "
                        "(every reply of a connection opened from outside leaves)")
    return raw == "served" or (raw == "auto" and bool(serving)), serving, warnings


def ssh_port(variables: Mapping) -> int | None:
    """The port Ansible's SSH session to the host arrives on (``ansible_port``, default 22),
    or None when the connection plugin reaches the host without a network session."""
    connection = variables.get("ansible_connection")
    if isinstance(connection, str) and connection.rsplit(".", 1)[-1] in LOCAL_CONNECTIONS:
        return None
    port_name = "ansible_port" if "ansible_port" in variables else "ansible_ssh_port"
    raw = variables.get(port_name, 22)
    port = read_number(raw, 1, 65535)
    if port is None:
        raise PolicyError(port_name, raw, "is not a port (1-65535)")
    return port


def pickup_rules(served: bool, serves: list[dict], port: int | None) -> list[dict]:
    """Let out a TCP connection to this host that connection tracking picks up mid-stream.

    Tracking starts in a network namespace with the first rule that uses it, so on a host
    with no stateful firewall every connection open at the first load (the controller's
    SSH session among them) is unknown to it; the next packet this host sends on it is
    tracked from there as ``new``, with ACK and without SYN, and the default deny would
    drop it. Such a packet leaves when it comes from a port this host serves and goes to a
    client it serves there (``serves``: the served-reply rules), or, when replies are not
    judged by what the host serves, from the SSH port Ansible reaches it on (``port``).
    Once the client answers, the connection is established and judged as any other. A
    connection this host opened itself starts with a SYN, which these rules never match."""
    if served:
        return [
            new_rule("accept", "baseline", "baseline: a served connection picked up mid-stream", family=rule["family"],
                     ct_state=["new"], proto="tcp", sports=rule["ct_orig_dports"], daddr_in=rule.get("ct_orig_saddr_in"), midstream=True)
            for rule in serves if rule["proto"] == "tcp" and rule.get("ct_orig_dports")
        ]
    if port is None:
        return []
    return [new_rule("accept", "baseline", "baseline: the SSH session picked up mid-stream", ct_state=["new"], proto="tcp",
                     sports=[(port, port)], midstream=True)]


def _check_ssh(variables: Mapping, plans: Mapping, serving: list[str], target: str, port: int | None) -> None:
    """Refuse a served-replies policy that would cut the SSH session Ansible reaches the
    host by, unless the host is reached another way or the inventory says it knows."""
    ack = parse_bool(variables.get("egress_serves_without_ssh", False), "egress_serves_without_ssh")
    connection = variables.get("ansible_connection")
    if ack or port is None:
        return
    if any(low <= port <= high for role in serving for low, high in plans[role]["served_tcp"]):
        return
    path, value = (plans[serving[0]]["serves_path"], plans[serving[0]]["served_names"]) if serving else ("egress_replies", "served")
    raise PolicyError(path, value, f"serves nothing on tcp/{port}, but Ansible reaches {target} over SSH there (ansible_connection "
                                   f"{connection or 'ssh, the default'}): the replies of that session would be dropped. Serve ssh "
                                   f"(a serves entry {{service: ssh, from: [the controller's network]}}), or set egress_serves_without_ssh: true "
                                   "if the controller reaches the host another way")


# --------------------------------------------------------------------------- entry point


def parse_target(variables: Mapping) -> dict:
    """Validate a target's own settings: its mode, platform, table and log."""
    mode = variables.get("egress_mode", "enforce")
    if mode not in MODES:
        raise PolicyError("egress_mode", mode, f"is not one of: {', '.join(MODES)}")
    platform = variables.get("egress_platform", "nftables")
    if platform not in PLATFORMS:
        raise PolicyError("egress_platform", platform, f"is not one of: {', '.join(PLATFORMS)}")
    table = variables.get("egress_table", "warden_egress")
    if not isinstance(table, str) or not TABLE_RE.fullmatch(table):
        raise PolicyError("egress_table", table, "is not a valid table name (letters, digits and '_', at most 32)")

    log = dict(DEFAULT_LOG)
    user_log = as_mapping(variables.get("egress_log"), "egress_log")
    check_keys(user_log, LOG_KEYS, "egress_log")
    log.update(user_log)
    log["denied"] = parse_bool(log["denied"], "egress_log.denied")
    if not isinstance(log["rate"], str) or not RATE_RE.fullmatch(log["rate"]):
        raise PolicyError("egress_log.rate", log["rate"], "is not a rate like '10/minute' (per second, minute, hour or day)")
    if not isinstance(log["prefix"], str) or not PREFIX_RE.fullmatch(log["prefix"]):
        raise PolicyError("egress_log.prefix", log["prefix"], "is not a usable log prefix (letters, digits, '_.:-', at most 24)")
    check_target(platform, mode, table, log)  # what the platform's renderer can hold
    alert = as_list(log["alert"], "egress_log.alert", allow_empty=True)
    for i, name in enumerate(alert):
        if name not in ALERT_CLASSES:
            raise PolicyError(f"egress_log.alert[{i}]", name, f"is not an alert class ({', '.join(sorted(ALERT_CLASSES))})")
    log["alert"] = list(alert)
    return {"mode": mode, "platform": platform, "table": table, "log": log}


def begin(variables: Mapping, target: str, addresses, groups, today: datetime.date | None, plans: Plans | None) -> tuple:
    """What every target's compilation starts with: its variables and name checked, its own
    settings, and the site's plans (``plans``, shared by a site compile, or made here from
    the target's view of the site)."""
    variables = as_mapping(variables, "variables")
    if not isinstance(target, str) or not HOST_RE.fullmatch(target):
        raise PolicyError("inventory_hostname", target, "is not a usable host name")
    settings = parse_target(variables)
    if plans is None:
        plans = Plans(Site.of(variables, addresses, groups, today))
    return variables, settings, plans


def dns_extra(site: Site, sets: Mapping, kind: str) -> dict:
    """What a policy whose sets hold DNS names carries for the resolver that fills them
    (``dns``: the ``egress_dns`` settings and the lifetime of an answered address, see
    ``model.dnsnames.lifetime``); nothing for a policy without names. A host's own resolver
    is the first its programs ask, so the site resolvers' caching does not count there."""
    if not any(members.get("names") for members in sets.values()):
        return {}
    settings = dict(site.dns)
    if kind == "host":
        settings["upstream_cache_ttl"] = 0
    return {"dns": {**settings, "lifetime": lifetime(settings)}}


def exception_record(exc: Mapping) -> dict:
    """How an IR lists an exception of the site that applies to its target (an IR lists no
    other)."""
    return {**exc["record"], "applies": True}


def compile_policy(
    variables: Mapping,
    target: str,
    addresses: Callable[[str], object] | Mapping | None = None,
    groups: Mapping | None = None,
    today: datetime.date | None = None,
    plans: Plans | None = None,
) -> dict:
    """Validate the egress_* variables seen by ``target`` and build its Policy IR.

    ``variables`` maps the variable names (egress_trusted_prefixes, egress_upstreams,
    egress_services, egress_roles, egress_exceptions, egress_log, egress_mode,
    egress_platform, egress_role, egress_table, egress_replies, egress_serves_without_ssh, and
    ansible_connection and ansible_port for the SSH check) to their values. ``addresses`` maps an
    inventory host name to its addresses (or is a callable returning them or None);
    ``groups`` maps group names to member host names. ``plans``: the site's, when a site
    compile derives every target from one Site (``addresses``, ``groups`` and the site-wide
    variables are then the Site's).
    """
    variables, settings, site_plans = begin(variables, target, addresses, groups, today, plans)
    site = site_plans.site
    if "host" not in capabilities(settings["platform"])["kinds"]:
        raise PolicyError("egress_role", variables.get("egress_role"),
                          f"is for hosts; egress_platform {settings['platform']} enforces only a site edge (egress_edge)")
    roles = parse_roles(variables.get("egress_role"), site.role_defs, "egress_role", f"host {target}")
    warnings: list[str] = []

    plans = {role: site_plans[role] for role in roles}
    served, serving, replies_warnings = _served_mode(variables, roles, plans)
    port = ssh_port(variables)
    warnings.extend(replies_warnings)
    if served:
        _check_ssh(variables, plans, serving, target, port)
    used_sets: dict[str, dict] = {"trusted": site.trusted_set}
    fixed = (tuple(settings["log"]["alert"]), served)
    if fixed not in site_plans.fixed:
        before, after = _baseline_rules(served)
        alerts = alert_rules(list(fixed[0]))
        site_plans.fixed[fixed] = tuple((part, [rule_key(r) for r in part]) for part in (before, after, alerts))
    (before, before_keys), (after, after_keys), (alerts, alert_keys) = site_plans.fixed[fixed]
    rules, keys = list(before), list(before_keys)
    if served:
        for role in serving:
            rules.extend(plans[role]["serves"])
            keys.extend(plans[role]["serve_keys"])
            used_sets.update(plans[role]["serve_sets"])
        rules.append(UNSERVED)
        keys.append(rule_key(UNSERVED))
    rules.extend(after)
    keys.extend(after_keys)
    pickups = pickup_rules(served, [rule for role in serving for rule in plans[role]["serves"]] if served else [], port)
    rules.extend(pickups)
    keys.extend(map(rule_key, pickups))

    uses: dict[str, set] = {}
    local_ids: dict[str, dict] = {"users": {}, "groups": {}}
    owners = capabilities(settings["platform"])["owners"]
    for role in roles:
        plan = plans[role]
        if plan["owned_icmp"] and owners is not None and "icmp" not in owners:
            raise PolicyError(plan["owned_icmp"][0], role, f"limits an ICMP service to local users or groups, which {settings['platform']} "
                                                           f"matches only for {' and '.join(owners)}")
        rules.extend(plan["rules"])
        keys.extend(plan["keys"])
        used_sets.update(plan["sets"])
        for svc in plan["services"]:
            uses.setdefault(svc, set()).add(f"role {role}")
        for kind, names in plan["local"].items():
            for name, path in names.items():
                local_ids[kind].setdefault(name, {"id": None, "path": path})

    exceptions = []
    for exc in site.exceptions:
        i = exc["index"]
        if target not in exc["hosts"]:
            continue  # a policy lists only the exceptions that name its host
        exceptions.append(exception_record(exc))
        warnings.extend(exception_warnings(exc, site.today, site.exception_warn_days, f" on {target}"))
        if not exc["active"]:
            continue
        plan = site_plans.exception(exc)
        for svc in plan["services"]:
            uses.setdefault(svc, set()).add(f"egress_exceptions[{i}]")
        rules.extend(plan["rules"])
        keys.extend(plan["keys"])
        used_sets.update(plan["sets"])

    rules.extend(alerts)
    keys.extend(alert_keys)
    warnings.extend(wide_service_warnings(site, uses))
    check_names(settings["platform"], used_sets)
    return new_ir("host", target, settings, roles, used_sets, [dict(rule) for rule in dedupe(rules, keys)], exceptions, warnings,
                  replies="served" if served else "any",
                  local_ids={kind: dict(sorted(names.items())) for kind, names in local_ids.items()},
                  **dns_extra(site, used_sets, "host"))
