# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: acl_pending
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: What a router or switch holds for confirmation, read from a show command
description:
  - Reads one show command's output and returns what is waiting for confirmation there,
    an empty list when nothing is.
  - C(ios), C(show archive config rollback timer) - C(["rollback timer"]) while a
    C(configure terminal revert timer) change waits for C(configure confirm).
  - C(eos), C(show configuration sessions detail) as JSON - the names of the sessions whose
    commit timer runs.
  - C(junos), C(show system commit) - C(["commit confirmed"]) while the latest commit waits
    for confirmation.
  - Output it cannot read is an error, never an empty list.
options:
  _input:
    description: The command's output (C(stdout[0]) of the C(*_command) module).
    type: raw
    required: true
  platform:
    description: C(ios), C(eos) or C(junos).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse to stack a second change on one waiting for confirmation
  ansible.builtin.assert:
    that: __timer.stdout[0] | warden.egress.acl_pending('ios') | length == 0
"""

RETURN = r"""
_value:
  description: What waits for confirmation (EOS session names); empty when nothing does.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.apply import pending


def acl_pending(output, platform):
    try:
        return pending(platform, output)
    except ValueError as exc:
        raise AnsibleFilterError(f"warden.egress.acl_pending: {exc}") from None


class FilterModule:
    def filters(self):
        return {"acl_pending": acl_pending}
