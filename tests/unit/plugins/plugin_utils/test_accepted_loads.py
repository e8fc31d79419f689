"""Accepted => loads: a name the compiler accepts for a platform loads in that platform's real
tool. Generated names go into every place a name can stand (upstream, role, service,
segment, group, host, table, log prefix, interfaces, a local user or group of an allow
entry), are compiled for every platform in enforce and in audit mode (whose log lines carry
a longer prefix, and whose rules remember flows), and
what was accepted is rendered and loaded: ``nft -c`` and ``ipset restore`` +
``iptables-restore --test`` in a scratch network namespace, the strict pf grammar, and the
vendor modules' rendered -> parsed round trip for the device ACLs. A refusal must be the
compiler's own error (PolicyError), never a crash of a renderer or a tool."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample import ADDRESSES, EDGE, GROUPS, ROLES, site

from ansible_collections.warden.egress.plugins.module_utils._apply_iptables import check_rules, check_sets
import pf_grammar
from ansible_collections.warden.egress.plugins.plugin_utils.render import iptables as render_iptables
from ansible_collections.warden.egress.plugins.plugin_utils.render import nftables as render_nftables
from ansible_collections.warden.egress.plugins.plugin_utils.render import pf as render_pf
from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import MODES, compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import DEVICE_PLATFORMS
from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.compile.local_ids import with_local_ids
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import NAMES, bindings
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.acl_check import disagreements, sample_flows
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import device_config, read_parsed
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import ios_object_group_lines, ios_render

HOST_PLATFORMS = ("nftables", "iptables", "pf")
# Lengths at and around every limit a backend has (IFNAMSIZ 16, ipset 31, pf tables 32,
# iptables chains 29 and log prefixes 29, nftables names, device interface names 64).
EDGE_LENGTHS = [0, 1, 2, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 63, 64, 65]
CHARS = "abcxyzAZ0189_-.@/:~+ \t\"'\\$*{}<>!#\n"


@st.composite
def names(draw) -> str:
    """Name-like text at and around each backend's limits: mostly valid characters, often one
    character a backend treats specially, sometimes a trailing newline or space."""
    length = draw(st.one_of(st.sampled_from(EDGE_LENGTHS), st.integers(0, 70)))
    text = draw(st.text(alphabet=st.sampled_from("abcxyzAZ0189_"), min_size=length, max_size=length))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(CHARS)) + text[at + 1:]
    return text + draw(st.sampled_from(["", "", "", "", "\n", " ", "-", "\r"]))


def _host_variables(slot: str, name: str) -> tuple[dict, str, dict, dict]:
    """The example site with ``name`` in ``slot``: (variables, target, addresses, groups)."""
    addresses, groups = dict(ADDRESSES), dict(GROUPS)
    target = "mail1"
    variables = site(egress_role="mail_server")
    if slot == "upstream":
        variables["egress_upstreams"] = {**variables["egress_upstreams"], name: ["203.0.113.9"]}
        variables["egress_roles"] = {"r": {"allow": [{"service": "https", "to": name}]}}
        variables["egress_role"] = "r"
    elif slot == "role":
        # A role that serves from a prefix: its set is named after the role.
        variables["egress_roles"] = {name: {"allow": [{"service": "https", "to": "smtp_relays"}],
                                            "serves": [{"service": "ssh", "from": ["198.51.100.0/24", "2001:db8:10::/64"]}]}}
        variables["egress_role"] = name
    elif slot in ("user", "local_group"):
        key = "users" if slot == "user" else "groups"
        variables["egress_roles"] = {"r": {"allow": [{"service": "https", "to": "smtp_relays", key: [name]},
                                                     {"service": "smtp", "to": "any", key: [name, 4242]}]}}
        variables["egress_role"] = "r"
    elif slot == "service":
        variables["egress_services"] = {name: {"proto": "tcp", "ports": [444]}}
        variables["egress_roles"] = {"r": {"allow": [{"service": name, "to": "smtp_relays"}]}}
        variables["egress_role"] = "r"
    elif slot == "group":
        groups[name] = ["dns1"]
        variables["egress_upstreams"] = {**variables["egress_upstreams"], "internal_resolvers": f"group:{name}"}
    elif slot == "host":
        addresses[name] = ["198.51.100.30"]
        target = name
        variables["egress_exceptions"] = [{**variables["egress_exceptions"][0], "hosts": [name]}]
    elif slot == "table":
        variables["egress_table"] = name
    elif slot == "prefix":
        variables["egress_log"] = {"prefix": name}
    return variables, target, addresses, groups


def _edge_variables(slot: str, name: str) -> dict:
    edge = {**EDGE, "inside": [dict(EDGE["inside"][0])]}
    segments = {"workstations": {"prefixes": ["198.51.100.64/28", "2001:db8:10::40/124"], "role": "client"}}
    if slot == "inside":
        edge["inside"][0]["interface"] = name
    elif slot == "outside":
        edge["outside"] = name
    elif slot == "segment":
        segments = {name: segments["workstations"]}
    return {"egress_edge": edge, "egress_segments": segments}


def _scratch(script: str, files: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``script`` in a new, empty network namespace with ``files`` in its directory."""
    with tempfile.TemporaryDirectory() as tmp:
        for file_name, text in files.items():
            with open(os.path.join(tmp, file_name), "w", encoding="utf-8") as handle:
                handle.write(text)
        return subprocess.run(["unshare", "--net", "sh", "-ec", script], cwd=tmp, capture_output=True, text=True, check=False)


