# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: local_ids
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: Write the target's user and group numbers into its host policy
description:
  - A role's C(allow) entries may name local C(users) or C(groups). Names resolve on the
    target. Look each one up there with M(ansible.builtin.getent) (C(fail_key=false)) and
    pass the registered results here; the numbers are written into the policies'
    C(local_ids), and the rendered rules carry them.
  - A name the target does not know fails with the variable path of the allow entry that
    named it, before anything is rendered or loaded. With O(missing), the filter returns
    those errors instead, one line each, for an M(ansible.builtin.assert) that fails only
    the host that lacks the name.
  - The roles C(warden.egress.linux) and C(warden.egress.pf) do this in their C(users.yml).
options:
  _input:
    description: The target's Policy IRs (a list, as the roles hold them; edge policies name no users and pass through).
    type: list
    elements: dict
    required: true
  passwd:
    description: The registered result of a loop of M(ansible.builtin.getent) over the user names, C(database=passwd).
    type: raw
  group:
    description: The registered result of a loop of M(ansible.builtin.getent) over the group names, C(database=group).
    type: raw
  host:
    description: The target's name, for the error message.
    type: str
    required: true
  missing:
    description:
      - Return the names the target does not know instead of the policies, as a list of
        messages, one line each, naming the host, the variable path and the name; each name
        once, and an empty list when every name resolved.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Look up the users the policy names
  ansible.builtin.getent:
    database: passwd
    key: "{{ item }}"
    fail_key: false
  loop: "{{ __policies | map(attribute='local_ids.users', default={}) | map('list') | flatten | unique }}"
  register: __passwd

- name: Check that this host knows every name (fails this host alone, one line)
  ansible.builtin.assert:
    that: __missing | length == 0
    fail_msg: "{{ __missing | join('; ') }}"
    quiet: true
  vars:
    __missing: "{{ __policies | warden.egress.local_ids(passwd=__passwd, host=inventory_hostname, missing=true) }}"

- name: Write their numbers into the policies
  ansible.builtin.set_fact:
    __policies: "{{ __policies | warden.egress.local_ids(passwd=__passwd, host=inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description:
    - Copies of the policies with C(local_ids.users.NAME.id) and C(local_ids.groups.NAME.id) filled in.
    - With O(missing), the messages for the names the target does not know (strings).
  type: list
  elements: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.adapters.filters import require_ir
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import parse_bool
from ansible_collections.warden.egress.plugins.plugin_utils.compile.local_ids import getent_numbers, missing_local_ids, with_local_ids


def local_ids(policies, host, passwd=None, group=None, missing=False):
    if not isinstance(policies, list):
        raise AnsibleFilterError("warden.egress.local_ids: input is not a list of Policy IRs")
    if policies:
        require_ir("local_ids", policies)
    numbers = {"users": getent_numbers(passwd, "passwd"), "groups": getent_numbers(group, "group")}
    try:
        if parse_bool(missing, "missing"):
            return [f"warden.egress: host {host}: {exc}" for exc in missing_local_ids(policies, numbers, host)]
        return with_local_ids(policies, numbers, host)
    except PolicyError as exc:
        raise AnsibleFilterError(f"warden.egress: host {host}: {exc}") from None


class FilterModule:
    def filters(self):
        return {"local_ids": local_ids}
