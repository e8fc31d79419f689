# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole site compiled once: every host's and every gateway's Policy IR from one pass
over the inventory (private to the collection).

Each target is compiled by the same ``compile_policy`` and ``compile_edge`` a filter calls
for one host, so a site compile gives exactly the IRs the filters give. What makes it cheap
is that targets seeing the same site-wide variables share one ``Site``, parsed once, and
one ``Plans``, which makes each role's rules once; both belong to this compile.
"""

from __future__ import annotations

import datetime
import ipaddress
import time
from collections.abc import Callable, Iterator, Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge, parse_segments
from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.compile.roles import Plans
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import NEVER_LEAVE
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import as_list, Inventory, parse_network
from ansible_collections.warden.egress.plugins.plugin_utils.model.site import SITE_VARIABLES, Site
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import PrefixIndex, Spans


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


class SiteCompile:
    """One compile of an inventory. ``host_vars`` maps each inventory host to its egress_*
    variables; ``addresses`` and ``groups`` are the inventory's look-ups. Targets that see
    equal site-wide variables (``SITE_VARIABLES``) share one Site and its Plans: normally
    the whole inventory has one. ``run()`` yields each target's policies; ``site_of(host)``
    is the Site a target was compiled from."""

    def __init__(self, host_vars: Mapping[str, Mapping], addresses: Callable[[str], object] | Mapping, groups: Mapping,
                 today: datetime.date | None = None) -> None:
        self.host_vars, self.addresses, self.groups = host_vars, addresses, groups
        self.today = today or datetime.date.today()
        self.inventory = Inventory(addresses, groups)
        self._canonical = Canonical()
        self._plans: dict[tuple, Plans] = {}
        self._target_plans: dict[str, Plans] = {}

    def _variables(self, host: str) -> tuple[dict, tuple]:
        variables = dict(self.host_vars[host])
        for name in SITE_VARIABLES:
            if name in variables:
                variables[name] = self._canonical(name, variables[name])
        # Equal values are one object (Canonical), which this compile holds: its id names it.
        return variables, tuple(id(variables.get(name)) for name in SITE_VARIABLES)

    def plans_of(self, host: str) -> Plans:
        """The Plans (and so the Site) ``host`` is compiled from."""
        if host not in self._target_plans:
            variables, key = self._variables(host)
            if key not in self._plans:
                self._plans[key] = Plans(Site(variables, self.inventory, self.today))
            self._target_plans[host] = self._plans[key]
        return self._target_plans[host]

    def site_of(self, host: str) -> Site:
        return self.plans_of(host).site

    def run(self) -> Iterator[tuple[str, list[dict]]]:
        """Yield ``(host, [IR, ...])`` for every target (see ``compile_site``)."""
        roles = {h: v["egress_role"] for h, v in self.host_vars.items() if v.get("egress_role") is not None}
        for host in targets(self.host_vars):
            variables, dummy = self._variables(host)
            irs = []
            label = "host"
            try:
                plans = self.plans_of(host)
                if variables.get("egress_role") is not None:
                    irs.append(compile_policy(variables, host, today=self.today, plans=plans))
                label = "edge"
                if variables.get("egress_edge") is not None:
                    irs.append(compile_edge(variables, host, host_roles=roles, today=self.today, plans=plans))
            except PolicyError as exc:
                exc.host, exc.label = host, label
                raise
            yield host, irs


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
    yield from SiteCompile(host_vars, addresses, groups, today).run()


def _address_list(addresses: Callable | Mapping, host: str) -> list[str]:
    raw = addresses(host) if callable(addresses) else addresses.get(host)
    if raw is None:
        return []
    return [str(raw)] if isinstance(raw, str) else [str(a) for a in raw]


def _roles(raw: object) -> list[str]:
    if raw is None:
        return []
    return [raw] if isinstance(raw, str) else [str(r) for r in raw]


class SitePolicies:
    """An inventory compiled once, for the stages that read a whole site (explain, verify,
    learn, what-if): ``site`` (the Site its first target was compiled from), ``policies``
    (host -> {kind: IR}), and the index sources are looked up in: ``host_roles``,
    ``hosts_at`` (address -> hosts), ``by_address`` (address -> first host), ``segments`` and
    ``segment_index`` (read by the edge compile's own parser), and ``never_leave``."""

    def __init__(self, host_vars: Mapping[str, Mapping], addresses: Callable | Mapping, groups: Mapping,
                 today: datetime.date | None = None) -> None:
        self.today = today or datetime.date.today()
        self.host_vars, self.addresses, self.groups = host_vars, addresses, groups
        compiled = SiteCompile(host_vars, addresses, groups, today=self.today)
        self.policies: dict[str, dict[str, dict]] = {host: {ir["kind"]: ir for ir in irs} for host, irs in compiled.run()}
        names = targets(host_vars)
        self.site = compiled.site_of(names[0]) if names else Site({}, compiled.inventory, self.today)
        self.host_roles = {h: _roles(v.get("egress_role")) for h, v in host_vars.items() if v.get("egress_role") is not None}
        # every host that has an address: one look-up per line, however many hosts
        self.hosts_at: dict = {}
        for host in host_vars:
            for addr in _address_list(addresses, host):
                try:
                    self.hosts_at.setdefault(ipaddress.ip_address(addr.split("/", maxsplit=1)[0]), []).append(host)
                except ValueError:
                    continue
        self.by_address = {addr: hosts[0] for addr, hosts in self.hosts_at.items()}
        self.segments: dict[str, dict] = {}
        self.segment_index = PrefixIndex()
        never = [ipaddress.ip_network(p) for family in NEVER_LEAVE.values() for p in family]
        # Segments and never-leave prefixes read by the edge compile's own parsers (the same
        # checks, errors naming the variable), once per distinct value.
        trusted, read = Spans(self.site.trusted), set()
        for variables in host_vars.values():
            raw = variables.get("egress_segments")
            if raw and repr(raw) not in read:
                read.add(repr(raw))
                for segment in parse_segments(raw, self.site.role_defs, trusted):
                    if segment["name"] not in self.segments:
                        self.segments[segment["name"]] = {"prefixes": segment["prefixes"], "roles": segment["roles"]}
                        for net in segment["prefixes"]:
                            self.segment_index.add(net, segment["name"])
            edge = variables.get("egress_edge") or {}
            if isinstance(edge, Mapping) and edge.get("never_leave"):
                never.extend(parse_network(v, f"egress_edge.never_leave[{i}]")
                             for i, v in enumerate(as_list(edge["never_leave"], "egress_edge.never_leave")))
        self.never_leave = never

    def source(self, flow: Mapping) -> dict:
        """Who sent a flow: nobody the site knows when the line could not be attributed (its
        ``attribution`` finding); the reporting host for its own policy's lines (no input
        interface), else the inventory host with that address, else the segment that holds it."""
        src = ipaddress.ip_address(flow["src"])
        if flow.get("attribution"):
            return {"kind": "unattributed", "name": str(src), "roles": []}
        if flow["iif"] is None and flow["reporter"] in self.host_roles:
            host = flow["reporter"]
            return {"kind": "host", "name": host, "roles": self.host_roles[host]}
        owners = self.hosts_at.get(src, [])
        if len(owners) == 1 and owners[0] in self.host_roles:
            return {"kind": "host", "name": owners[0], "roles": self.host_roles[owners[0]]}
        found = self.segment_index.lookup(src)
        if found:
            name = max(found, key=lambda item: (item[1].prefixlen, item[0]))[0]
            return {"kind": "segment", "name": name, "roles": self.segments[name]["roles"]}
        return {"kind": "unknown", "name": str(src), "roles": []}
