# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The three vendors behind one name each (private to the collection): ``VENDORS`` their
modules, ``device_config`` renders an edge IR for a platform's ``*_acls`` module,
``read_parsed`` reads that module's ``state: parsed`` back into entries, ``fit`` holds a
rendering to the number of entries the device is taken to hold.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import DEVICE_PLATFORMS
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import FAMILIES
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


# What makes a rendering smaller, per platform, for the refusal of one that does not fit.
FIT_ADVICE = {
    "ios": "object groups (network_acl_object_groups: true) make one entry per rule and port instead of one per pairing",
    "eos": "arista.eos.eos_acls has no object groups, so each source, destination and port pairing is an entry",
    "junos": "a term already lists all of a rule's addresses, so fewer entries means fewer rules and ports",
}


def entries(config: list) -> dict[str, int]:
    """The entries of a ``*_acls`` config per address family (remarks are not entries)."""
    counts = dict.fromkeys(FAMILIES, 0)
    for afi in config:
        for acl in afi.get("acls", []):
            counts[afi["afi"]] += sum(1 for ace in acl.get("aces", []) if "grant" in ace)
    return counts


def fit(config: list, platform: str, limit: int | None = None, object_groups: bool = True) -> dict:
    """How the rendering ``config`` fits the device: ``entries`` per family, their ``total``
    and the ``limit`` held against (``limit``, or the platform's ``LIMITS["entries"]``).
    A rendering over the limit raises ValueError with what would make it smaller."""
    limit = VENDORS[platform].LIMITS["entries"] if limit is None else limit
    counts = entries(config)
    total = sum(counts.values())
    if total > limit:
        advice = ["egress_segments: the hosts of a role in one segment prefix are one source, where scattered hosts are one each",
                  "fewer, wider prefixes in the upstreams the rules allow"]
        if platform != "ios" or object_groups:
            advice.append(FIT_ADVICE[platform])
        else:
            advice.insert(0, FIT_ADVICE["ios"])
        raise ValueError(f"the {platform} ACLs would hold {total} entries (ipv4 {counts['ipv4']}, ipv6 {counts['ipv6']}), more than the "
                         f"{limit} the device is taken to hold (max_entries, network_acl_max_entries); nothing was sent to the device. "
                         f"Smaller: {'; '.join(advice)}. If the device holds more, set network_acl_max_entries to its figure.")
    return {"entries": counts, "total": total, "limit": limit}
