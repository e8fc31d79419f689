#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: explain_flow
short_description: Judge one flow by every egress policy on its path, and name the deciding rules
version_added: 0.5.0
description:
  - Compiles the whole site from the inventory, as M(warden.egress.site_compile) does, and judges one flow by
    every policy it crosses, with the reference semantics of P(warden.egress.explain#filter).
  - The path of a flow from O(src) is the source host's own policy, when O(src) is an address of an inventory
    host with O(warden.egress.linux#role:main:egress_role), then the edge policy of every gateway (a host with
    O(warden.egress.linux#role:main:egress_edge), on any platform) whose inside prefixes hold O(src).
  - A source that is no inventory host's address and lies in no C(egress_segments) prefix, or that crosses no
    policy, is an error, as is any bad value, named with the variable and the value.
  - The playbook C(warden.egress.explain) runs it with the flow given on the command line. See docs/explain.md.
  - A bad part of the flow is named as the option was given (O(dport) given as C(port) is C(port)).
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Reads the inventory only; the same in check mode.
  diff_mode:
    support: none
    description: Returns no diff.
  platform:
    support: full
    description: Runs on the controller only (an action plugin); no host is contacted.
    platforms: all
options:
  src:
    description: The source address of the flow.
    type: str
    required: true
  dst:
    description: The destination address of the flow (the same address family as O(src)).
    type: str
    required: true
  dport:
    description: The destination port (1-65535); required for C(tcp) and C(udp), not given for C(icmp).
    type: int
    aliases: [port]
  proto:
    description: The protocol (C(icmp) is an echo request).
    type: str
    choices: [tcp, udp, icmp]
    default: tcp
  user:
    description:
      - The local user (a name or a number) whose process sends the flow, as the source host's own policy sees
        it. An allow entry limited to C(users) lets out only the flows of its users.
      - Name the user as the role does. The numbers of names are looked up on the host, not here, so a number
        matches only an entry that names that number.
      - Left out, the flow comes from no local user's socket, and no allow entry with C(users) or C(groups)
        matches it. An edge policy does not see who sent a flow.
    type: str
  group:
    description: The group (a name or a number) of the process that sends the flow, as O(user) for C(groups).
    type: str
notes:
  - This is an action that runs on the controller; it has no effect on any host.
seealso:
  - module: warden.egress.site_compile
"""

EXAMPLES = r"""
- name: Would 198.51.100.10 reach 203.0.113.5 on port 443, and which rules decide?
  warden.egress.explain_flow:
    src: 198.51.100.10
    dst: 203.0.113.5
    port: 443
  register: __explained

- name: May www-data on the mail server send mail to the relay? (the role lets only postfix)
  warden.egress.explain_flow:
    src: 198.51.100.11
    dst: 203.0.113.25
    port: 25
    user: www-data

- name: One line per policy on the path, then the overall verdict
  ansible.builtin.debug:
    msg: "{{ __explained.lines }}"
"""

RETURN = r"""
verdict:
  description: C(allowed) when every policy on the path lets the flow out on the wire, else C(denied).
  returned: success
  type: str
  sample: denied
source:
  description: Who sends the flow, C(kind) (C(host) or C(segment)), C(name) and C(roles).
  returned: success
  type: dict
  sample: {"kind": "host", "name": "web1", "roles": ["web_server"]}
policies:
  description:
    - Each policy on the path, in the order the flow meets it, with what P(warden.egress.explain#filter) returns
      (C(verdict), C(denied), C(origin), C(reason), C(rule_index), C(iif), C(oif)).
    - C(host) is the inventory host whose policy it is, C(kind) C(host) or C(edge), C(platform) what enforces
      it and C(mode) C(enforce) or C(audit).
  returned: success
  type: list
  elements: dict
  sample: [{"host": "gw1", "kind": "edge", "platform": "nftables", "mode": "enforce", "verdict": "drop", "denied": true,
            "origin": "default", "reason": "default deny: no rule allows this flow", "rule_index": null, "iif": "eth0", "oif": "eth1"}]
flow:
  description: The flow as judged (C(src), C(dst), C(proto), C(dport), and C(user) and C(group) when given).
  returned: success
  type: dict
  sample: {"src": "198.51.100.10", "dst": "203.0.113.5", "proto": "tcp", "dport": 443}
lines:
  description: The flow, one readable line per policy (its verdict and deciding rule), and the overall verdict.
  returned: success
  type: list
  elements: str
  sample:
    - "flow tcp/443 from 198.51.100.10 (host web1, role web_server) to 203.0.113.5"
    - "web1: host policy (nftables): ALLOWED by rule 9 (role:web_server): role web_server: https to any"
    - "overall: ALLOWED by every policy on the path (1)"
"""
