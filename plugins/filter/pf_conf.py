# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: pf_conf
author: warden.egress contributors (@warden-egress)
version_added: 0.3.0
short_description: A complete /etc/pf.conf that hooks the collection's anchor in
description:
  - For the opt-in mode where the collection manages the whole C(/etc/pf.conf). It skips
    loopback, hooks in the anchor and loads its file, adds the administrator's own lines, and
    passes what the anchor does not decide (inbound, and outbound it has no rule for).
options:
  _input:
    description: The anchor's name.
    type: str
    required: true
  anchor_file:
    description: The anchor file pf.conf loads.
    type: str
    default: /etc/pf.anchors/warden_egress
  extra:
    description: The administrator's own pf rules, one per item, placed after the anchor.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Write the whole pf.conf
  ansible.builtin.copy:
    content: "{{ 'warden_egress' | warden.egress.pf_conf(anchor_file='/etc/pf.anchors/warden_egress') }}"
    dest: /etc/pf.conf
    mode: "0600"
    validate: pfctl -nf %s
"""

RETURN = r"""
_value:
  description: The pf.conf text.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.render.pf import render_pf_conf


def pf_conf(anchor, anchor_file="/etc/pf.anchors/warden_egress", extra=None):
    try:
        return render_pf_conf(anchor, anchor_file, list(extra or []))
    except ValueError as exc:
        raise AnsibleFilterError(f"warden.egress.pf_conf: {exc}") from None


class FilterModule:
    def filters(self):
        return {"pf_conf": pf_conf}
