# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: expect_flows
author: warden.egress contributors (@warden-egress)
version_added: 0.1.0
short_description: Say what the policy expects of each flow a host will try
description:
  - For each flow (C(dst), C(port), C(proto), optional C(src), C(name) and C(inconclusive_ok)),
    asks the oracle whether every policy on its path lets it out (the host's own, then each
    gateway's edge policy for destinations outside that edge's inside prefixes) and why, and
    returns flows ready for P(warden.egress.probe#module) with C(expect) and C(reason) filled in.
  - C(inconclusive_ok) (a boolean, default false) is passed on, and the probe then accepts an
    outcome that proves nothing for that flow.
  - A flow whose C(dst) is C(dns:NAME) (an exact name, never a wildcard) is judged by the
    name (the rules whose upstreams' names cover it), in each family the host has an
    address of or only in C(family) (C(ipv4), C(ipv6)); the probe resolves the name through
    the host's own resolver just before it connects. See the collection's docs/dns.md.
  - A flow with C(user) (and optionally C(group)) is judged as sent by that local user's
    process, and the probe sends it as that user.
  - A flow with C(direction=inbound) and C(from_host) is a connection opened to this host by
    another inventory host (C(port) on this host's C(dst), by default its first address).
    It is expected through only if the other host's own policy (from O(peers)) lets it out
    and this host's policy answers it (a service its roles serve, from that source). It
    comes back with C(from_host), where its probe must run.
options:
  _input:
    description: The host's Policy IR from P(warden.egress.policy#filter), or null for a host without one.
    type: raw
    required: true
  flows:
    description: The flows to try.
    type: list
    elements: dict
    required: true
  addresses:
    description: The host's own addresses; a flow with no C(src) is judged from the first one of its family.
    type: list
    elements: str
    required: true
  edges:
    description:
      - Gateways in front of the host, each a dict with C(policy) (from
        P(warden.egress.edge_policy#filter)) and C(interface) (the gateway's inside interface
        the host is behind; optional when there is one).
    type: list
    elements: dict
  peers:
    description:
      - The hosts that open the inbound flows, by inventory name, each a dict with
        C(addresses) (its addresses) and C(policy) (its own host Policy IR, or null).
    type: dict
"""

EXAMPLES = r"""
- name: Expected outcome of each flow
  ansible.builtin.set_fact:
    __flows: "{{ __policy | warden.egress.expect_flows(egress_verify_flows, egress_addresses) }}"
"""

RETURN = r"""
_value:
  description: Flows with C(expect) (C(allowed) or C(denied)), C(reason) and C(inconclusive_ok).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.adapters.filters import require_ir
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.verify import expect_flows as _expect_flows


def expect_flows(ir, flows, addresses, edges=None, peers=None):
    if ir is not None:
        require_ir("expect_flows", ir if isinstance(ir, dict) else [])
    try:
        return _expect_flows(ir, flows, addresses, edges, peers=peers)
    except PolicyError as exc:
        raise AnsibleFilterError(f"warden.egress.expect_flows: {exc}") from None


class FilterModule:
    def filters(self):
        return {"expect_flows": expect_flows}
