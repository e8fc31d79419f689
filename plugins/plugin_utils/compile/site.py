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
import time
from collections.abc import Callable, Iterator, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import SHARED_VARIABLES, compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError


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


# A site of more targets than this says how far its compile is (smaller ones take a second or two).
PROGRESS_MIN_TARGETS = 1000
# A progress line every this many targets, or when this many seconds have passed since the last.
PROGRESS_EVERY = 1000
PROGRESS_SECONDS = 5.0


class Progress:
    """How far a long compile is, as a count: ``step(done)`` after each target calls ``say``
    with a line every ``every`` targets, or when ``seconds`` have passed since the last line,
    and at the end; nothing at all for a site of ``minimum`` targets or fewer."""

    def __init__(self, total: int, say: Callable[[str], object], clock: Callable[[], float] = time.monotonic,
                 minimum: int = PROGRESS_MIN_TARGETS, every: int = PROGRESS_EVERY, seconds: float = PROGRESS_SECONDS) -> None:
        self.total, self.say, self.clock = total, say, clock
        self.active = total > minimum
        self.every, self.seconds = every, seconds
        self.started = self.last = clock()

    def begin(self, reading: float) -> None:
        """Say how many targets there are to compile, and how long reading their variables took."""
        if self.active:
            self.say(f"warden.egress: compiling {self.total} hosts (their variables read in {reading:.0f} s)")

    def step(self, done: int) -> None:
        if not self.active:
            return
        now = self.clock()
        if done >= self.total or done % self.every == 0 or now - self.last >= self.seconds:
            self.last = now
            self.say(f"warden.egress: compiled {done}/{self.total} hosts ({now - self.started:.0f} s)")


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
