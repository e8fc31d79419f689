# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options the flow_junit and flow_html filters share: the rows and the run metadata."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  _input:
    description: Rows with C(host), C(name), C(src), C(dst), C(proto), C(port), C(expect), C(observed), C(outcome), C(ok),
      C(seconds) (how long the probe took; 0 when absent), and C(from_host) for an inbound flow.
    type: list
    elements: dict
    required: true
  run:
    description: The run metadata.
    type: dict
    required: true
    suboptions:
      time:
        description: When the report was made, in UTC, as C(YYYY-MM-DDTHH:MM:SS).
        type: str
        required: true
      inventory:
        description: The inventory sources.
        type: list
        elements: str
      commits:
        description: For each directory of the inventory and the playbook, C(dir) and C(commit) (the git commit hash, or null when it is not a git checkout).
        type: list
        elements: dict
      hosts:
        description: The hosts whose flows were tried.
        type: list
        elements: str
      missing:
        description: Hosts with flows to try that failed or were unreachable before trying them.
        type: list
        elements: str
      pending:
        description: Hosts of later batches not tried yet (the report is partial).
        type: list
        elements: str
"""
