# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: to_device_acls
author: warden.egress contributors (@warden-egress)
version_added: 0.4.0
short_description: Render an edge policy as router or switch ACL data, and plan its confirmed apply
description:
  - Returns the C(config) data of the vendor's ACL resource module (C(cisco.ios.ios_acls),
    C(arista.eos.eos_acls) or C(junipernetworks.junos.junos_acls)) and of its interface
    binding module (C(*_acl_interfaces)) for an edge policy with one inside and one outside
    interface.
  - Two ACLs, C(WARDEN-EGRESS-V4) and C(WARDEN-EGRESS-V6), both bound C(out) on the outside
    interface. They are stateless; see docs/network-acl.md for what that changes.
  - Given what the device holds (O(on_device) and O(bound_on_device), gathered by the
    modules; IOS and EOS only), the ACLs are named by generation (C(WARDEN-EGRESS-V4-7)),
    taking the live generation when it already holds the policy (nothing to load), else the next
    one. The result then also lists the collection's older ACLs that can be deleted.
  - On IOS, each entry keeps its rule's sources and destinations together and names an
    object group where it has more than one prefix (O(object_groups)), so the ACLs grow with
    the rules and prefixes, not with their product. A Junos term holds all of a rule's
    addresses. C(arista.eos.eos_acls) has no object groups, so EOS entries are one per pairing.
  - Given O(confirm_timeout), the result carries the device's own confirmation timer.
