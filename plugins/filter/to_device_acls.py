# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: to_device_acls
author: warden.egress contributors (@warden-egress)
version_added: 0.4.0
short_description: Render an edge policy as router or switch ACL data
description:
  - Returns the O(config) data of the vendor's ACL resource module (C(cisco.ios.ios_acls),
    C(arista.eos.eos_acls) or C(junipernetworks.junos.junos_acls)) and of its interface
    binding module (C(*_acl_interfaces)) for an edge policy with one inside and one outside
    interface.
  - Two ACLs, C(WARDEN-EGRESS-V4) and C(WARDEN-EGRESS-V6), both bound C(out) on the outside
    interface. They are stateless; see docs/network-acl.md for what that changes.
options:
  _input:
    description: An edge Policy IR from P(warden.egress.edge_policy#filter).
    type: dict
    required: true
  platform:
    description: C(ios), C(eos) or C(junos); the policy's own platform when omitted.
    type: str
"""

EXAMPLES = r"""
- name: Render the router's ACLs
  ansible.builtin.set_fact:
    __acls: "{{ hostvars | warden.egress.edge_policy(target=inventory_hostname, groups=groups) | warden.egress.to_device_acls }}"
"""

RETURN = r"""
_value:
  description: The ACL resource module's config, the binding module's config, and the ACL names.
  type: dict
  contains:
    acls:
      description: The O(config) of the C(*_acls) module.
      type: list
    interfaces:
      description: The O(config) of the C(*_acl_interfaces) module.
      type: list
    names:
      description: The ACL names per address family (C(ipv4), C(ipv6)).
      type: dict
"""

from ansible_collections.warden.egress.plugins.plugin_utils.filters import render_ir
from ansible_collections.warden.egress.plugins.plugin_utils.render_acl import NAMES, bindings, device_config


def to_device_acls(ir, platform=None):
    def render(policy):
        return {"acls": device_config(policy, platform or policy["platform"]), "interfaces": bindings(policy), "names": dict(NAMES)}

    return render_ir("to_device_acls", render, ir)


class FilterModule:
    def filters(self):
        return {"to_device_acls": to_device_acls}
