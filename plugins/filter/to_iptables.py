# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: to_iptables
author: warden.egress contributors (@warden-egress)
version_added: 0.2.0
short_description: Render a Policy IR as iptables and ip6tables rules with ipsets
description:
  - Returns the files that P(warden.egress.iptables_apply#module) loads, in the form a
    boot-time load uses (an ipset file, an C(iptables-restore) file and an
    C(ip6tables-restore) file).
  - The rules live in the collection's own filter-table chains (C(TABLE-output),
    C(TABLE-forward) and the verdict chains C(TABLE-deny), C(TABLE-alert),
    C(TABLE-ratelimit)), entered by one jump at the top of OUTPUT or FORWARD. Allowed
    traffic RETURNs to the built-in chain, so rules an administrator keeps after the jump
    still apply.
  - Address sets and interface lists are ipsets whose names carry a generation (a hash of
    the rendering), so a new policy never shares a set with the one it replaces.
  - Output is deterministic; each rule carries a comment naming its origin.
options:
  _input:
    description:
      - A Policy IR from P(warden.egress.policy#filter) or P(warden.egress.edge_policy#filter),
        or a list of them with different hooks (a gateway's own host policy and its edge
        policy).
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Render the host's iptables rules
  ansible.builtin.set_fact:
    __ruleset: "{{ __policy | warden.egress.to_iptables }}"
"""

RETURN = r"""
_value:
  description:
    - C(ipset), C(ipv4) and C(ipv6) (file texts), C(table), C(generation) and C(chains)
      (the chains declared, in order).
  type: dict
"""

from ansible_collections.warden.egress.plugins.plugin_utils.adapters.filters import render_ir
from ansible_collections.warden.egress.plugins.plugin_utils.render.iptables import render


def to_iptables(ir):
    return render_ir("to_iptables", render, ir)


class FilterModule:
    def filters(self):
        return {"to_iptables": to_iptables}