def load(ir: dict, platform: str) -> None:
    """Render ``ir`` for ``platform`` and load it in the real tool (or the pf grammar). Local
    user and group names are first given numbers, as the roles do on the target; nft is also
    given the names, which it must read and fail to find (they exist on no machine here)."""
    named = [(kind, name) for kind, names in ir.get("local_ids", {}).items() for name in names]
    if named and platform == "nftables":
        result = _scratch("nft -c -f rules.nft", {"rules.nft": render_nftables.render(ir)})
        problems = {line for line in result.stderr.splitlines() if "Error:" in line}
        assert problems and all(re.search(r"Error: (User|Group) does not exist$", line) for line in problems), result.stderr
    if named:
        numbers = {kind: {name: 1000 + i for i, (k, name) in enumerate(named) if k == kind} for kind in ("users", "groups")}
        ir = with_local_ids([ir], numbers, ir["target"])[0]
    if platform == "nftables":
        result = _scratch("nft -c -f rules.nft", {"rules.nft": render_nftables.render(ir)})
    elif platform == "iptables":
        files = render_iptables.render(ir)
        problem, sets = check_sets(files["ipset"])
        assert problem is None, f"iptables_apply would refuse the renderer's ipset file: {problem}"
        for family in ("ipv4", "ipv6"):
            problem = check_rules(files[family], ir["table"], family, sets)
            assert problem is None, f"iptables_apply would refuse the renderer's {family} file: {problem}"
        result = _scratch("ipset restore -f sets; iptables-restore --test v4; ip6tables-restore --test v6",
                          {"sets": files["ipset"], "v4": files["ipv4"], "v6": files["ipv6"]})
    else:
        pf_grammar.parse(render_pf.render(ir))
        return
    assert result.returncode == 0, f"{platform} refused what the compiler accepted:\n{result.stderr}"


def accepted_loads(compile_for, platforms: tuple = HOST_PLATFORMS + DEVICE_PLATFORMS) -> list[str]:
    """Compile for each platform; load what was accepted. Returns the platforms that accepted."""
    accepted = []
    for platform in platforms:
        try:
            ir = compile_for(platform)
        except PolicyError:
            continue
        accepted.append(platform)
        if platform in HOST_PLATFORMS:
            load(ir, platform)
        else:
            device_config(ir, platform)  # the vendor round trip is test_device_acls_the_compiler_accepts_round_trip
    return accepted


