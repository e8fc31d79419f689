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
  confirm_timeout:
    description:
      - Seconds the device waits for confirmation before it rolls the change back (0 for no
        confirmation step); IOS and Junos round it up to whole minutes.
    type: int
  reconnect:
    description: Seconds a new connection and one command may take; a shorter O(confirm_timeout) gives a warning.
    type: int
    default: 60
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
    warnings:
      description: What the plan noticed (ACLs kept, a confirmation timeout shorter than a reconnection).
      type: list
      elements: str
"""

from ansible_collections.warden.egress.plugins.plugin_utils.filters import render_ir
from ansible_collections.warden.egress.plugins.plugin_utils.render_acl import bindings, device_config
from ansible_collections.warden.egress.plugins.plugin_utils.render_acl_apply import acl_names, confirm_timer, plan


def to_device_acls(ir, platform=None, on_device=None, bound_on_device=None, bind=True, confirm_timeout=None, reconnect=60):
    def render(policy):
        target = platform or policy["platform"]
        planned = {"generation": None, "names": acl_names(), "load": True, "delete": [], "kept": [], "replace": [], "current": {}, "warnings": []}
        if on_device is not None:
            planned = plan(policy, target, on_device, bound_on_device or [], bind=bool(bind))
        names = planned["names"]
        out = {**planned, "acls": device_config(policy, target, names), "interfaces": bindings(policy, names)}
        if confirm_timeout is not None:
            # A value given as text (-e network_acl_confirm_timeout=120) counts when it is a whole number.
            seconds = int(confirm_timeout) if isinstance(confirm_timeout, str) and confirm_timeout.strip().isdigit() else confirm_timeout
            out["confirm"] = confirm_timer(target, seconds, int(reconnect))
            out["warnings"] = out["warnings"] + out["confirm"].pop("warnings")
        return out

    return render_ir("to_device_acls", render, ir)


class FilterModule:
    def filters(self):
        return {"to_device_acls": to_device_acls}
