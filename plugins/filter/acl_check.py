# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: acl_check
author: warden.egress contributors (@warden-egress)
version_added: 0.4.0
short_description: Hold ACLs read back by a vendor module against the edge policy
description:
  - Takes what a C(*_acls) module returned with C(state=parsed), evaluates both of the
    collection's ACLs first-match on a sample of new flows drawn from the policy (every
    rule's sources, destinations and ports, and pairings of addresses outside them), and
    returns every flow on which the ACLs and the policy's oracle disagree.
  - An empty list means the ACLs decide every sampled flow as the policy does. Replies
    (C(established)) and the connection limit are outside the comparison, since a new flow
    never matches the one and an ACL has no equivalent of the other; so are flows to inside
    destinations, which never leave by the outside interface.
options:
  _input:
    description: The C(parsed) value of the module's result.
    type: list
    elements: dict
    required: true
  policy:
    description: The edge Policy IR the ACLs were rendered from.
    type: dict
    required: true
  platform:
    description: C(ios), C(eos) or C(junos).
    type: str
    required: true
  count:
    description: How many flows to sample.
    type: int
    default: 2000
  names:
    description:
      - The ACL names per family (C(ipv4), C(ipv6)), as P(warden.egress.to_device_acls#filter)
        returns them; C(WARDEN-EGRESS-V4) and C(WARDEN-EGRESS-V6) when omitted.
    type: dict
  object_groups:
    description:
      - C(ios), the object groups the ACLs name, as the device lists them (the
        C(object_group_lines) of P(warden.egress.to_device_acls#filter)). An entry naming a
        group not given, or a line of them this check does not read, is an error.
    type: list
    elements: str
  text:
    description:
      - C(ios), the ACLs as the device lists them (what P(warden.egress.acl_device_form#filter)
        returns), of which C(_input) is the vendor's parse of P(warden.egress.acl_parse_sample#filter)
        with the same O(sample_lines). The check then reads every line of O(text) with its own
        strict reader, requires the vendor's parse to read each sampled entry as it does, and
        decides the flows on what it read. Without it, the flows are decided on C(_input).
    type: str
  sample_lines:
    description: With O(text), the entries the sample was cut to.
    type: int
    default: 200
"""

EXAMPLES = r"""
- name: Check the parsed ACLs
  ansible.builtin.assert:
    that: __parsed.parsed | warden.egress.acl_check(policy=__policy, platform='eos') | length == 0
"""

RETURN = r"""
_value:
  description: The disagreeing flows, each with C(flow), C(oracle) (accept or drop) and C(acl) (permit or deny).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import DEVICE_PLATFORMS
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import plain
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import NAMES, disagreements, sample_flows
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import read_parsed
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import held_to_text, ios_sample, read_ios, read_ios_object_groups, read_ios_text


def _read(parsed, platform: str, object_groups, text, sample_lines: int) -> dict:
    groups = None if object_groups is None else [str(line) for line in object_groups]
    if text is None:
        return read_parsed(parsed, platform, groups)
    if platform != "ios":
        raise AnsibleFilterError(f"warden.egress.acl_check: text is read on ios only, not on {platform}")
    groups = None if groups is None else read_ios_object_groups(groups)
    whole = read_ios_text(str(text), groups)
    held_to_text(read_ios(parsed, groups), read_ios_text(ios_sample(str(text), sample_lines), groups), whole)
    return whole


def acl_check(parsed, policy, platform, count=2000, names=None, object_groups=None, text=None, sample_lines=200):
    if platform not in DEVICE_PLATFORMS:
        raise AnsibleFilterError(f"warden.egress.acl_check: platform '{platform}' is not ios, eos or junos")
    # plain data first: the check walks both structures thousands of times, and each item
    # access on Ansible's lazily templated containers costs a template check (100 roles x 100
    # prefixes: 36 s with them, 1 s without)
    parsed, policy = plain(parsed), plain(policy)
    try:
        acls = _read(parsed or [], platform, object_groups, text, sample_lines)
        names = dict(names or NAMES)
        missing = [name for family, name in names.items() if not acls.get((family, name))]
        if missing:
            raise AnsibleFilterError(f"warden.egress.acl_check: the parsed configuration has no entries in {', '.join(missing)}")
        return disagreements(policy, acls, sample_flows(policy, int(count)), names)
    except (KeyError, ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"warden.egress.acl_check: {exc}") from None


class FilterModule:
    def filters(self):
        return {"acl_check": acl_check}
