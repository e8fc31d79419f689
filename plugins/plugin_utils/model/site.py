# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Site: the site-wide part of an inventory, parsed and validated once (private to
the collection).

Pure Python: no Ansible imports. Trusted prefixes, services, upstreams, role definitions
and exceptions are read from the variables every target of a site shares
(``SITE_VARIABLES``); a bad value raises ``PolicyError`` naming the variable path and the
value. A Site is not changed once made: host and edge policies are derived from it
(``compile.host``, ``compile.edge``), and explain, verify, learn and what-if read it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import ROLES
from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import parse_dns_settings
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import (
    HOST_RE,
    NAME_RE,
    as_list,
    check_keys,
    Inventory,
    as_mapping,
    check_name,
    parse_date,
    require_keys,
    parse_services,
    upstream_entry,
    parse_upstreams,
    merge,
    parse_network,
    read_number,
    unknown,
)

# The inputs every target of a site shares: a site compile parses each distinct value once.
SITE_VARIABLES = ("egress_dns", "egress_trusted_prefixes", "egress_upstreams", "egress_services", "egress_roles", "egress_exceptions",
                  "egress_exception_warn_days", "egress_site_hosts")
EXCEPTION_KEYS = {"hosts", "service", "to", "reason", "owner", "expires"}
# Exceptions that expire within this many days are warned about (egress_exception_warn_days).
EXCEPTION_WARN_DAYS = 14
RECORD_KEYS = ("index", "hosts", "service", "reason", "owner", "expires", "active")


def parse_role_defs(user: object) -> dict[str, tuple[dict, str]]:
    """The built-in roles and egress_roles: name -> (definition, the path it is read at)."""
    roles = {name: (spec, f"built-in role {name}") for name, spec in ROLES.items()}
    for name, spec in as_mapping(user, "egress_roles").items():
        path = f"egress_roles.{name}"
        check_name(name, path, "role")
        roles[name] = (spec, path)
    return roles


def parse_roles(raw: object, role_defs: Mapping, path: str, host: str) -> list[str]:
    """A host's (or segment's) egress_role: one known role name or a list of them."""
    if raw is None:
        raise PolicyError(path, None, f"is required for {host} (one of: {', '.join(sorted(role_defs))})")
    roles = as_list(raw, path, what="a role name or a list of role names")
    for i, role in enumerate(roles):
        rpath = path if isinstance(raw, str) else f"{path}[{i}]"
        if not isinstance(role, str) or role not in role_defs:
            raise unknown(rpath, role, "role", role_defs)
    if len(set(roles)) != len(roles):
        raise PolicyError(path, raw, "lists a role twice")
    return roles


def parse_exceptions(raw: object, services: Mapping, upstreams: Mapping, inventory: Inventory, today: datetime.date) -> list[dict]:
    """Validate every exception; each comes back with its services and destinations resolved,
    and ``record``: how a policy lists it."""
    out = []
    for i, exc in enumerate(as_list(raw or [], "egress_exceptions", allow_empty=True)):
        epath = f"egress_exceptions[{i}]"
        exc = as_mapping(exc, epath)
        check_keys(exc, EXCEPTION_KEYS, epath)
        require_keys(exc, ("hosts", "service", "to", "reason", "owner", "expires"), epath,
                     "is required: every exception records hosts, service, to, reason, owner and expires")
        hosts = as_list(exc["hosts"], f"{epath}.hosts")
        for j, host in enumerate(hosts):
            if not isinstance(host, str) or not HOST_RE.fullmatch(host) or not inventory.has_host(host):
                raise PolicyError(f"{epath}.hosts[{j}]", host, "is not a host of the inventory")
        for key in ("reason", "owner"):
            if not isinstance(exc[key], str) or not exc[key].strip():
                raise PolicyError(f"{epath}.{key}", exc[key], "must be a non-empty text")
        expires = parse_date(exc["expires"], f"{epath}.expires")
        svc_names = [check_name(s, f"{epath}.service", "service") for s in as_list(exc["service"], f"{epath}.service")]
        for svc in svc_names:
            if svc not in services:
                raise unknown(f"{epath}.service", svc, "service", services)
        named: list[str] = []
        nets = []
        for j, entry in enumerate(as_list(exc["to"], f"{epath}.to")):
            tpath = f"{epath}.to[{j}]" if not isinstance(exc["to"], str) else f"{epath}.to"
            if isinstance(entry, str) and NAME_RE.fullmatch(entry) and entry in upstreams:
                named.append(entry)
            else:
                nets.extend(upstream_entry(entry, tpath, inventory))
        parsed = {
            "index": i, "path": epath, "hosts": sorted(hosts), "service": svc_names, "named": named,
            "addresses": merge(nets) if nets else None, "reason": exc["reason"], "owner": exc["owner"],
            "expires": expires.isoformat(), "active": expires >= today,
        }
        parsed["record"] = {key: parsed[key] for key in RECORD_KEYS}
        out.append(parsed)
    return out


