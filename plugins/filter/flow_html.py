# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: flow_html
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: Format verification results as a self-contained HTML page
description:
  - Turns the rows produced by the P(warden.egress.verify#role) role into one HTML page with no external
    reference (inline style, no script, a Content-Security-Policy that forbids loading anything) - the run
    metadata (time, inventory sources, git commit, hosts) and the flow table, with mismatches, inconclusive
    results and accepted inconclusive results in their own colours.
  - Every value is escaped with C(html.escape), so names and comments with C(<), C(&) or quotes show as text.
extends_documentation_fragment:
  - warden.egress.flow_report
"""

EXAMPLES = r"""
- name: Write the report
  ansible.builtin.copy:
    content: "{{ rows | warden.egress.flow_html(report_run) }}"
    dest: reports/egress-report.html
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
  description: The page.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.oracle.flow_report import ReportError, html_page


def flow_html(rows, run):
    try:
        return html_page(rows, run)
    except ReportError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"flow_html": flow_html}
