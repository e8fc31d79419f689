# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: learn_whatif
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: List the flows whose verdict a proposed inventory change would change
description:
  - Compiles the site as the inventory holds it and as it would be with O(change) merged in, and judges under
    both every flow given (learned flows), every host's C(egress_verify_flows), and flows drawn from every rule
    of both sides' policies.
  - Returns every flow whose verdict differs, with the rule that decided on each side, and a Markdown table
    for a code review. It changes nothing.
options:
  _input:
    description: Ansible's C(hostvars).
    type: raw
    required: true
  hosts:
    description: The inventory hosts of the site (usually C(groups['all'])).
    type: list
    elements: str
    required: true
  groups:
    description: Ansible's C(groups).
    type: dict
    required: true
  change:
    description:
      - The proposed site-wide variables (C(egress_upstreams), C(egress_services) and C(egress_roles) merged
        by name over the inventory's, C(egress_exceptions) appended; any other C(egress_*) variable replaces the
        inventory's on every host). The suggestion of P(warden.egress.learn_analysis#filter) is one.
    type: dict
    required: true
  flows:
    description: Learned flows (the C(flows) of P(warden.egress.learn_analysis#filter)) to judge as well.
    type: list
    elements: dict
    default: []
  fill_blanks:
    description:
      - Judge an exception of O(change) whose C(reason), C(owner) or C(expires) is empty as if a person had
        filled them in (placeholders, for this comparison only), as the suggestion of
        P(warden.egress.learn_analysis#filter) leaves them.
      - When false, such an exception is an error, as it is for the compiler.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: What would the proposed change allow or deny that today's policy does not?
  ansible.builtin.debug:
    msg: "{{ (hostvars | warden.egress.learn_whatif(groups['all'], groups, lookup('ansible.builtin.file', 'proposed.yml') | from_yaml)).markdown }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The flows whose verdict differs.
  type: dict
  contains:
    flows:
      description: How many distinct flows were judged.
    changed:
      description: Each flow that changed, with C(host), C(kind) (host or edge policy), C(packet), C(origin) and the
        C(before) and C(after) decisions (verdict, denied, origin and reason of the deciding rule).
    policies_added:
      description: Policies only the proposed site has.
    policies_removed:
      description: Policies only the current site has.
    markdown:
      description: The answer as a Markdown table.
"""

import datetime

from ansible.errors import AnsibleFilterError
from ansible_collections.ansible.utils.plugins.module_utils.common.argspec_validate import AnsibleArgSpecValidator

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import inventory_inputs
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import apply_change
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.whatif import compare, whatif_markdown


def learn_whatif(hostvars, hosts, groups, change, flows=None, fill_blanks=False):
    valid, errors, params = AnsibleArgSpecValidator(
        data={"_input": hostvars, "hosts": hosts, "groups": groups, "change": change, "flows": flows or [], "fill_blanks": fill_blanks},
        schema=DOCUMENTATION, schema_format="doc", name="learn_whatif").validate()
    if not valid:
        raise AnsibleFilterError(f"warden.egress.learn_whatif: {errors}")
    host_vars, addresses = inventory_inputs(hostvars, params["hosts"])
    today = datetime.date.today()
    try:
        proposed = apply_change(host_vars, params["change"], today, fill_blanks=params["fill_blanks"])
        result = compare({"host_vars": host_vars, "addresses": addresses, "groups": params["groups"]},
                         {"host_vars": proposed, "addresses": addresses, "groups": params["groups"]},
                         params["flows"], today=today)
    except PolicyError as exc:
        side = getattr(exc, "side", "proposed")
        raise AnsibleFilterError(f"warden.egress.learn_whatif: {side} site, {getattr(exc, 'label', '')} {getattr(exc, 'host', '')}: {exc}") from None
    result["markdown"] = whatif_markdown(result)
    return result


class FilterModule:
    def filters(self):
        return {"learn_whatif": learn_whatif}
