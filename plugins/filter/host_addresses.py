# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: host_addresses
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: An inventory host's own addresses, as the compiler reads them
description:
  - Returns the C(egress_addresses) of one inventory host, or, when it has none,
    C([ansible_host]) when that is an IP address, or an empty list.
  - The same reading as P(warden.egress.policy#filter) and M(warden.egress.site_compile) use
    for the host's addresses, so that what a policy names and what a flow leaves from agree.
options:
  _input:
    description: The play's C(hostvars).
    type: dict
    required: true
  target:
    description: The inventory host.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The addresses this host's flows leave from
  ansible.builtin.set_fact:
    __addresses: "{{ hostvars | warden.egress.host_addresses(inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: The host's addresses, as given in the inventory.
  type: list
  elements: str
  sample: ["198.51.100.11", "2001:db8:10::11"]
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import host_addresses as _host_addresses


def host_addresses(hostvars, target):
    if not isinstance(target, str) or target not in hostvars:
        raise AnsibleFilterError(f"warden.egress.host_addresses: target {target!r} is not an inventory host")
    return _host_addresses(hostvars)(target)


class FilterModule:
    def filters(self):
        return {"host_addresses": host_addresses}
