"""The device ACLs the collection writes (IOS, EOS, Junos), held byte for byte.

What ``warden.egress.to_device_acls`` returns for the example edge is the input of the
vendors' ``*_acls`` modules and of the IOS lines the role loads: it must not change unless a
change means it to. Regenerate with WARDEN_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import json

import pytest
from golden_files import golden
from sample import EDGE, edge_ir

from ansible_collections.warden.egress.plugins.filter.to_device_acls import to_device_acls

ON_DEVICE = [{"afi": "ipv4", "acls": [{"name": "WARDEN-EGRESS-V4", "aces": [{"sequence": 10, "grant": "deny", "protocol": "ip"}]}]}]

JUNOS_EDGE = {**EDGE, "inside": [{**EDGE["inside"][0], "interface": "ge-0/0/0"}], "outside": "ge-0/0/1"}

CASES = {
    "ios": lambda: to_device_acls(edge_ir(egress_platform="ios"), "ios"),
    "ios-flat": lambda: to_device_acls(edge_ir(egress_platform="ios"), "ios", bind=False, object_groups=False),
    "ios-audit": lambda: to_device_acls(edge_ir(egress_platform="ios", egress_mode="audit"), "ios"),
    "ios-planned": lambda: to_device_acls(edge_ir(egress_platform="ios"), "ios", on_device=ON_DEVICE, bound_on_device=[], confirm_timeout=300),
    "eos": lambda: to_device_acls(edge_ir(egress_platform="eos"), "eos"),
    "eos-planned": lambda: to_device_acls(edge_ir(egress_platform="eos"), "eos", on_device=ON_DEVICE, bound_on_device=[], confirm_timeout=300),
    "junos": lambda: to_device_acls(edge_ir(edge=JUNOS_EDGE, egress_platform="junos"), "junos"),
    "junos-audit": lambda: to_device_acls(edge_ir(egress_platform="junos", egress_mode="audit"), "junos", confirm_timeout=600),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_device_acls_are_unchanged(name):
    result = CASES[name]()
    result.pop("fit")  # how many entries against which limit: a report, held by test_device_fit
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    assert text == golden(f"acl/{name}.json", text)
