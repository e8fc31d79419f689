# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The three vendors behind one name each (private to the collection): ``VENDORS`` their
modules, ``device_config`` renders an edge IR for a platform's ``*_acls`` module,
``read_parsed`` reads that module's ``state: parsed`` back into entries.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import DEVICE_PLATFORMS
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl import eos, ios, junos

VENDORS = {"ios": ios, "eos": eos, "junos": junos}


def device_config(ir: Mapping, platform: str, names: Mapping | None = None, object_groups: bool = True) -> list:
    """The ``*_acls`` config of ``ir`` for ``platform`` (ios, eos, junos), the ACLs named
    ``names`` per family (``NAMES`` by default). ``object_groups`` (IOS) names object groups
    rather than writing every pairing of a rule's sources and destinations; EOS's module has
    no object groups, and a Junos term holds all of a rule's addresses."""
    if platform == "ios":
        return ios.ios_config(ir, names, object_groups)
    renderers = {"eos": eos.eos_config, "junos": junos.junos_config}
    if platform not in renderers:
        raise ValueError(f"egress_platform: '{platform}' has no device ACL renderer (one of: {', '.join(DEVICE_PLATFORMS)})")
    return renderers[platform](ir, names)


def read_parsed(parsed, platform: str, object_groups=None) -> dict:
    """``parsed`` read by the platform's reader; on IOS, ``object_groups`` (the groups' lines
    as the device lists them) give the members of the groups the entries name."""
    if platform == "ios":
        return ios.read_ios(parsed, None if object_groups is None else ios.read_ios_object_groups(object_groups))
    return {"eos": eos.read_eos, "junos": junos.read_junos}[platform](parsed)
