#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_compile
short_description: Compile every host's and gateway's egress policy once, on the controller
version_added: 0.5.0
description:
  - Reads the egress_* variables of every inventory host, validates the whole site once and
    writes each target's Policy IRs (its host policy from O(warden.egress.linux#role:main:egress_role), its edge policy from
    O(warden.egress.linux#role:main:egress_edge)) as C(HOST.json) into a new directory under O(dest). The roles read a host's
    file instead of compiling the site again for each host.
  - The same compiler as the P(warden.egress.policy#filter) and P(warden.egress.edge_policy#filter) filters,
    so the policies are the same; the site-wide variables are parsed and merged once for the
    whole run, and each role's rules are built once.
  - A bad value anywhere fails the task, naming the host, the variable and the value, before
    any host is touched.
  - Variables are read as the inventory holds them; a value that contains a template is
    templated for its host.
  - Run it once (C(run_once)); it never contacts a host. Directories of earlier runs older
    than a day are removed.
  - On a site of more than 1,000 targets it says how far it is, at normal verbosity, as a count (how many
    hosts it has compiled of how many, and the seconds so far) every 1,000 hosts or every 5 seconds, and at the end.
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Runs in check mode.
    details: It writes only to the controller, in check mode too, so that the roles can read the policies.
  diff_mode:
    support: none
    description: Returns no diff.
  platform:
    support: full
    description: Runs on the controller only (an action plugin); the target is not contacted.
    platforms: all
options:
  dest:
    description: Controller directory under which each run makes its own C(site-*) directory (mode 0700).
    type: path
    required: true
  hosts:
    description:
      - The hosts to read; default every inventory host.
      - Only those with O(warden.egress.linux#role:main:egress_role) or O(warden.egress.linux#role:main:egress_edge) are compiled.
    type: list
    elements: str
notes:
  - This is an action that runs on the controller; it has no effect on the target.
seealso:
  - module: warden.egress.nft_apply
"""

EXAMPLES = r"""
- name: Compile the whole site once
  warden.egress.site_compile:
    dest: "{{ lookup('ansible.builtin.env', 'HOME') }}/.ansible/tmp/warden-egress-site"
  run_once: true
  register: __site

- name: Read this host's policies
  ansible.builtin.set_fact:
    __policies: "{{ lookup('ansible.builtin.file', __site.dir ~ '/' ~ inventory_hostname ~ '.json') | from_json }}"
  when: egress_role is defined or egress_edge is defined
"""

RETURN = r"""
dir:
  description: The directory this run wrote, one C(HOST.json) (a list of Policy IRs) per target.
  returned: success
  type: str
  sample: /home/ops/.ansible/tmp/warden-egress-site/site-k2j4x8aa
targets:
  description: How many hosts have policies.
  returned: success
  type: int
  sample: 7
policy_warnings:
  description: Per host, what the compiler warns about (expired or expiring exceptions, wide port ranges, ...).
  returned: success
  type: dict
  sample: {"ws1": ["egress_exceptions[0] (https for ws1, ws2) on ws1 expires on 2027-01-01, in 5 days; owner finance-it: renew or remove it"]}
warning_lines:
  description: "The same warnings as one list of lines, C(warden.egress: HOST: WARNING), in compile order."
  returned: success
  type: list
  elements: str
  sample: ["warden.egress: ws1: egress_exceptions[0] (https for ws1, ws2) on ws1 expires on 2027-01-01, in 5 days; owner finance-it: renew or remove it"]
plays:
  description:
    - The hosts of each play of C(playbooks/site.yml), in inventory order, among the play's hosts (C(--limit) applies).
    - C(linux), C(pf) and C(routers) hold the hosts with C(egress_role) or C(egress_edge), by C(egress_platform);
      C(verify) the hosts with C(egress_verify_flows). The plays take these lists instead of groups, so that no
      task runs once per host before them.
  returned: success
  type: dict
  sample: {"linux": ["mail1", "ws1", "gw1"], "pf": [], "routers": ["edge-ios"], "verify": ["mail1", "ws1"]}
canaries:
  description:
    - Per apply play (C(linux), C(pf), C(routers)), its first host of each C(egress_role) and platform (gateways with
      only C(egress_edge) count as role C(edge)); the canaries of C(egress_rollout=canary).
  returned: success
  type: dict
  sample: {"linux": ["mail1", "ws1", "gw1"], "pf": [], "routers": ["edge-ios"]}
seconds:
  description: How long the compile took.
  returned: success
  type: float
  sample: 0.42
"""
