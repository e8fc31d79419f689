# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: acl_device_form
author: warden.egress contributors (@warden-egress)
version_added: 0.4.0
short_description: A vendor ACL module's rendered output in the form the device shows it
description:
  - Takes what a C(*_acls) module returned with C(state=rendered) and returns the text in
    the form the device lists its configuration, which is also the form the same module
    reads with C(state=parsed).
  - C(ios) puts each IPv6 entry's C(sequence N) first (the module writes it last, a form its
    own parser reads as an empty ACL). C(eos) joins the lines. C(junos) drops the NETCONF
    namespace, wraps the filters in C(<configuration>) and writes each address as the
    C(<name>) of its entry.
  - With O(junos_load=true), the C(junos) result is instead the IPv6 filter as it is loaded
    on the device with C(junipernetworks.junos.junos_config) (the module's C(inet6) filter with
    C(next-header) where the module writes C(protocol), which Junos refuses in C(inet6), marked
    to replace only that filter).
options:
  _input:
    description: The C(rendered) value of the module's result.
    type: raw
    required: true
  platform:
    description: C(ios), C(eos) or C(junos).
    type: str
    required: true
  junos_load:
    description: Return the C(junos) XML to load rather than the form C(parsed) reads.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The text a reviewer reads
  ansible.builtin.copy:
    content: "{{ __rendered.rendered | warden.egress.acl_device_form('ios') }}"
    dest: /srv/review/edge1.txt
    mode: "0644"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The text.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.render_acl import ios_device_form, junos_inet6_load, junos_running_config


def acl_device_form(rendered, platform, junos_load=False):
    if platform == "ios":
        return "\n".join(ios_device_form(list(rendered)))
    if platform == "eos":
        return "\n".join(rendered)
    if platform == "junos":
        try:
            return junos_inet6_load(rendered) if junos_load else junos_running_config(rendered)
        except ValueError as exc:
            raise AnsibleFilterError(f"warden.egress.acl_device_form: {exc}") from None
    raise AnsibleFilterError(f"warden.egress.acl_device_form: platform '{platform}' is not ios, eos or junos")


class FilterModule:
    def filters(self):
        return {"acl_device_form": acl_device_form}
