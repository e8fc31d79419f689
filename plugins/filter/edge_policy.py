# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: edge_policy
author: warden.egress contributors (@warden-egress)
version_added: 0.2.0
short_description: Compile the site's egress policy for a gateway
description:
  - For an inventory host with C(egress_edge) (a gateway with named inside and outside
    interfaces), builds the forward-hook Policy IR of the whole site. Every host with an
    C(egress_role) and every C(egress_segments) entry may send exactly what its role allows,
    from its own addresses, to exactly the upstreams named.
  - Before any allow comes the site baseline, no transit, anti-spoofing per inside
    interface, special-purpose and private destinations, routing protocols unless the box
    routes, and a per-source limit on new connections.
  - Any bad value fails with the variable path and the value, before any host is touched.
options:
  _input:
    description: The play's C(hostvars).
    type: dict
    required: true
  target:
    description: The gateway (an inventory host with C(egress_edge)).
    type: str
    required: true
  groups:
    description: The play's C(groups); C(groups.all) lists the hosts whose roles make the site policy.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Compile the gateway's edge policy
  ansible.builtin.set_fact:
    __edge: "{{ hostvars | warden.egress.edge_policy(target=inventory_hostname, groups=groups) }}"
"""

RETURN = r"""
_value:
  description: The Policy IR of kind C(edge) (see docs/policy-ir.md in the collection).
  type: dict
"""

from ansible_collections.warden.egress.plugins.plugin_utils.compile.edge import compile_edge
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import compile_target, host_roles


def edge_policy(hostvars, target, groups):
    return compile_target(
        "edge_policy", "edge", hostvars, target,
        lambda inputs, addresses: compile_edge(inputs, target, addresses, groups, host_roles(hostvars, list(groups.get("all", [])))),
    )


class FilterModule:
    def filters(self):
        return {"edge_policy": edge_policy}
