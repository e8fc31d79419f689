#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: whatif
short_description: List the flows whose verdict differs between the current inventory and a proposed one
version_added: 0.5.0
description:
  - Reads two whole inventories on the controller (the current one, by default the play's inventory sources, and a
    proposed one given by its paths, O(proposed), or as the same paths at a git ref, O(proposed_ref)), compiles every
    host's and gateway's policy from each, and judges under both every flow of a learn result (O(learned)), every
    host's C(egress_verify_flows) on either side, and flows drawn from every rule of both sides' policies.
  - A rule whose upstream holds DNS names is drawn to each name as well (C(any.ZONE) for C(dns:*.ZONE)), so a proposal
    that adds or removes C(dns:NAME) shows the flows to that name changing; those flows are listed by the name, and a
    verify flow to C(dns:NAME) is judged by its name. See docs/dns.md.
  - Returns every flow whose verdict differs, with the rule that decided on each side and the host's role on each side,
    and writes them as a Markdown page for a code review to O(dest).
  - Variables are read as the inventories hold them (host and group variables, C(group_vars) and C(host_vars)
    directories); a value that contains a template is templated in its host's variables. Extra variables of the run
    apply to neither side.
  - For O(proposed_ref), the proposed inventory is checked out with C(git worktree add --detach) into a temporary
    directory, which is removed afterwards, on failure too.
  - Bad input fails the task naming the option and its value; an inventory that does not compile fails with the
    compiler's own error, prefixed with the side (current or proposed) that failed.
  - It never contacts a host and never changes an inventory.
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Runs in check mode.
    details: In check mode it compares and returns the flows, but does not write O(dest).
  diff_mode:
    support: none
    description: Returns no diff.
  platform:
    support: full
    description: Runs on the controller only (an action plugin); the target is not contacted.
    platforms: all
options:
  current:
    description:
      - The current inventory's paths; default the play's inventory sources (C(ansible_inventory_sources)).
    type: list
    elements: path
  proposed:
    description:
      - The proposed inventory's path, or a list of paths (files or directories, as C(-i) takes them).
      - Exactly one of O(proposed) and O(proposed_ref) is required.
    type: raw
  proposed_ref:
    description:
      - A git ref (branch, tag or commit) of the repository that holds the current inventory; the proposed inventory
        is the current one's paths, relative to that repository, as they are at this ref.
    type: str
  learned:
    description:
      - A learn result (the C(learned.json) the C(warden.egress.learn) role writes)
        whose flows are judged as well.
    type: path
  dest:
    description:
      - The Markdown file to write on the controller.
      - Default C(whatif.md) beside the current inventory (in its directory), or in the current directory when the
        inventory is inside the collection. It is never written inside the collection.
    type: path
  from_vars:
    description:
      - Read O(proposed), O(proposed_ref), O(learned) and O(dest) from the play's variables C(whatif_proposed),
        C(whatif_proposed_ref), C(whatif_learned) and C(whatif_dest) (given with C(-e)), exactly as given, never
        templated. A branch name may hold C({{ }}) (git allows it); given as a templated option, Ansible would run it
        on the controller before this action sees it. Read this way, it is only the name of a ref.
      - The playbook C(warden.egress.whatif) sets it. Do not give those options as well.
    type: bool
    default: false
notes:
  - This is an action that runs on the controller; it has no effect on the target.
  - The playbook C(warden.egress.whatif) runs it; see docs/learn.md.
seealso:
  - module: warden.egress.site_compile
"""

EXAMPLES = r"""
- name: What would the proposed inventory change?
  warden.egress.whatif:
    proposed: "{{ playbook_dir }}/proposed/hosts.yml"
  register: __whatif

- name: What would the branch under review change?
  warden.egress.whatif:
    proposed_ref: origin/review
    learned: learned/learned.json
    dest: /tmp/whatif.md

- name: The ref and paths given with -e whatif_proposed_ref=... (and so on), never templated
  warden.egress.whatif:
    from_vars: true

- name: Say how many flows differ
  ansible.builtin.debug:
    msg: "{{ __whatif.summary }}"
"""

RETURN = r"""
dest:
  description: The Markdown file written (not written in check mode).
  returned: success
  type: str
  sample: /home/ops/site/whatif.md
flows:
  description: How many distinct flows were judged.
  returned: success
  type: int
  sample: 214
differ:
  description: How many flows change verdict.
  returned: success
  type: int
  sample: 2
changed_flows:
  description:
    - Each flow whose verdict differs, with C(host), C(role) (the host's role on each side, C(client → mail_server) when
      it changed), C(kind) (host or edge policy), C(packet), C(origin) (learned, a verify flow, or the rule it was drawn
      from) and the C(before) and C(after) decisions (C(verdict), C(denied), C(origin) and C(reason), the deciding rule).
  returned: success
  type: list
  elements: dict
policies_added:
  description: Policies only the proposed inventory has (C(HOST host) or C(HOST edge)).
  returned: success
  type: list
  elements: str
policies_removed:
  description: Policies only the current inventory has.
  returned: success
  type: list
  elements: str
summary:
  description: One line saying how many flows differ, then one line per flow.
  returned: success
  type: list
  elements: str
  sample: ["1 flow differs (of 214 judged)"]
markdown:
  description: The page written to O(dest).
  returned: success
  type: str
"""
