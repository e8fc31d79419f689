# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: acl_bound
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: The ACLs bound on the interfaces of a router or switch
description:
  - Takes what a C(*_acl_interfaces) module returned with C(state=gathered), or the text of
    an EOS C(show running-config), and returns the names of the ACLs bound C(out) on
    O(interface), per address family (C(ipv4), C(ipv6)); a family with no ACL bound out is
    absent.
  - Without O(interface), returns every binding in the shape C(*_acl_interfaces) gathers.
  - EOS text is read here because C(arista.eos.eos_acl_interfaces) reads only binding lines
    that start a line, and EOS indents them under their interface.
options:
  _input:
    description: The C(gathered) value of the module's result, or EOS C(show running-config) text.
    type: raw
    required: true
  interface:
    description: The interface, as the device names it.
    type: str
"""

EXAMPLES = r"""
- name: Check the outside interface uses the new ACLs
  ansible.builtin.assert:
    that: "__bound.gathered | warden.egress.acl_bound('GigabitEthernet0/1') == {'ipv4': 'WARDEN-EGRESS-V4-3', 'ipv6': 'WARDEN-EGRESS-V6-3'}"
"""

RETURN = r"""
_value:
  description: The ACL name bound out, per family (with O(interface)); else every binding.
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.apply import bound_out
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.eos import eos_bindings


def acl_bound(gathered, interface=None):
    if isinstance(gathered, str):
        gathered = eos_bindings(gathered)
    if not isinstance(gathered, list) or not all(isinstance(item, dict) for item in gathered):
        raise AnsibleFilterError(f"warden.egress.acl_bound: input is not the gathered list of an *_acl_interfaces module: {str(gathered)[:200]!r}")
    return gathered if interface is None else bound_out(gathered, interface)


class FilterModule:
    def filters(self):
        return {"acl_bound": acl_bound}
