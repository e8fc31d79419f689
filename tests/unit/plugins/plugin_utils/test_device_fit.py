"""A device ACL rendering is held to the entries the device holds: ``to_device_acls`` reports
the entries per family against the limit (``max_entries``, else the platform's declared
``LIMITS["entries"]``), and refuses a rendering over it, saying what would make it smaller."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from sample import edge_ir

from ansible_collections.warden.egress.plugins.filter.to_device_acls import to_device_acls
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import VENDORS, read_parsed
from ansible_collections.warden.egress.plugins.plugin_utils.render.platforms import limits


@pytest.mark.parametrize("platform", sorted(VENDORS))
def test_the_entries_counted_are_those_the_device_reads_back(platform):
    result = to_device_acls(edge_ir(egress_platform=platform), platform)
    read = read_parsed(result["acls"], platform)
    assert result["fit"]["entries"] == {family: len(read[(family, name)]) for family, name in result["names"].items()}
    assert result["fit"]["total"] == sum(result["fit"]["entries"].values()) > 0
    assert result["fit"]["limit"] == limits(platform)["entries"] == 4096


@pytest.mark.parametrize("platform", sorted(VENDORS))
def test_a_rendering_over_the_limit_is_refused_and_one_at_it_is_not(platform):
    ir = edge_ir(egress_platform=platform)
    total = to_device_acls(ir, platform)["fit"]["total"]
    assert to_device_acls(ir, platform, max_entries=total)["fit"]["limit"] == total
    assert to_device_acls(ir, platform, max_entries=str(total))["fit"]["limit"] == total  # as -e gives it
    with pytest.raises(AnsibleFilterError) as refused:
        to_device_acls(ir, platform, max_entries=total - 1)
    message = str(refused.value)
    assert f"the {platform} ACLs would hold {total} entries" in message and f"more than the {total - 1} the device" in message
    assert "network_acl_max_entries" in message and "egress_segments" in message


def test_ios_without_object_groups_is_told_about_them_first():
    ir = edge_ir(egress_platform="ios")
    flat = to_device_acls(ir, "ios", bind=False, object_groups=False)["fit"]["total"]
    grouped = to_device_acls(ir, "ios")["fit"]["total"]
    assert flat > grouped
    with pytest.raises(AnsibleFilterError, match=r"Smaller: object groups \(network_acl_object_groups: true\)"):
        to_device_acls(ir, "ios", bind=False, object_groups=False, max_entries=grouped)


@pytest.mark.parametrize("value", [0, -3, "x", "1 2", True, 1.5, "²"])
def test_a_bad_limit_is_named(value):
    with pytest.raises(AnsibleFilterError, match=r"max_entries \(network_acl_max_entries\): .* is not a whole number of entries above 0"):
        to_device_acls(edge_ir(egress_platform="eos"), "eos", max_entries=value)
