# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: to_nftables
author: warden.egress contributors (@warden-egress)
version_added: 0.1.0
short_description: Render a Policy IR as an nftables ruleset
description:
  - Returns one C(nft -f) file that replaces only the collection's own table in one
    transaction, for P(warden.egress.nft_apply#module).
  - Output is deterministic; each rule carries a comment naming its origin.
options:
  _input:
    description:
      - A Policy IR from P(warden.egress.policy#filter) or P(warden.egress.edge_policy#filter),
        or a list of them with different hooks (a gateway's own host policy and its edge
        policy), rendered into one table.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Render the host's nftables ruleset
  ansible.builtin.set_fact:
    __ruleset: "{{ __policy | warden.egress.to_nftables }}"
"""

RETURN = r"""
_value:
  description: The ruleset text.
  type: str
"""

from ansible_collections.warden.egress.plugins.plugin_utils.adapters.filters import render_ir
from ansible_collections.warden.egress.plugins.plugin_utils.render.nftables import render


def to_nftables(ir):
    return render_ir("to_nftables", render, ir)


class FilterModule:
    def filters(self):
        return {"to_nftables": to_nftables}
