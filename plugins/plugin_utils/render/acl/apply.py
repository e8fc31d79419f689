# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The confirmed, atomic apply of the collection's ACLs on a device (private to the collection).

IOS and EOS change a bound ACL entry by entry. So the collection never edits the ACL that
is bound: it loads the new one under the next *generation* name (``WARDEN-EGRESS-V4-7``),
rebinds the outside interface to it (one command per family replaces the ACL bound in that
direction), and deletes the older generations once the change is confirmed. ``plan`` works
out, from what the vendor's ``*_acls`` and ``*_acl_interfaces`` modules gathered on the
device (on IOS, the ACLs as ``ios.read_ios_running`` reads them from the running
configuration, in the same form), which generation is live, whether it already holds the policy (then nothing is
loaded), the next generation's names, and which old ACLs can go: only the collection's own
names, and never one still bound anywhere.

``confirm_timer`` turns ``network_acl_confirm_timeout`` (seconds) into each device's own
timer (IOS ``configure terminal revert timer`` minutes, EOS ``commit timer HH:MM:SS``, Junos
``commit confirmed`` minutes); ``pending`` reads, from a show command's output, whether such a
timer is running, which the role asks before it loads and again, over a new connection,
before it confirms.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import FAMILIES
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import GENERATION, NAMES
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import VENDORS, device_config, read_parsed

# An object group of the collection: its ACL's name, then the digest of its members (ios.group_name).
GROUP_NAME = re.compile(GENERATION.pattern + r"-[0-9A-F]{10}")
# The longest confirmation each device's timer takes, in seconds, as each vendor declares it.
TIMER_LIMITS = {platform: vendor.LIMITS["confirm_timer"] for platform, vendor in VENDORS.items()}


def acl_names(generation: int | None = None) -> dict:
    """The collection's ACL names per family: ``WARDEN-EGRESS-V4``/``-V6`` without a
    generation, ``WARDEN-EGRESS-V4-N``/``-V6-N`` for generation N (1 or more)."""
    if generation is None:
        return dict(NAMES)
    if isinstance(generation, bool) or not isinstance(generation, int) or not 1 <= generation <= 999999:
        raise ValueError(f"ACL generation {generation!r} is not a whole number from 1 to 999999")
    return {family: f"{name}-{generation}" for family, name in NAMES.items()}


def name_generation(name) -> tuple | None:
    """``(family, generation)`` of one of the collection's ACL names (generation 0 for the
    name without a suffix); ``None`` for any other name."""
    found = GENERATION.fullmatch(str(name)) if isinstance(name, str) else None
    if not found:
        return None
    return ("ipv4" if found["version"] == "4" else "ipv6"), int(found["generation"] or 0)


def _present(on_device: list) -> dict:
    """The collection's ACLs among what ``*_acls`` gathered: ``{(family, name): acl}``."""
    out = {}
    for afi in on_device or []:
        for acl in afi.get("acls") or []:
            parsed = name_generation(acl.get("name"))
            if parsed is not None and parsed[0] == afi.get("afi"):
                out[(afi["afi"], acl["name"])] = acl
    return out


def _bound(bound_on_device: list) -> list:
    """Every binding ``*_acl_interfaces`` gathered: ``(interface, family, name, direction)``."""
    out = []
    for interface in bound_on_device or []:
        for group in interface.get("access_groups") or []:
            for acl in group.get("acls") or []:
                out.append((interface.get("name"), group.get("afi"), acl.get("name"), acl.get("direction")))
    return out


def bound_out(bound_on_device: list, interface: str) -> dict:
    """The ACL names bound ``out`` on ``interface``, per family, from what
    ``*_acl_interfaces`` gathered."""
    return {family: name for where, family, name, direction in _bound(bound_on_device) if where == interface and direction == "out"}


def _entries(acl: Mapping, family: str, platform: str) -> list:
    """One ACL's entries as ``read_parsed`` returns them, name left out."""
    return read_parsed([{"afi": family, "acls": [{**acl, "name": "X"}]}], platform)[(family, "X")]


def _holds(present: Mapping, names: Mapping, wanted: list, platform: str) -> bool:
    """Whether the device's ACLs of these names decide exactly as ``wanted`` (the rendered
    config for those names): same entries, same order, same sequence numbers."""
    for family in FAMILIES:
        acl = present.get((family, names[family]))
        want = next(a["acls"][0] for a in wanted if a["afi"] == family)
        if acl is None or _entries(acl, family, platform) != _entries(want, family, platform):
            return False
    return True


