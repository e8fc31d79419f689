# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: to_pf
author: warden.egress contributors (@warden-egress)
version_added: 0.3.0
short_description: Render a Policy IR as the rules of the collection's pf anchor
description:
  - Returns the anchor file that P(warden.egress.pf_apply#module) loads with
    C(pfctl -a ANCHOR -f FILE), on OpenBSD or FreeBSD.
  - Every rule is C(quick), so the first rule that matches decides, as in the IR. Address sets
    become tables (C(persist)) holding both families. Each rule is labelled with its origin.
  - An edge policy marks where a packet came in with C(match in on IF tag WE_IN_IF) and
    judges it on its way out of an outside interface. The box's own traffic goes on to its
    host policy, when it has one.
  - The output is held to a strict pf grammar by the collection's tests, and a pf-semantics
    evaluator must agree with the policy's own oracle; see docs/pf.md for what is and is not
    verified against a real pf.
options:
  _input:
    description:
      - A Policy IR from P(warden.egress.policy#filter) or P(warden.egress.edge_policy#filter),
        or a list of a host and an edge policy for the same box.
    type: raw
    required: true
  anchor:
    description: The anchor's name (for the header line).
    type: str
    default: warden_egress
"""

EXAMPLES = r"""
- name: Render the box's pf anchor
  ansible.builtin.set_fact:
    __anchor_rules: "{{ __policy | warden.egress.to_pf }}"
"""

RETURN = r"""
_value:
  description: The anchor file's text.
  type: str
"""

from ansible_collections.warden.egress.plugins.plugin_utils.adapters.filters import render_ir
from ansible_collections.warden.egress.plugins.plugin_utils.render.pf import render


def to_pf(ir, anchor="warden_egress"):
    return render_ir("to_pf", lambda policy: render(policy, anchor=anchor), ir)


class FilterModule:
    def filters(self):
        return {"to_pf": to_pf}
