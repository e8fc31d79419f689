"""warden.egress.policies: a host's Policy IRs read from the run's site compile directory
(checked: that host's, IRs, one of each kind; never compiled again) or, with no directory,
compiled here as the policy and edge_policy filters compile them, with their messages."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible.errors import AnsibleLookupError
from ansible import constants as C
from sample import ADDRESSES, EDGE, GROUPS, ROLES, site

from ansible_collections.warden.egress.plugins.filter.edge_policy import edge_policy
from ansible_collections.warden.egress.plugins.filter.policy import policy
from ansible_collections.warden.egress.plugins.lookup import policies as plugin

NAME = "warden.egress.policies"
# what the plugin loader does: the options are those of the DOCUMENTATION
C.config.initialize_plugin_configuration_definitions("lookup", NAME, yaml.safe_load(plugin.DOCUMENTATION)["options"])


def lookup() -> plugin.LookupModule:
    found = plugin.LookupModule()
    found._load_name = NAME
    return found


def hostvars(**overrides) -> dict:
    out = {host: {**site(**overrides), "egress_role": ROLES[host], "egress_addresses": addresses} for host, addresses in ADDRESSES.items()}
    out["gw1"] = {**site(**overrides), "egress_edge": EDGE, "ansible_host": "198.51.100.1"}
    out["both1"] = {**site(**overrides), "egress_role": "client", "egress_edge": EDGE, "egress_addresses": ["198.51.100.20"]}
    out["printer"] = {"ansible_host": "198.51.100.30"}
    return out


def task_vars(host: str = "mail1", hv: dict | None = None) -> dict:
    hv = hostvars() if hv is None else hv
    groups = {**GROUPS, "all": list(hv)}
    return {**hv.get(host, {}), "inventory_hostname": host, "hostvars": hv, "groups": groups}


def run(terms, variables=None, **kwargs) -> list:
    return lookup().run(terms, variables=task_vars() if variables is None else variables, **kwargs)


def compiled(host: str) -> list:
    """What the roles compiled before: the host policy if egress_role, the edge if egress_edge."""
    hv, groups = hostvars(), {**GROUPS, "all": list(hostvars())}
    return (([policy(hv, host, groups)] if "egress_role" in hv[host] else [])
            + ([edge_policy(hv, host, groups)] if "egress_edge" in hv[host] else []))


def write_site(tmp_path, files: dict) -> str:
    for host, content in files.items():
        (tmp_path / f"{host}.json").write_text(content if isinstance(content, str) else json.dumps(content))
    return str(tmp_path)


@pytest.mark.parametrize("host", ["mail1", "gw1", "both1"])
def test_compiles_here_without_a_site_directory(host):
    assert run([host], task_vars(host)) == compiled(host)
    assert run([host], task_vars(host), site_dir="") == compiled(host)


def test_both_kinds_come_host_first_and_each_kind_alone():
    host, edge = compiled("both1")
    assert (host["kind"], edge["kind"]) == ("host", "edge")
    assert run(["both1"], task_vars("both1"), kind="host") == [host]
    assert run(["both1"], task_vars("both1"), kind="edge") == [edge]


def test_another_hosts_policy_from_this_hosts_task():
    assert run(["gw1"], task_vars("mail1"), kind="edge") == compiled("gw1")
    assert run(["mail1", "dns1"], task_vars("ws1"), kind="host") == compiled("mail1") + compiled("dns1")


def test_this_hosts_own_variables_decide_what_is_compiled():
    """egress_edge given to this host as a role parameter (not in hostvars) is seen, as
    'egress_edge is defined' saw it in the role."""
    hv = hostvars()
    variables = {**task_vars("gw1", hv), "egress_role": "client"}
    with pytest.raises(AnsibleLookupError, match="warden.egress: host gw1: "):
        run(["gw1"], variables)


def test_a_host_with_neither_has_no_policies():
    assert run(["printer"], task_vars("printer")) == []


def test_compile_errors_are_the_filters_messages():
    hv = hostvars(egress_trusted_prefixes=["198.51.100.0/33"])
    with pytest.raises(AnsibleLookupError) as raised:
        run(["mail1"], task_vars("mail1", hv))
    assert str(raised.value) == "warden.egress: host mail1: egress_trusted_prefixes[0]: '198.51.100.0/33' is not an IP address or prefix"
    with pytest.raises(AnsibleLookupError, match=r"^warden.egress: edge gw1: egress_trusted_prefixes\[0\]"):
        run(["gw1"], task_vars("gw1", hv), kind="edge")
    with pytest.raises(AnsibleLookupError, match=r"^warden.egress.policy: target 'nohost' is not an inventory host"):
        run(["nohost"], kind="host")
    with pytest.raises(AnsibleLookupError, match="'nohost' is not an inventory host"):
        run(["nohost"])


def test_reads_the_site_directory_and_compiles_nothing(tmp_path):
    irs = json.loads(json.dumps(compiled("both1")))  # as site_compile writes them
    site_dir = write_site(tmp_path, {"both1": irs})
    broken = {"hostvars": {}, "groups": {}, "inventory_hostname": "both1"}  # nothing here could be compiled
    assert run(["both1"], broken, site_dir=site_dir) == irs
    assert run(["both1"], broken, site_dir=site_dir, kind="host") == irs[:1]
    assert run(["both1"], broken, site_dir=site_dir, kind="edge") == irs[1:]


def test_the_file_is_read_as_it_is_never_templated(tmp_path):
    irs = compiled("mail1")
    irs[0]["rules"][0]["comment"] = "{{ lookup('ansible.builtin.pipe', 'id') }}"
    site_dir = write_site(tmp_path, {"mail1": irs})
    assert run(["mail1"], site_dir=site_dir)[0]["rules"][0]["comment"] == "{{ lookup('ansible.builtin.pipe', 'id') }}"


def test_a_kind_the_file_does_not_hold_is_an_error(tmp_path):
    site_dir = write_site(tmp_path, {"mail1": compiled("mail1")})
    with pytest.raises(AnsibleLookupError, match=r"mail1\.json holds no edge policy of 'mail1'"):
        run(["mail1"], site_dir=site_dir, kind="edge")


def edit(change):
    irs = compiled("both1")
    change(irs)
    return irs


@pytest.mark.parametrize(("content", "message"), [
    (None, r"cannot read both1's policies from the site compile: .*both1\.json: No such file"),
    ("[{", r"both1\.json is not the site compile's JSON"),
    ({"kind": "host"}, r"both1\.json does not hold a list of Policy IRs"),
    ([], r"both1\.json does not hold a list of Policy IRs"),
    (edit(lambda irs: irs[1].update(target="gw1")), r"both1\.json: \[1\] is the edge policy of 'gw1', not of 'both1'"),
    (edit(lambda irs: irs.append(irs[0])), r"both1\.json: \[2\] is a second host policy"),
    (edit(lambda irs: irs[0].update(schema=0)), r"both1\.json: \[0\] is not a Policy IR from warden.egress.site_compile: it is schema 0"),
    (edit(lambda irs: irs[1].pop("rules")), r"\[1\] is not a Policy IR from warden.egress.site_compile: it has no rules"),
    ([["not", "an", "ir"]], r"\[0\] is not a Policy IR from warden.egress.site_compile: it is a list, not a mapping"),
], ids=["missing", "not-json", "not-a-list", "empty", "another-host", "two-of-a-kind", "schema", "no-rules", "not-a-mapping"])
def test_a_file_that_is_not_this_hosts_policies_is_refused(tmp_path, content, message):
    site_dir = write_site(tmp_path, {} if content is None else {"both1": content})
    with pytest.raises(AnsibleLookupError, match=message):
        run(["both1"], task_vars("both1"), site_dir=site_dir)


@pytest.mark.parametrize(("terms", "kwargs", "message"), [
    (["mail1"], {"kind": "gateway"}, "'gateway'"),
    ([""], {}, "'' is not an inventory host name"),
    ([7], {}, "7 is not an inventory host name"),
])
def test_bad_arguments(terms, kwargs, message):
    with pytest.raises(Exception, match=message):
        run(terms, **kwargs)
