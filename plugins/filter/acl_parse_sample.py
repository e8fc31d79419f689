# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: acl_parse_sample
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: Cut IOS ACLs to a sample the vendor's parser reads in seconds
description:
  - Takes IOS ACLs as the device lists them (what P(warden.egress.acl_device_form#filter)
    returns) and keeps every ACL header, the first entry of each shape (what it matches and
    how, addresses and numbers aside), then entries spread evenly over all the ACLs' entries,
    about O(lines) entries in all, each with the remark before it.
  - Returns the text unchanged when it has no more entries than O(lines).
  - C(cisco.ios.ios_acls) with C(state=parsed) takes seconds per hundred lines and grows
    faster than the lines; P(warden.egress.acl_check#filter) with O(warden.egress.acl_check#filter:text)
    reads the whole text with its own reader and holds it to the vendor's parse of this sample.
options:
  _input:
    description: The ACLs' text.
    type: str
    required: true
  lines:
    description: About how many entries to keep.
    type: int
    default: 200
"""

EXAMPLES = r"""
- name: Parse a sample of the ACLs back
  cisco.ios.ios_acls:
    state: parsed
    running_config: "{{ __text | warden.egress.acl_parse_sample(200) }}"
"""

RETURN = r"""
_value:
  description: The sample, in the order of the text.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import ios_sample


def acl_parse_sample(text, lines=200):
    try:
        return ios_sample(str(text), lines)
    except ValueError as exc:
        raise AnsibleFilterError(f"warden.egress.acl_parse_sample: {exc}") from None


class FilterModule:
    def filters(self):
        return {"acl_parse_sample": acl_parse_sample}
