"""The site compile gives every target exactly the IR the per-host compile gives it, on the
example site and on generated ones, while parsing the site-wide variables once."""

from __future__ import annotations

import copy
import datetime
import os
import sys

import pytest
from sample import ADDRESSES, EDGE, GROUPS, ROLES, SEGMENTS, site

from ansible_collections.warden.egress.plugins.plugin_utils.model import site as site_model
from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import compile_site
from ansible_collections.warden.egress.plugins.plugin_utils.model.site import Site

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "benchmarks"))
from sitegen import generate  # noqa: E402

TODAY = datetime.date(2030, 1, 1)


def per_host(host_vars: dict, addresses, groups) -> dict:
    """Today's way: each target compiled on its own, from its own copy of every variable."""
    roles = {h: v["egress_role"] for h, v in host_vars.items() if "egress_role" in v}
    out = {}
    for host, variables in host_vars.items():
        irs = []
        if "egress_role" in variables:
            irs.append(compile_policy(copy.deepcopy(variables), host, copy.deepcopy(addresses), copy.deepcopy(groups), today=TODAY))
        if "egress_edge" in variables:
            irs.append(compile_edge(copy.deepcopy(variables), host, copy.deepcopy(addresses), copy.deepcopy(groups), roles, today=TODAY))
        if irs:
            out[host] = irs
    return out


def example_site() -> tuple[dict, dict, dict]:
    shared = site(egress_segments=SEGMENTS)
    host_vars = {host: {**shared, "egress_role": role} for host, role in ROLES.items()}
    host_vars["gw1"] = {**shared, "egress_edge": EDGE, "egress_role": "isolated"}
    host_vars["printer"] = dict(shared)  # nothing to compile
    return host_vars, {**ADDRESSES, "gw1": ["198.51.100.1"]}, GROUPS


def generated(hosts: int, seed: int) -> tuple[dict, dict, dict]:
    s = generate(hosts, roles=7, prefixes=300, seed=seed, segments=3, exceptions=5)
    host_vars = {h: {**s["variables"], "egress_role": role} for h, role in s["host_roles"].items()}
    host_vars["gw"] = {**s["variables"], "egress_edge": s["edge"]}
    return host_vars, s["addresses"], s["groups"]


@pytest.mark.parametrize("make", [example_site, lambda: generated(120, 1), lambda: generated(60, 2)], ids=["example", "generated-1", "generated-2"])
def test_site_compile_gives_every_target_its_per_host_ir(make):
    host_vars, addresses, groups = make()
    expected = per_host(host_vars, addresses, groups)
    got = dict(compile_site(host_vars, addresses, groups, today=TODAY))
    assert list(got) == list(expected)
    for host in expected:
        assert got[host] == expected[host], host


def test_equal_copies_of_the_site_variables_are_parsed_once(monkeypatch):
    """Inventories hand each host its own copy: the site compile still parses them once."""
    calls = []
    real = site_model.parse_upstreams
    monkeypatch.setattr(site_model, "parse_upstreams", lambda *a: calls.append(1) or real(*a))
    host_vars, addresses, groups = generated(40, 3)
    host_vars = {h: copy.deepcopy(v) for h, v in host_vars.items()}
    assert len(list(compile_site(host_vars, addresses, groups, today=TODAY))) == 41
    assert len(calls) == 1
    # A host that really differs gets its own parse (and its own IR).
    host_vars["h00001"]["egress_upstreams"] = {**host_vars["h00001"]["egress_upstreams"], "extra": ["203.0.113.77"]}
    calls.clear()
    list(compile_site(host_vars, addresses, groups, today=TODAY))
    assert len(calls) == 2


def test_a_site_is_not_changed_once_made():
    host_vars, addresses, groups = example_site()
    site = Site.of(host_vars["mail1"], addresses, groups, TODAY)
    with pytest.raises(AttributeError, match="a Site is not changed once made"):
        site.upstreams = {}


def test_no_compile_state_outlives_its_compile():
    """A value changed in place between two compiles is seen by the second (nothing is kept
    by a module between compiles, keyed by what the inputs were)."""
    host_vars, addresses, groups = example_site()
    first = dict(compile_site(host_vars, addresses, groups, today=TODAY))
    host_vars["mail1"]["egress_upstreams"]["smtp_relays"].append("203.0.113.26")
    second = dict(compile_site(host_vars, addresses, groups, today=TODAY))
    assert "203.0.113.26/32" not in str(first["mail1"]) and "203.0.113.26/32" in str(second["mail1"])


def test_a_bad_value_names_the_host_and_what_was_compiled():
    host_vars, addresses, groups = example_site()
    host_vars["gw1"] = {**host_vars["gw1"], "egress_edge": {**EDGE, "outside": "eth1\n"}}
    with pytest.raises(PolicyError) as error:
        list(compile_site(host_vars, addresses, groups, today=TODAY))
    assert (error.value.host, error.value.label, error.value.path) == ("gw1", "edge", "egress_edge.outside")
