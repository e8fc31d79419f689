# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: flow_junit
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: Format verification results as a JUnit XML report
description:
  - Turns the rows produced by the P(warden.egress.verify#role) role into a JUnit XML document that CI
    systems (Jenkins, GitLab) read - C(testsuites) with C(tests), C(failures) and C(errors) counts and
    C(time), holding one C(testsuite) with the same counts, C(skipped), C(time) and a C(timestamp), the
    run metadata as C(properties), and one C(testcase) per flow. The document is valid against the
    JUnit schema the Jenkins xUnit plugin checks (C(skipped) is not an attribute of C(testsuites)).
  - A testcase's C(time) is the row's C(seconds), how long the M(warden.egress.probe) took to try the
    flow (0 for a row without it, and for a host with no result); the suite's and the document's
    C(time) is their sum.
  - A testcase's C(classname) is the host that sent the flow (for an inbound flow, its C(from_host)), its
    C(name) the flow's name. A mismatch is a C(failure) (expected against observed); an inconclusive outcome
    that fails the host is an C(error) with its reason; one accepted by C(inconclusive_ok) is C(skipped) with
    its reason; a host in O(run.missing) is one C(error) testcase named "(no result)".
  - Every value is escaped; characters XML cannot hold are replaced by U+FFFD.
extends_documentation_fragment:
  - warden.egress.flow_report
"""

EXAMPLES = r"""
- name: Write the report
  ansible.builtin.copy:
    content: "{{ rows | warden.egress.flow_junit(report_run) }}"
    dest: reports/egress-report.xml
    mode: "0644"
  vars:
    report_run:
      time: "{{ now(utc=true, fmt='%Y-%m-%dT%H:%M:%S') }}"
      inventory: "{{ ansible_inventory_sources }}"
      hosts: "{{ ansible_play_hosts }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
_value:
  description: The XML document (UTF-8 declaration, ends with a newline).
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.oracle.flow_report import ReportError, junit_xml


def flow_junit(rows, run):
    try:
        return junit_xml(rows, run)
    except ReportError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"flow_junit": flow_junit}
