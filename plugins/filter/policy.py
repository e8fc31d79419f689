# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: policy
author: warden.egress contributors (@warden-egress)
version_added: 0.1.0
short_description: Compile a host's egress policy from the inventory
description:
  - Reads the C(egress_*) variables of one inventory host, validates them and returns its
    Policy IR (platform-neutral rules, address sets, origins, warnings).
  - Any bad value fails with the variable path and the value, before any host is touched.
  - Inventory host names and C(group:NAME) entries in C(egress_upstreams) resolve to the
    hosts' C(egress_addresses) (or C(ansible_host) when that is an IP address).
options:
  _input:
    description: The play's C(hostvars).
    type: dict
    required: true
  target:
    description: The inventory host to compile for.
    type: str
    required: true
  groups:
    description: The play's C(groups), for C(group:NAME) upstreams.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Compile this host's policy
  ansible.builtin.set_fact:
    __policy: "{{ hostvars | warden.egress.policy(target=inventory_hostname, groups=groups) }}"
"""

RETURN = r"""
_value:
  description: The Policy IR (see docs/policy-ir.md in the collection).
  type: dict
"""

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import compile_target


def policy(hostvars, target, groups):
    return compile_target(
        "policy", "host", hostvars, target,
        lambda inputs, addresses: compile_policy(inputs, target, addresses, groups),
    )


class FilterModule:
    def filters(self):
        return {"policy": policy}
