"""warden.egress.learn_analysis and learn_whatif as a playbook calls them: hostvars in, the
analysis (with its report and YAML) out; a bad value is the filter's error naming it."""

from __future__ import annotations

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from journal import record
from sample import ADDRESSES, GROUPS, ROLES, site

from ansible_collections.warden.egress.plugins.filter.learn_analysis import learn_analysis
from ansible_collections.warden.egress.plugins.filter.learn_whatif import learn_whatif

LINE = record("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.44 LEN=60 PROTO=TCP SPT=1 DPT=8443 WINDOW=1 URGP=0 ",
              when="2026-12-02T10:00:02Z")  # one record of journalctl -k -o json


def hostvars(**overrides) -> dict:
    return {h: dict(site(**overrides), egress_role=r, egress_addresses=ADDRESSES[h], egress_mode="audit") for h, r in ROLES.items()}


def test_learn_analysis_from_hostvars():
    out = learn_analysis({"mail1": LINE, "dns1": {"unreachable": True, "msg": "timed out"}}, hostvars(), list(ROLES), GROUPS)
    assert out["replay"]["denied_now"] == 1 and out["replay"]["denied_suggested"] == 0
    assert "dns1 (unreachable: timed out)" in out["report"]
    assert yaml.safe_load(out["suggestion_yaml"])["egress_services"] == {"learned_tcp_8443": {"proto": "tcp", "ports": [8443]}}


def test_learn_analysis_names_a_bad_inventory_value():
    with pytest.raises(AnsibleFilterError, match=r"egress_upstreams.smtp_relays\[0\]: '203.0.113.300' is not an IP address"):
        learn_analysis({}, hostvars(egress_upstreams={"smtp_relays": ["203.0.113.300"]}), list(ROLES), GROUPS)


def test_learn_analysis_checks_its_arguments():
    with pytest.raises(AnsibleFilterError, match="learn_analysis.*_input"):
        learn_analysis("not a mapping", hostvars(), list(ROLES), GROUPS)


def test_learn_whatif_from_hostvars_and_a_bad_proposal():
    out = learn_whatif(hostvars(), list(ROLES), GROUPS, {"egress_mode": "enforce"})
    assert out["changed"] and all(c["after"]["verdict"] == "drop" for c in out["changed"])
    assert out["markdown"].startswith("# What-if")
    assert learn_whatif(hostvars(), list(ROLES), GROUPS, {})["changed"] == []
    with pytest.raises(AnsibleFilterError, match=r"proposed site.*egress_upstreams.extra\[0\]: 'nowhere' is not an IP address"):
        learn_whatif(hostvars(), list(ROLES), GROUPS, {"egress_upstreams": {"extra": ["nowhere"]}})


def test_learn_whatif_judges_a_suggested_exception_with_blanks_only_when_asked():
    """The learn role compares its own suggestion, whose exceptions wait for a person's reason,
    owner and expiry; a change file given by a person must have them."""
    variables = hostvars(egress_exceptions=[])
    variables["intranet1"]["egress_role"] = "client"  # two clients: what one of them alone reaches is an exception
    lines = [LINE.replace("mail1", "ws1").replace("SRC=198.51.100.11", "SRC=198.51.100.14").replace("DPT=8443", "DPT=443")]
    learned = learn_analysis({"ws1": lines}, variables, list(ROLES), GROUPS)
    suggestion = learned["suggestion"]
    assert [(e["hosts"], e["reason"]) for e in suggestion["egress_exceptions"]] == [(["ws1"], None)]
    with pytest.raises(AnsibleFilterError, match=r"egress_exceptions\[0\]\.reason: None must be a non-empty text"):
        learn_whatif(variables, list(ROLES), GROUPS, suggestion, learned["flows"])
    out = learn_whatif(variables, list(ROLES), GROUPS, suggestion, learned["flows"], fill_blanks=True)
    assert any(c["packet"]["dst"] == "203.0.113.44" and c["after"]["verdict"] == "accept" for c in out["changed"])


def test_learn_whatif_refuses_a_fill_blanks_that_is_not_a_boolean():
    with pytest.raises(AnsibleFilterError, match=r"learn_whatif.*fill_blanks"):
        learn_whatif(hostvars(), list(ROLES), GROUPS, {}, fill_blanks="perhaps")
