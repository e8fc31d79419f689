#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: learn_results
short_description: Learn from gathered kernel log records and write the results on the controller
version_added: 0.5.0
description:
  - Reads the kernel log records each host's task registered (C(journalctl -k -o json)) and, with
    O(resolver_records), its local resolver's records, learns from them as
    P(warden.egress.learn_analysis#filter) does (suggesting a name where the resolver answered one), replays the
    suggestion as P(warden.egress.learn_whatif#filter) does, and writes C(report.md), C(suggestion.yml),
    C(learned.json) and (with O(whatif)) C(whatif.md) to O(output_dir) on the controller, each only when its text
    changed.
  - The results stay inside the action; only a summary is returned, so a long window of logs costs no Ansible
    templating. The role C(warden.egress.learn) runs it; see docs/learn.md.
  - Fails, after writing the report, when no host's log could be read, naming each host and why.
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Learns and returns the summary; writes nothing.
  diff_mode:
    support: none
    description: Returns no diff.
  platform:
    support: full
    description: Runs on the controller only (an action plugin); no host is contacted.
    platforms: all
options:
  hosts:
    description: The hosts whose records to read (each host's registered result of reading its log).
    type: list
    elements: str
    required: true
  records:
    description: The name of the variable each host registered its log in.
    type: str
    required: true
  resolver_records:
    description:
      - The name of the variable each host registered its local resolver's journal records in
        (C(journalctl -u warden-egress-dns.service -o json)); a host whose task was skipped is left out.
      - A learned address that the resolver of the host that logged the flow answered for a name, before every line
        of the flow (within the lifetime of an answer), is suggested as C(dns:NAME) rather than as the address.
        Only records journald attributes to the unit's dnsmasq are read. See docs/learn.md, "Names".
      - Unset, names are not learned.
    type: str
  output_dir:
    description: The controller directory to write the results to (made when missing).
    type: path
    required: true
  whatif:
    description: Replay the suggestion flow by flow and write C(whatif.md).
    type: bool
    default: true
notes:
  - This is an action that runs on the controller; it has no effect on the target.
seealso:
  - module: warden.egress.whatif
"""

EXAMPLES = r"""
- name: Learn from every host's records and write the results
  warden.egress.learn_results:
    hosts: "{{ ansible_play_hosts_all }}"
    records: __learn_egress_journal
    resolver_records: __learn_egress_resolver
    output_dir: learned
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
headline:
  description: What enforcing today would deny, and with the suggestion (the report's first bold line).
  returned: always
  type: str
  sample: "**Enforcing today would deny 3 of the 3 flows seen; with the suggestion, 0.**"
written:
  description: The files written (those whose text changed); none in check mode.
  returned: always
  type: list
  elements: str
flows:
  description: How many distinct flows were learned.
  returned: always
  type: int
output_dir:
  description: Where the results are.
  returned: always
  type: str
"""
