"""Every boolean variable takes what Ansible takes as a boolean (true/false, yes/no, on/off,
1/0, and those as text from -e, in any case), through the entry points that read it; a value
Ansible would refuse is refused naming the variable and the value."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE, boolean
from hypothesis import given
from hypothesis import strategies as st
from sample import ADDRESSES, EDGE, GROUPS, ROLES, SEGMENTS, compile_for, edge_ir, site

from ansible_collections.warden.egress.plugins.action.network_acl_step import run_step
from ansible_collections.warden.egress.plugins.filter.to_device_acls import to_device_acls
from ansible_collections.warden.egress.plugins.plugin_utils.model import errors
from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import parse_dns_settings
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.verify import expect_flows

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

SPELLINGS = [
    (True, True), ("true", True), ("True", True), ("TRUE", True), ("yes", True), ("Yes", True), ("on", True), ("ON", True),
    ("1", True), (1, True), ("y", True), ("t", True), (" true ", True),
    (False, False), ("false", False), ("False", False), ("no", False), ("NO", False), ("off", False), ("Off", False),
    ("0", False), (0, False), ("n", False), ("f", False), ("false\n", False),
]
BAD = ["maybe", 2, -1, "", "2", "nope", None, [], {}, ["true"]]
ids = [repr(spelling[0]) for spelling in SPELLINGS]

# A role that serves mail but not SSH: compiled for a host reached over SSH, it is refused
# unless egress_serves_without_ssh says the controller knows.
NO_SSH = {"web_mail": {"serves": [{"service": ["http", "smtp"]}], "allow": [{"service": "dns", "to": "internal_resolvers"}]}}


def no_ssh(value):
    return compile_policy(site(egress_roles=NO_SSH, egress_role="web_mail", egress_serves_without_ssh=value), "mail1", ADDRESSES, GROUPS)


def edge(**keys):
    return compile_edge(site(egress_edge={**EDGE, **keys}, egress_segments=SEGMENTS), "gw1", ADDRESSES, GROUPS, dict(ROLES))


def flow(value):
    return expect_flows(compile_for("mail1"), [{"dst": "203.0.113.80", "port": 80, "inconclusive_ok": value}], ADDRESSES["mail1"])


def test_the_spellings_are_ansibles():
    assert errors.BOOLEANS_TRUE == BOOLEANS_TRUE
    assert errors.BOOLEANS_FALSE == BOOLEANS_FALSE


@given(st.one_of(
    st.sampled_from(sorted(map(str, BOOLEANS_TRUE | BOOLEANS_FALSE))).flatmap(
        lambda word: st.tuples(st.sampled_from(["", " ", "\t"]), st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
        .map(lambda pad_case: pad_case[0] + "".join(c.upper() if up else c for c, up in zip(word, pad_case[1])) + pad_case[0])),
    st.text(max_size=6), st.integers(-3, 3), st.booleans(), st.none(), st.floats(allow_nan=False)))
def test_parse_bool_agrees_with_ansible(value):
    try:
        expected = boolean(value, strict=True)
    except TypeError:
        with pytest.raises(PolicyError) as error:
            errors.parse_bool(value, "some_variable")
        assert str(error.value) == f"some_variable: {value!r} must be true or false (or yes/no, on/off, 1/0)"
    else:
        assert errors.parse_bool(value, "some_variable") is expected


@pytest.mark.parametrize(("value", "expected"), SPELLINGS, ids=ids)
def test_egress_serves_without_ssh(value, expected):
    if expected:
        assert no_ssh(value)["replies"] == "served"
    else:
        with pytest.raises(PolicyError, match=r"serves nothing on tcp/22"):
            no_ssh(value)


@pytest.mark.parametrize(("value", "expected"), SPELLINGS, ids=ids)
def test_egress_log_denied(value, expected):
    assert compile_for("mail1", egress_log={"denied": value})["log"]["denied"] is expected


@pytest.mark.parametrize(("value", "expected"), SPELLINGS, ids=ids)
def test_egress_edge_routes_and_conn_limit(value, expected):
    ir = edge(routes=value, conn_limit=value)
    assert ir["edge"]["routes"] is expected
    assert (ir["edge"]["conn_limit"] is not None) is expected
    assert edge(conn_limit={"burst": 20})["edge"]["conn_limit"]["burst"] == 20


@pytest.mark.parametrize(("value", "expected"), SPELLINGS, ids=ids)
def test_egress_verify_flows_inconclusive_ok(value, expected):
    assert flow(value)[0]["inconclusive_ok"] is expected


@pytest.mark.parametrize(("value", "expected"), SPELLINGS, ids=ids)
def test_device_acl_filters(value, expected):
    ir = edge_ir(egress_platform="ios")
    grouped = to_device_acls(ir, bind=True, object_groups=value)
    assert bool(grouped["object_groups"]) is expected
    if expected:  # bind, read the same way, is false here: IOS object groups need it
        with pytest.raises(AnsibleFilterError, match="network_acl_object_groups: true needs network_acl_bind: true"):
            to_device_acls(ir, bind="no", object_groups=value)
    else:
        assert to_device_acls(ir, bind=value, object_groups=value)["object_groups"] == []
    rendered = ["ip access-list WARDEN-EGRESS-V4", "10 deny ip any any"]
    text = run_step({"step": "device_form", "rendered": rendered, "platform": "eos", "load": value, "session": "s1"})["form"]
    assert text == (["configure session s1", *rendered, "end", "configure session s1 commit"] if expected else "\n".join(rendered))


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_a_value_ansible_refuses_is_refused_naming_the_variable(value):
    message = f"{value!r} must be true or false (or yes/no, on/off, 1/0)"
    with pytest.raises(PolicyError) as error:
        no_ssh(value)
    assert str(error.value) == f"egress_serves_without_ssh: {message}"
    with pytest.raises(PolicyError) as error:
        compile_for("mail1", egress_log={"denied": value})
    assert str(error.value) == f"egress_log.denied: {message}"
    with pytest.raises(PolicyError) as error:
        edge(routes=value)
    assert str(error.value) == f"egress_edge.routes: {message}"
    with pytest.raises(PolicyError) as error:
        flow(value)
    assert str(error.value) == f"egress_verify_flows[0].inconclusive_ok: {message}"
    with pytest.raises(AnsibleFilterError) as error:
        to_device_acls(edge_ir(egress_platform="ios"), object_groups=value)
    assert str(error.value) == f"warden.egress.to_device_acls: object_groups (network_acl_object_groups): {message}"
    with pytest.raises(AnsibleFilterError) as error:
        to_device_acls(edge_ir(egress_platform="ios"), bind=value)
    assert str(error.value) == f"warden.egress.to_device_acls: bind (network_acl_bind): {message}"
    if value is not None and not isinstance(value, dict):
        with pytest.raises(PolicyError) as error:
            edge(conn_limit=value)
        assert str(error.value) == f"egress_edge.conn_limit: {value!r} must be true or false (or yes/no, on/off, 1/0), or a mapping with rate and burst"


@pytest.mark.parametrize(("extra", "ok"), [("true", True), ("yes", True), ("on", True), ("1", True), ("false", False), ("maybe", False)])
def test_extra_var_from_the_command_line(tmp_path, extra, ok):
    """-e egress_serves_without_ssh=VALUE reaches the compiler as text, as a user gives it."""
    inventory = {"all": {
        "vars": site(egress_roles=NO_SSH),
        "hosts": {
            "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "mail1": {"egress_role": "web_mail", "egress_addresses": ADDRESSES["mail1"]},
            **{host: {"egress_addresses": addresses} for host, addresses in ADDRESSES.items() if host != "mail1"},
        },
        "children": {group: {"hosts": {h: {} for h in members}} for group, members in GROUPS.items() if members},
    }}
    plays = [{"name": "Compile", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Compile mail1", "ansible.builtin.debug": {"msg": "replies {{ (hostvars | warden.egress.policy(target='mail1', groups=groups)).replies }}"}},
    ]}]
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    result = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"), "-e", f"egress_serves_without_ssh={extra}"],
                            capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    output = result.stdout + result.stderr
    if ok:
        assert result.returncode == 0, output
        assert "replies served" in output
    elif extra == "false":
        assert result.returncode != 0 and "serves nothing on tcp/22" in output, output
    else:
        assert result.returncode != 0 and "egress_serves_without_ssh: 'maybe' must be true or false" in output, output


@pytest.mark.parametrize(("value", "expected"), SPELLINGS + [(1.0, True), (0.0, False)], ids=ids + ["1.0", "0.0"])
def test_egress_dns_log_answers(value, expected):
    assert parse_dns_settings({"log_answers": value})["log_answers"] is expected


@pytest.mark.parametrize("value", BAD, ids=[repr(b) for b in BAD])
def test_egress_dns_log_answers_refused(value):
    with pytest.raises(PolicyError, match=r"^egress_dns\.log_answers: .* must be true or false"):
        parse_dns_settings({"log_answers": value})