def check_site_hosts(expected: object, inventory: Inventory) -> None:
    """Refuse an inventory that does not hold the ``egress_site_hosts`` hosts the site says it
    has (unset: not checked). A partial inventory (an AWX or AAP job slice, a dynamic
    inventory that failed half way) would compile gateways, group upstreams and exceptions
    from part of the site; ``--limit`` does not shorten it, the inventory stays whole."""
    if expected is None:
        return
    count = read_number(expected, low=1)
    if count is None:
        raise PolicyError("egress_site_hosts", expected, "is not a whole number of hosts above 0")
    if "all" not in inventory.groups:
        raise PolicyError("egress_site_hosts", expected, "cannot be checked: the inventory's groups were not given (groups=groups)")
    held = len(inventory.groups["all"])
    if held != count:
        raise PolicyError("egress_site_hosts", expected,
                          f"says the site has {count} hosts, but this inventory holds {held}: a partial inventory (an AWX or AAP job slice, "
                          "a dynamic inventory source that failed) would compile gateways, group upstreams and exceptions from part of "
                          "the site, so nothing is compiled. Run on the whole inventory (--limit keeps it whole), or correct egress_site_hosts")


class Site:
    """The site-wide definitions of one inventory, parsed once from ``variables`` (the
    ``SITE_VARIABLES`` a target sees) with the inventory's address and group look-ups.

    ``trusted`` (networks) and ``trusted_set`` (merged), ``services``, ``upstreams`` (name ->
    merged prefixes per family), ``role_defs`` (name -> (definition, path)), ``exceptions``
    (parsed, see ``parse_exceptions``), ``exception_warn_days``, ``dns`` (``egress_dns``), ``inventory``
    and ``today``.
    """

    __slots__ = ("today", "inventory", "trusted", "trusted_set", "services", "upstreams", "role_defs", "exceptions", "exception_warn_days",
                 "dns")

    def __init__(self, variables: Mapping, inventory: Inventory, today: datetime.date) -> None:
        trusted_raw = variables.get("egress_trusted_prefixes")
        if trusted_raw is None:
            raise PolicyError("egress_trusted_prefixes", None, "is required: list the prefixes your hosts' traffic may come from")
        trusted = [parse_network(p, f"egress_trusted_prefixes[{i}]") for i, p in enumerate(as_list(trusted_raw, "egress_trusted_prefixes"))]
        warn_days = variables.get("egress_exception_warn_days", EXCEPTION_WARN_DAYS)
        if isinstance(warn_days, bool) or not isinstance(warn_days, int) or not 0 <= warn_days <= 3650:
            raise PolicyError("egress_exception_warn_days", warn_days, "is not a number of days (0-3650)")
        check_site_hosts(variables.get("egress_site_hosts"), inventory)
        services = parse_services(variables.get("egress_services"))
        upstreams = parse_upstreams(variables.get("egress_upstreams"), inventory)
        values = {
            "today": today,
            "inventory": inventory,
            "trusted": trusted,
            "trusted_set": merge(trusted),
            "services": services,
            "upstreams": upstreams,
            "role_defs": parse_role_defs(variables.get("egress_roles")),
            "exceptions": parse_exceptions(variables.get("egress_exceptions"), services, upstreams, inventory, today),
            "exception_warn_days": warn_days,
            "dns": parse_dns_settings(variables.get("egress_dns")),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Site is not changed once made (tried to set {name})")

    @classmethod
    def of(cls, variables: Mapping, addresses: Callable[[str], object] | Mapping | None, groups: Mapping | None,
           today: datetime.date | None = None) -> Site:
        """The Site of ``variables``, with an address look-up (a mapping or a callable) and
        the inventory's groups."""
        return cls(variables, Inventory(addresses, groups), today or datetime.date.today())