options:
  _input:
    description: An edge Policy IR from P(warden.egress.edge_policy#filter).
    type: dict
    required: true
  platform:
    description: C(ios), C(eos) or C(junos); the policy's own platform when omitted.
    type: str
  on_device:
    description:
      - The C(gathered) value of the device's C(*_acls) module (IOS, EOS). Omitted, the ACLs
        get their plain names and nothing is planned (render mode).
    type: list
    elements: dict
  bound_on_device:
    description: The C(gathered) value of the device's C(*_acl_interfaces) module.
    type: list
    elements: dict
  bind:
    description:
      - Whether the ACLs are bound by the collection. Without, they keep their plain names
        and are replaced in place when they differ.
    type: bool
    default: true
  object_groups:
    description:
      - IOS only. Name object groups (C(object-group network), C(object-group v6-network))
        in the entries; false writes one entry per source, destination and port, for a
        device without object groups. Needs O(bind), since without it the ACLs are replaced in
        place, and the groups they name would have to exist first.
    type: bool
    default: true
  confirm_timeout:
    description:
      - Seconds the device waits for confirmation before it rolls the change back (0 for no
        confirmation step); IOS and Junos round it up to whole minutes.
    type: int
  reconnect:
    description: Seconds a new connection and one command may take; a shorter O(confirm_timeout) gives a warning.
    type: int
    default: 60
  max_entries:
    description:
      - The entries (both ACLs together, remarks not counted) the device is taken to hold. A
        rendering with more is refused, naming what would make it smaller; nothing is returned
        for a device to load.
      - Omitted, the platform's own figure, 4096 on each of C(ios), C(eos) and C(junos), of the
        order of a switch's hardware ACL region, not any model's own. A router that filters in
        software holds more, a small switch less; set the device's figure.
    type: int
    version_added: 0.5.0
"""

EXAMPLES = r"""
- name: Render the router's ACLs
  ansible.builtin.set_fact:
    __acls: "{{ hostvars | warden.egress.edge_policy(target=inventory_hostname, groups=groups) | warden.egress.to_device_acls }}"

- name: Plan the change from what the device holds
  ansible.builtin.set_fact:
    __acls: "{{ __policy | warden.egress.to_device_acls(on_device=__gathered.gathered, bound_on_device=__bound.gathered, confirm_timeout=300) }}"
"""

RETURN = r"""
_value:
  description: The modules' config, the ACL names, and the plan of the change.
  type: dict
  contains:
    acls:
      description: The C(config) of the C(*_acls) module.
      type: list
    interfaces:
      description: The C(config) of the C(*_acl_interfaces) module.
      type: list
    object_groups:
      description: IOS, the object groups the entries name, each with C(afi), C(name) and C(members); empty elsewhere.
      type: list
    object_group_lines:
      description: Those groups' configuration lines, as the device lists them.
      type: list
    delete_groups:
      description: IOS, the collection's object groups no ACL left on the device names, to delete after the older ACLs, each with C(afi) and C(name).
      type: list
    delete_group_lines:
      description: The configuration lines that delete those groups.
      type: list
    names:
      description: The ACL names per address family (C(ipv4), C(ipv6)).
      type: dict
    generation:
      description: The generation the names carry; null for the plain names.
      type: int
    load:
      description: Whether the ACLs are to be loaded (false when the live generation already holds the policy).
      type: bool
    delete:
      description: The C(config) of C(*_acls) C(state=deleted) for the collection's older, unbound ACLs.
      type: list
    kept:
      description: The collection's older ACLs left in place because they are still bound somewhere.
      type: list
    replace:
      description: Without O(bind), the ACLs already on the device that are replaced in place, as C([family, name]).
      type: list
    current:
      description: The ACL names bound out on the outside interface before the change, per family.
      type: dict
    confirm:
      description: C(seconds) the device really waits, C(minutes) (IOS, Junos) or C(timer) (EOS C(HH:MM:SS)).
      type: dict
    fit:
      description: C(entries) per address family, their C(total), and the C(limit) held against (O(max_entries)).
      type: dict
      version_added: 0.5.0
    warnings:
      description: What the plan noticed (ACLs kept, a confirmation timeout shorter than a reconnection).
      type: list
      elements: str
"""

from ansible_collections.warden.egress.plugins.plugin_utils.adapters.filters import render_ir
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import parse_bool
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import read_number
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.apply import acl_names, confirm_timer, plan
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import bindings
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import device_config, fit
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import ios_delete_group_lines, ios_object_group_lines, ios_render


def to_device_acls(ir, platform=None, on_device=None, bound_on_device=None, bind=True, confirm_timeout=None, reconnect=60, object_groups=True,
                   max_entries=None):
    def render(policy):
        grouped = parse_bool(object_groups, "object_groups (network_acl_object_groups)")
        bound = parse_bool(bind, "bind (network_acl_bind)")
        target = platform or policy["platform"]
        limit = None
        if max_entries is not None:
            limit = read_number(max_entries.strip() if isinstance(max_entries, str) else max_entries, low=1)
            if limit is None:
                raise ValueError(f"max_entries (network_acl_max_entries): {max_entries!r} is not a whole number of entries above 0")
        if target == "ios" and grouped and not bound:
            raise ValueError("network_acl_object_groups: true needs network_acl_bind: true on IOS (the object groups are defined in the change "
                             "that loads and binds a new generation of the ACLs); set network_acl_object_groups: false to replace the ACLs in place")
        planned = {"generation": None, "names": acl_names(), "load": True, "delete": [], "kept": [], "replace": [], "current": {},
                   "delete_groups": [], "warnings": []}
        if on_device is not None:
            planned = plan(policy, target, on_device, bound_on_device or [], bind=bound, object_groups=grouped)
        names = planned["names"]
        if target == "ios":
            rendered = ios_render(policy, names, grouped)
        else:
            rendered = {"acls": device_config(policy, target, names), "object_groups": []}
        out = {**planned, **rendered, "object_group_lines": ios_object_group_lines(rendered["object_groups"]), "interfaces": bindings(policy, names),
               "delete_group_lines": ios_delete_group_lines(planned["delete_groups"]),
               "fit": fit(rendered["acls"], target, limit, grouped)}
        if confirm_timeout is not None:
            # A value given as text (-e network_acl_confirm_timeout=120) counts when it is a whole number.
            number = read_number(confirm_timeout.strip()) if isinstance(confirm_timeout, str) else None
            seconds = confirm_timeout if number is None else number
            out["confirm"] = confirm_timer(target, seconds, int(reconnect))
            out["warnings"] = out["warnings"] + out["confirm"].pop("warnings")
        return out

    return render_ir("to_device_acls", render, ir)


class FilterModule:
    def filters(self):
        return {"to_device_acls": to_device_acls}