PROPERTY = settings(max_examples=int(os.environ.get("WARDEN_PROPERTY_EXAMPLES", "40")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.mark.parametrize("slot", ["upstream", "role", "service", "group", "host", "table", "prefix", "user", "local_group"])
@PROPERTY
@given(name=names(), mode=st.sampled_from(MODES))
def test_a_host_policy_the_compiler_accepts_loads(slot, name, mode):
    variables, target, addresses, groups = _host_variables(slot, name)
    variables["egress_mode"] = mode
    accepted_loads(lambda platform: compile_policy({**variables, "egress_platform": platform}, target, addresses, groups), HOST_PLATFORMS)


@pytest.mark.parametrize("slot", ["inside", "outside", "segment", "upstream", "role", "table", "prefix", "user"])
@PROPERTY
@given(name=names(), mode=st.sampled_from(MODES))
def test_an_edge_policy_the_compiler_accepts_loads(slot, name, mode):
    if slot in ("inside", "outside", "segment"):
        variables, roles = {**site(), **_edge_variables(slot, name)}, dict(ROLES)
    else:
        host_vars, dummy, addresses, groups = _host_variables(slot, name)
        variables = {**host_vars, **_edge_variables("", "")}
        roles = {**ROLES, "mail1": host_vars["egress_role"]}
    variables.pop("egress_role", None)
    variables["egress_mode"] = mode
    accepted_loads(lambda platform: compile_edge({**variables, "egress_platform": platform}, "gw1", ADDRESSES, GROUPS, roles))


@pytest.mark.parametrize("name", ["eth2\n", "eth2 ", "x\ny", "\n"])
def test_a_trailing_newline_is_refused_everywhere(name):
    """Python's '$' matches before a final newline: every name check must be a full match."""
    for slot in ("upstream", "role", "service", "group", "host", "table", "prefix", "user", "local_group"):
        variables, target, addresses, groups = _host_variables(slot, name)
        for platform in HOST_PLATFORMS:
            with pytest.raises(PolicyError):
                compile_policy({**variables, "egress_platform": platform}, target, addresses, groups)
    for slot in ("inside", "outside", "segment"):
        for platform in HOST_PLATFORMS + DEVICE_PLATFORMS:
            with pytest.raises(PolicyError):
                compile_edge({**site(), **_edge_variables(slot, name), "egress_platform": platform}, "gw1", ADDRESSES, GROUPS, ROLES)


@settings(max_examples=int(os.environ.get("WARDEN_PROPERTY_ACL_EXAMPLES", "2")), deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(st.tuples(st.sampled_from(["inside", "outside", "role", "upstream"]), names()), min_size=12, max_size=12))
def test_device_acls_the_compiler_accepts_round_trip(batch):
    """Each name the compiler accepts for a router goes through the vendor module: the ACLs
    rendered, their device form parsed back and held against the oracle, and the binding
    rendered on exactly that interface. One module run per platform holds the whole batch."""
    from test_render_acl import device_text, roundtrip

    for platform in DEVICE_PLATFORMS:
        irs = {}
        for i, (slot, name) in enumerate(batch):
            if slot in ("inside", "outside"):
                variables = {**site(), **_edge_variables(slot, name)}
                roles = dict(ROLES)
            else:
                host_vars = _host_variables(slot, name)[0]
                variables, roles = {**host_vars, **_edge_variables("", "")}, {**ROLES, "mail1": host_vars["egress_role"]}
            variables.pop("egress_role", None)
            try:
                irs[f"case{i}"] = compile_edge({**variables, "egress_platform": platform}, "gw1", ADDRESSES, GROUPS, roles)
            except PolicyError:
                continue
        if not irs:
            continue
        first = roundtrip(platform, render={k: device_config(ir, platform) for k, ir in irs.items()}, bind={k: bindings(ir) for k, ir in irs.items()})
        parsed = roundtrip(platform, parse={k: device_text(platform, first["rendered"][k]) for k in irs})["parsed"]
        for key, ir in irs.items():
            groups = ios_object_group_lines(ios_render(ir)["object_groups"]) if platform == "ios" else None
            acls = read_parsed(parsed[key], platform, groups)
            assert set(acls) == {("ipv4", NAMES["ipv4"]), ("ipv6", NAMES["ipv6"])}, (platform, key)
            assert not disagreements(ir, acls, sample_flows(ir, 300)), (platform, key)
            bound = first["bound"][key] if isinstance(first["bound"][key], str) else "\n".join(first["bound"][key])
            outside = ir["edge"]["outside"][0]
            assert (f"<nc:name>{outside}</nc:name>" if platform == "junos" else f"interface {outside}\n") in bound + "\n", (platform, outside, bound)


def test_a_host_with_500_roles_loads_on_every_backend():
    """Generated comments fit every tool's line limit (ipset reads lines of at most 1024
    characters; the header once listed every role)."""
    roles = {f"role_number_{i:03d}": {"allow": [{"service": "https", "to": "smtp_relays"}]} for i in range(500)}
    variables = site(egress_roles=roles, egress_role=sorted(roles))
    for platform in HOST_PLATFORMS:
        ir = compile_policy({**variables, "egress_platform": platform}, "mail1", ADDRESSES, GROUPS)
        load(ir, platform)
        text = {"nftables": render_nftables.render, "pf": render_pf.render}.get(platform, lambda i: render_iptables.render(i)["ipset"])(ir)
        assert max(len(line) for line in text.splitlines()) < 1024
        assert "and 4" in text.splitlines()[0] and "more" in text.splitlines()[0]


@st.composite
def rates(draw) -> str:
    count = draw(st.one_of(st.sampled_from([1, 2, 4, 5, 6, 9999, 10000, 10001, 86400, 999999]), st.integers(1, 999999)))
    return f"{count}/{draw(st.sampled_from(['second', 'minute', 'hour', 'day']))}"


@PROPERTY
@given(log_rate=rates(), limit_rate=rates(), burst=st.one_of(st.sampled_from([1, 5, 200, 10000, 100000]), st.integers(1, 100000)),
       mode=st.sampled_from(MODES))
def test_rates_the_compiler_accepts_load(log_rate, limit_rate, burst, mode):
    """Log rates and the per-source connection limit: what is accepted loads (iptables' limit
    and hashlimit have narrower ranges than nftables)."""
    variables = {**site(egress_log={"rate": log_rate}, egress_mode=mode), **_edge_variables("", "")}
    variables["egress_edge"] = {**variables["egress_edge"], "conn_limit": {"rate": limit_rate, "burst": burst}}
    accepted_loads(lambda platform: compile_edge({**variables, "egress_platform": platform}, "gw1", ADDRESSES, GROUPS, ROLES))
    host_variables = {**site(egress_log={"rate": log_rate}, egress_mode=mode), "egress_role": "mail_server"}
    accepted_loads(lambda platform: compile_policy({**host_variables, "egress_platform": platform}, "mail1", ADDRESSES, GROUPS), HOST_PLATFORMS)


# Names the compiler takes (NAME_RE), mostly at or near its longest (32 characters).
NAME = st.builds(lambda first, rest: first + rest, st.sampled_from("abz"),
                 st.one_of(st.sampled_from([31, 30, 24]), st.integers(0, 31)).flatmap(
                     lambda n: st.text(alphabet="abcxyz0189_", min_size=n, max_size=n)))


@PROPERTY
@given(role=NAME, service=NAME, upstream=NAME, mode=st.sampled_from(MODES))
def test_long_names_in_rule_comments_load_everywhere(role, service, upstream, mode):
    """A rule's comment carries the role, the service, the upstream and the clients a service
    is served to: names of the longest length the compiler takes, served from three
    prefixes, must load on every host backend (comments are cut there)."""
    variables = site(egress_role=role, egress_mode=mode)
    variables["egress_services"] = {service: {"proto": "tcp", "ports": [444]}}
    variables["egress_upstreams"] = {**variables["egress_upstreams"], upstream: ["203.0.113.9", "2001:db8:5100::9"]}
    variables["egress_roles"] = {role: {
        "allow": [{"service": service, "to": upstream}],
        "serves": [{"service": [service, "ssh"],
                    "from": ["198.51.100.128/25", "203.0.113.0/25", "2001:db8:10::/64"]}]}}
    accepted = accepted_loads(lambda platform: compile_policy({**variables, "egress_platform": platform}, "mail1", ADDRESSES, GROUPS), HOST_PLATFORMS)
    assert accepted == list(HOST_PLATFORMS)
