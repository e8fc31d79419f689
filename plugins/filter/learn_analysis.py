# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: learn_analysis
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: Turn gathered audit log lines into findings, a suggested inventory change and a replay
description:
  - Reads the collection's own kernel log lines (C(PREFIX audit[host]:), C(PREFIX audit[edge]:), C(PREFIX deny:),
    C(PREFIX alert:), in the nftables and iptables LOG format, IPv4 and IPv6) from the journal records gathered from
    hosts (C(journalctl -k -o json)). Only lines the kernel wrote (C(_TRANSPORT=kernel), facility 0), complete, and
    with the prefix, tag and word the policy of their host writes in its mode are read as flows; the rest (text,
    lines user space wrote to /dev/kmsg, lines cut short) are counted by kind in the report.
  - Attributes each line to the host whose policy wrote it (its own output when its source is one of the host's
    addresses, a forwarded packet when the host's edge policy names its interfaces); a line it cannot attribute,
    also in a kernel log shared by containers, is a finding, never a guess.
  - Maps each source to its inventory host or segment and role, each destination to an upstream and a service,
    and aggregates per role.
  - Alert classes (IRC, backdoor ports, SMTP from a role that does not send mail), DNS, NTP and SMTP to servers
    the site does not designate, never-leave destinations and sources outside the inventory are findings, never
    suggestions.
  - Suggests new upstreams, services, role allows and exceptions (reason, owner and expiry left empty for a
    person), and replays every learned flow through the oracle against the current policy and the suggested one.
  - It changes nothing. See docs/learn.md.
options:
  _input:
    description:
      - "The gathered log per host, C({host: records}): the output of C(journalctl -k -o json) (one record per line),
        or a list of records. A line of text is no record: it is counted, never read as a flow."
      - "A host whose log could not be read maps to C({failed: why}), or to the registered result of the
        command that read it (unreachable, or a non-zero C(rc)); it is reported, the rest still learned."
    type: dict
    required: true
  hostvars:
    description: Ansible's C(hostvars).
    type: raw
    required: true
  hosts:
    description: The inventory hosts of the site (usually C(groups['all'])).
    type: list
    elements: str
    required: true
  groups:
    description: Ansible's C(groups) (for C(group:NAME) upstreams).
    type: dict
    required: true
  year:
    description: Not used (journal records carry their time); kept so that playbooks that give it still run.
    type: int
"""

EXAMPLES = r"""
- name: Analyse what the hosts logged
  ansible.builtin.set_fact:
    __learned: "{{ __logs | warden.egress.learn_analysis(hostvars, groups['all'], groups) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The analysis.
  type: dict
  contains:
    window:
      description: First and last time stamp seen (UTC, ISO 8601).
    hosts:
      description:
        - Per gathered host, lines read, flows, each kind of line not read as a flow, copies of a line read on another host,
          first/last seen, and why it failed.
    flows:
      description: Every distinct flow, with its source, role, service, upstreams, findings, count, first and last seen.
    roles:
      description: Per role, rows of service, destination, hosts, count, first and last seen and findings.
    findings:
      description: Flows that are never suggested, and why.
    suggestion:
      description: The suggested change (egress_upstreams, egress_services, egress_roles, egress_exceptions).
    replay:
      description: C(denied_now) and C(denied_suggested) of C(flows), the flows still denied and those not replayed.
    report:
      description: The report as Markdown.
    suggestion_yaml:
      description: The suggestion as commented YAML.
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.ansible.utils.plugins.module_utils.common.argspec_validate import AnsibleArgSpecValidator

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.learn.report import report_markdown, suggestion_yaml
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import inventory_inputs
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import learn


def learn_analysis(logs, hostvars, hosts, groups, year=None):
    valid, errors, params = AnsibleArgSpecValidator(
        data={"_input": logs, "hostvars": hostvars, "hosts": hosts, "groups": groups, "year": year},
        schema=DOCUMENTATION, schema_format="doc", name="learn_analysis").validate()
    if not valid:
        raise AnsibleFilterError(f"warden.egress.learn_analysis: {errors}")
    host_vars, addresses = inventory_inputs(hostvars, params["hosts"])
    try:
        result = learn(host_vars, addresses, params["groups"], params["_input"], year=params["year"])
    except PolicyError as exc:
        raise AnsibleFilterError(f"warden.egress.learn_analysis: {getattr(exc, 'label', 'site')} {getattr(exc, 'host', '')}: {exc}") from None
    result["report"] = report_markdown(result)
    result["suggestion_yaml"] = suggestion_yaml(result)
    return result


class FilterModule:
    def filters(self):
        return {"learn_analysis": learn_analysis}
