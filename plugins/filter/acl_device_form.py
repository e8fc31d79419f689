# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: acl_device_form
author: warden.egress contributors (@warden-egress)
version_added: 0.4.0
short_description: A vendor ACL module's rendered output in the form the device shows it, or loads it
description:
  - Takes what a C(*_acls) module returned with C(state=rendered) and returns the text in
    the form the device lists its configuration, which is also the form the same module
    reads with C(state=parsed).
  - C(ios) puts each IPv6 entry's C(sequence N) first (the module writes it last, a form its
    own parser reads as an empty ACL). C(eos) joins the lines. C(junos) drops the NETCONF
    namespace, wraps the filters in C(<configuration>) and writes each address as the
    C(<name>) of its entry.
  - With O(load=true), the result is instead what the role loads in one change. C(ios) the
    C(src) text for C(cisco.ios.ios_config) (the object groups of O(object_groups), the ACL
    lines, then the binding lines of O(bindings)).
    C(eos) the command list of one configuration session for C(arista.eos.eos_command),
    ending with a commit, with O(timer) a C(commit timer). C(junos) the XML for
    C(junipernetworks.junos.junos_config) with both filters (the C(inet6) one with
    C(next-header) where the module writes C(protocol), which Junos refuses in C(inet6)),
    each marked to replace only that filter, and the bindings of O(bindings).
options:
  _input:
    description: The C(rendered) value of the module's result.
    type: raw
    required: true
  platform:
    description: C(ios), C(eos) or C(junos).
    type: str
    required: true
  load:
    description: Return the form the role loads rather than the form C(parsed) reads.
    type: bool
    default: false
  junos_load:
    description: The same as O(load), kept from version 0.4.0.
    type: bool
    default: false
  bindings:
    description: With O(load), the C(rendered) value of the C(*_acl_interfaces) module, loaded in the same change.
    type: raw
  object_groups:
    description:
      - C(ios) with O(load), the object groups the ACLs name, as the C(object_groups) of
        P(warden.egress.to_device_acls#filter) returns them; their lines come first.
    type: list
    elements: dict
  session:
    description: C(eos) with O(load), the configuration session's name.
    type: str
  timer:
    description: C(eos) with O(load), the commit timer C(HH:MM:SS); without, the session is committed at once.
    type: str
  replace:
    description:
      - C(eos) with O(load), the ACLs the session removes before it writes them again (a
        replacement in place), as a list of C([family, name]).
    type: list
    elements: list
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
  description: The text (the command list for C(eos) with O(load)).
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import parse_bool
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.eos import eos_session
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import ios_device_form, ios_load
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.junos import junos_load as junos_load_form, junos_running_config


def acl_device_form(rendered, platform, load=False, junos_load=False, bindings=None, session=None, timer=None, replace=None, object_groups=None):
    try:
        loading = parse_bool(load, "load") or parse_bool(junos_load, "junos_load")
        if platform == "ios":
            return ios_load(rendered, bindings, object_groups) if loading else "\n".join(ios_device_form(list(rendered)))
        if platform == "eos":
            return eos_session(session, rendered, bindings, timer or None, [tuple(r) for r in replace or []]) if loading else "\n".join(rendered)
        if platform == "junos":
            return junos_load_form(rendered, bindings) if loading else junos_running_config(rendered)
    except ValueError as exc:
        raise AnsibleFilterError(f"warden.egress.acl_device_form: {exc}") from None
    raise AnsibleFilterError(f"warden.egress.acl_device_form: platform '{platform}' is not ios, eos or junos")


class FilterModule:
    def filters(self):
        return {"acl_device_form": acl_device_form}
