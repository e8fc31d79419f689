# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole site compiled once: every host's and every gateway's Policy IR from one pass
over the inventory (private to the collection).

Each target is compiled by the same ``compile_policy`` and ``compile_edge`` a filter calls
for one host, so a site compile gives exactly the IRs the filters give. What makes it cheap
is that every target is handed the same site-wide objects: the compiler parses and merges
them once (``compiler._shared_site``) and builds each role's rules once (``role_plan``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.compiler import SHARED_VARIABLES, compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.errors import PolicyError


class Canonical:
    """Hands out one object for equal values of a site-wide variable, so that targets whose
    inventories give equal (but distinct) copies still share the site's parsed form."""

    def __init__(self) -> None:
        self._seen: dict[str, list] = {}

    def __call__(self, name: str, value: object) -> object:
        for known in self._seen.setdefault(name, []):
            if known is value or known == value:
                return known
        self._seen[name].append(value)
        return value


def targets(host_vars: Mapping[str, Mapping]) -> list[str]:
    """The hosts that have something to compile: an egress_role, an egress_edge or both."""
    return [h for h, v in host_vars.items() if v.get("egress_role") is not None or v.get("egress_edge") is not None]


def compile_site(
    host_vars: Mapping[str, Mapping],
    addresses: Callable[[str], object] | Mapping,
    groups: Mapping,
    today: datetime.date | None = None,
) -> Iterator[tuple[str, list[dict]]]:
    """Yield ``(host, [IR, ...])`` for every host with an egress_role (its host policy) or an
    egress_edge (its edge policy, after the host policy when it has both), in inventory
    order. ``host_vars`` maps each inventory host to its egress_* variables. A bad value
    raises ``PolicyError`` with ``.host`` set to the host it was found on and ``.label`` to
    what was being compiled there (``host`` or ``edge``), as the filters name them."""
    today = today or datetime.date.today()
    canonical = Canonical()
    roles = {h: v["egress_role"] for h, v in host_vars.items() if v.get("egress_role") is not None}
    for host in targets(host_vars):
        variables = dict(host_vars[host])
        for name in SHARED_VARIABLES:
            if name in variables:
                variables[name] = canonical(name, variables[name])
        irs = []
        label = "host"
        try:
            if variables.get("egress_role") is not None:
                irs.append(compile_policy(variables, host, addresses, groups, today=today))
            label = "edge"
            if variables.get("egress_edge") is not None:
                irs.append(compile_edge(variables, host, addresses, groups, roles, today=today))
        except PolicyError as exc:
            exc.host, exc.label = host, label
            raise
        yield host, irs