def _named_groups(acls) -> set:
    """The collection's object groups the entries of ``acls`` (``*_acls`` ACL dicts) name."""
    return {spec["object_group"] for acl in acls for ace in acl.get("aces") or [] for side in ("source", "destination")
            for spec in [ace.get(side) or {}] if spec.get("object_group") and GROUP_NAME.fullmatch(spec["object_group"])}


def plan(ir: Mapping, platform: str, on_device: list, bound_on_device: list, bind: bool = True, object_groups: bool = True) -> dict:
    """What to change on an IOS or EOS device, from what its modules gathered.

    With ``bind`` (the role binds the ACLs): if the outside interface has both families
    bound ``out`` to one generation of the collection's ACLs and those hold the policy,
    nothing is loaded; otherwise the next generation (one above any the device holds) is
    loaded and bound. Without ``bind``: the ACLs keep their plain names and are replaced in
    place when they differ. Either way, the collection's other ACLs are deleted unless one
    is still bound somewhere, which is kept and reported. An ACL of another name bound out
    on the outside interface is an error: binding the collection's would unbind it.

    ``delete_groups`` (IOS): the collection's object groups that the ACLs deleted or replaced
    named and no ACL left on the device names, to delete once those ACLs are gone."""
    if platform not in ("ios", "eos"):
        raise ValueError(f"egress_platform: '{platform}': generations are for ios and eos (Junos commits the whole change at once)")
    outside = ir["edge"]["outside"][0]
    present, bound, warnings = _present(on_device), _bound(bound_on_device), []
    current = bound_out(bound_on_device, outside)
    if bind:
        foreign = {family: name for family, name in current.items() if name_generation(name) is None}
        if foreign:
            listed = ", ".join(f"{family} {name!r}" for family, name in sorted(foreign.items()))
            raise ValueError(f"egress_edge.outside: '{outside}' has another ACL bound out ({listed}); binding the collection's ACLs would unbind it. "
                             "Remove that binding, or set network_acl_bind: false and bind the collection's ACLs yourself")
    generations = {parsed[1] for name in [n for dummy, n in present] + [b[2] for b in bound] for parsed in [name_generation(name)] if parsed}
    if bind:
        live = {family: name_generation(current.get(family)) for family in FAMILIES}
        same = all(live[f] is not None and live[f][0] == f for f in FAMILIES) and live["ipv4"][1] == live["ipv6"][1]
        generation = (live["ipv4"][1] or None) if same else None
        names = acl_names(generation)
        load = not (same and _holds(present, names, device_config(ir, platform, names, object_groups), platform))
        if load:
            generation = max(generations, default=0) + 1
            names = acl_names(generation)
        # A new generation's groups carry its number, above any on the device: none shares a name with one there.
        wanted: list = []
    else:
        generation, names = None, acl_names()
        wanted = device_config(ir, platform, names, object_groups)
        load = not _holds(present, names, wanted, platform)
    keep = set(names.values())
    still_bound = {name for interface, dummy, name, direction in bound if not (bind and interface == outside and direction == "out")}
    delete, kept = [], []
    for family, name in sorted(present):
        if name in keep:
            continue
        if name in still_bound:
            kept.append({"afi": family, "name": name})
            places = ", ".join(f"{i} {d}" for i, dummy, n, d in bound if n == name)
            warnings.append(f"{name} is not deleted: it is still bound ({places})")
        else:
            delete.append({"afi": family, "name": name})
    # Replaced in place (no bind): the ones already on the device, which an EOS session removes before writing them again.
    replace = [[family, names[family]] for family in FAMILIES if (family, names[family]) in present] if load and not bind else []
    gone = [present[(d["afi"], d["name"])] for d in delete] + [present[tuple(r)] for r in replace]
    staying = [present[(family, name)] for family, name in present if {"afi": family, "name": name} not in delete and [family, name] not in replace]
    delete_groups = sorted(_named_groups(gone) - _named_groups(staying) - _named_groups([a["acls"][0] for a in wanted] if load else []))
    return {
        "generation": generation, "names": names, "load": load, "current": current, "kept": kept, "replace": replace,
        "delete": [{"afi": family, "acls": [{"name": d["name"]} for d in delete if d["afi"] == family]} for family in FAMILIES
                   if any(d["afi"] == family for d in delete)],
        "delete_groups": [{"afi": "ipv6" if "-V6" in name else "ipv4", "name": name} for name in delete_groups],
        "warnings": warnings,
    }


