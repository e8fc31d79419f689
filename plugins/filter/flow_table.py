# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: flow_table
author: warden.egress contributors (@warden-egress)
version_added: 0.1.0
short_description: Format verification results as a table of flows
description:
  - Turns the rows produced by the P(warden.egress.verify#role) role into an aligned text
    table (expected against observed, one line a flow) with a count at the end.
  - The result column is C(ok), C(MISMATCH), C(INCONCLUSIVE) (the outcome proves nothing and
    the flow does not accept that) or C(accepted) (inconclusive, accepted by the flow's
    C(inconclusive_ok)).
options:
  _input:
    description: Rows with C(host), C(name), C(src), C(dst), C(proto), C(port), C(expect), C(observed), C(outcome), C(ok).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Print the flow table
  ansible.builtin.debug:
    msg: "{{ rows | warden.egress.flow_table }}"
"""

RETURN = r"""
_value:
  description: The table text.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.oracle.report import flow_table as _flow_table


def flow_table(rows):
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise AnsibleFilterError("warden.egress.flow_table: input must be a list of result rows")
    return _flow_table(rows)


class FilterModule:
    def filters(self):
        return {"flow_table": flow_table}
