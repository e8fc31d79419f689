# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: explain
author: warden.egress contributors (@warden-egress)
version_added: 0.1.0
short_description: Say whether a policy lets a flow out, and which rule decided
description:
  - Evaluates a flow against a Policy IR with the collection's reference semantics (the
    oracle every renderer is tested against), and names the deciding rule.
  - For an edge policy (from P(warden.egress.edge_policy#filter)) the flow is judged as the
    gateway forwards it, with the interfaces it comes in and goes out by. Left out, they
    default to what a forwarded packet meets; the result names the interfaces used.
  - For a host policy, O(flow.direction=inbound) asks whether the host answers a connection
    opened to it from outside (what its roles serve), and O(flow.user) or O(flow.group) whether
    a flow sent by that local user's process gets out (allow entries limited to C(users) or
    C(groups)).
options:
  _input:
    description: A Policy IR from P(warden.egress.policy#filter).
    type: dict
    required: true
  flow:
    description: The flow to evaluate.
    type: dict
    required: true
    suboptions:
      src:
        description: Source address.
        type: str
        required: true
      dst:
        description: Destination address.
        type: str
        required: true
      proto:
        description: Protocol.
        type: str
        choices: [tcp, udp, icmp]
        default: tcp
      dport:
        description: Destination port (tcp and udp).
        type: int
        aliases: [port]
      ct_state:
        description:
          - Connection-tracking state of the packet (outbound flows; default C(new)).
        type: str
        choices: [new, established, related, invalid]
      direction:
        description:
          - C(outbound) is a packet the host sends on a connection it opens (or an edge forwards).
          - C(inbound) is a connection opened to the host from outside, O(flow.src) the client,
            O(flow.dst) the host and O(flow.dport) the port asked for; the host's answer is judged.
        type: str
        choices: [outbound, inbound]
        default: outbound
      sport:
        description: The client's source port, for an inbound flow (the host's answer goes to it).
        type: int
      user:
        description:
          - The local user (a name or a number) whose process sends the flow. Left out, the
            packet comes from no local user's socket, and no allow entry with C(users) matches it.
        type: str
      group:
        description: The group (a name or a number) of the process that sends the flow.
        type: str
      iif:
        description:
          - Interface the flow comes in by (edge policies).
          - Default for an edge, the inside interface whose prefixes hold O(flow.src); for a
            source in no inside prefix, the first outside interface when O(flow.dst) is inside,
            or else the only inside interface (a forged source). With several inside
            interfaces and a source in none of them, it must be given.
        type: str
      oif:
        description:
          - Interface the flow goes out by.
          - Default for an edge, the inside interface whose prefixes hold O(flow.dst), or else
            the first outside interface. Default for a host, C(lo) for a loopback destination,
            or else C(eth0) (a host policy only tells loopback apart).
        type: str
"""

EXAMPLES = r"""
- name: Why can't the mail server reach that web server?
  ansible.builtin.debug:
    msg: "{{ __policy | warden.egress.explain({'src': '192.0.2.11', 'dst': '198.51.100.80', 'dport': 80}) }}"

- name: Would the web server answer a connection to port 4444 (a listener nobody declared)?
  ansible.builtin.debug:
    msg: "{{ __policy | warden.egress.explain({'src': '203.0.113.9', 'dst': '192.0.2.11', 'dport': 4444, 'direction': 'inbound'}) }}"

- name: May www-data send mail? (the role lets only postfix send it)
  ansible.builtin.debug:
    msg: "{{ __policy | warden.egress.explain({'src': '192.0.2.11', 'dst': '198.51.100.25', 'dport': 25, 'user': 'www-data'}) }}"

- name: Would the gateway forward it? (in by the source's inside interface, out by the outside)
  ansible.builtin.debug:
    msg: "{{ __edge_policy | warden.egress.explain({'src': '192.0.2.70', 'dst': '198.51.100.80', 'dport': 6667}) }}"
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    verdict:
      description: C(accept) or C(drop) on the wire.
    denied:
      description: Whether the policy denies the flow (in audit mode denied flows are accepted and logged).
    origin:
      description: Where the deciding rule came from (C(baseline), C(role:NAME), C(exception:N), C(default)).
    reason:
      description: The deciding rule's comment.
    rule_index:
      description: Position of the deciding rule in the IR, or null for the default.
    iif:
      description: The interface the flow was judged to come in by (null for a host policy unless given).
    oif:
      description: The interface the flow was judged to go out by.
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.ansible.utils.plugins.module_utils.common.argspec_validate import AnsibleArgSpecValidator

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import Flow
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate


def explain(ir, flow):
    valid, errors, params = AnsibleArgSpecValidator(
        data={"_input": ir, "flow": flow}, schema=DOCUMENTATION, schema_format="doc", name="explain"
    ).validate()
    if not valid:
        raise AnsibleFilterError(f"warden.egress.explain: {errors}")
    # the keys as given (port or dport), with the values the validation read
    given = {k: v for k, v in params["flow"].items() if k in flow and v is not None}
    try:
        return evaluate(ir, Flow.from_mapping(given, "flow", aliases=True))
    except PolicyError as exc:
        raise AnsibleFilterError(f"warden.egress.explain: {exc}") from None


class FilterModule:
    def filters(self):
        return {"explain": explain}