def confirm_timer(platform: str, seconds, reconnect: int = 60) -> dict:
    """``network_acl_confirm_timeout`` (seconds, 0 for none) as the device's own timer: the
    seconds it really waits (IOS and Junos count whole minutes, so it is rounded up), the
    minutes (IOS, Junos) or ``HH:MM:SS`` (EOS), and a warning when it is shorter than
    ``reconnect``, the seconds a new connection and one command may take."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise ValueError(f"network_acl_confirm_timeout: {seconds!r} is not a whole number of seconds (0 turns the confirmation off)")
    if platform not in TIMER_LIMITS:
        raise ValueError(f"egress_platform: '{platform}' has no device confirmation timer (one of: {', '.join(TIMER_LIMITS)})")
    if seconds == 0:
        return {"seconds": 0, "minutes": 0, "timer": None, "warnings": []}
    minutes = math.ceil(seconds / 60)
    effective = minutes * 60 if platform in ("ios", "junos") else seconds
    limit, why = TIMER_LIMITS[platform]
    if effective > limit:
        raise ValueError(f"network_acl_confirm_timeout: {seconds} is above the {limit} seconds {platform} allows ({why})")
    warnings = []
    if effective < reconnect:
        warnings.append(f"network_acl_confirm_timeout: {effective} seconds on {platform} is less than the {reconnect} seconds a new connection and one "
                        "command may take (persistent_connect_timeout + persistent_command_timeout); the device may roll back before it is confirmed")
    timer = f"{effective // 3600:02d}:{effective % 3600 // 60:02d}:{effective % 60:02d}"
    return {"seconds": effective, "minutes": minutes if platform != "eos" else 0, "timer": timer if platform == "eos" else None, "warnings": warnings}


def pending(platform: str, output) -> list:
    """What the device says is waiting for confirmation, from one show command's output:

    * ios, ``show archive config rollback timer``: ``["rollback timer"]`` or ``[]``;
    * eos, ``show configuration sessions detail`` (JSON): the session names with a commit
      timer running (both the ``sessions`` map and the newer ``commitTimerSessionName``);
    * junos, ``show system commit``: ``["commit confirmed"]`` when the latest commit waits
      for confirmation, else ``[]``.

    Output the function cannot read is an error, never "nothing pending"."""
    if platform == "ios":
        text = str(output)
        if re.search(r"No Rollback Confirmed Change pending", text, re.I):
            return []
        if re.search(r"Timer type:\s*Rollback Confirmed Change", text, re.I):
            return ["rollback timer"]
        raise ValueError(f"cannot tell from the IOS output whether a rollback timer is running: {text[:200]!r}")
    if platform == "eos":
        data = output
        if isinstance(output, str):
            try:
                data = json.loads(output)
            except ValueError:
                raise ValueError(f"the EOS session list is not JSON: {output[:200]!r}") from None
        if not isinstance(data, Mapping) or not ("sessions" in data or "commitTimerSessionName" in data):
            raise ValueError(f"cannot find the configuration sessions in the EOS output: {str(output)[:200]!r}")
        names = [name for name, info in (data.get("sessions") or {}).items() if "pendingCommitTimer" in str((info or {}).get("state", ""))]
        if data.get("commitTimerSessionName"):
            names.append(str(data["commitTimerSessionName"]))
        return sorted(set(names))
    if platform == "junos":
        # Only the latest commit (0) counts: an older entry keeps its "commit confirmed"
        # note after a later commit confirmed it or the timer rolled it back.
        text = str(output)
        latest = re.search(r"^\s*0\s+\d{4}-\d{2}-\d{2}[^\n]*", text, re.M)
        if not latest:
            raise ValueError(f"cannot read the Junos commit list: {text[:200]!r}")
        return ["commit confirmed"] if re.search(r"commit confirmed, rollback in \d+ ?min", latest.group(0), re.I) else []
    raise ValueError(f"egress_platform: '{platform}' has no device confirmation timer")
