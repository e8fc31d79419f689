#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: network_acl_step
short_description: One controller-side step of the network_acl role (internal)
version_added: 0.5.0
description:
  - Internal to the C(warden.egress.network_acl) role, which runs it between the vendor modules'
    tasks; not a stable interface, its options and results may change in any release. It
    replaces the filters C(acl_device_form), C(acl_parse_sample), C(acl_check), C(acl_pending)
    and C(acl_bound) of earlier releases (docs/network-acl.md, Porting).
  - O(step=device_form), a C(*_acls) module's C(rendered) output in the form the device lists
    it, which is also the form the module reads with C(state=parsed) (C(ios) puts each IPv6
    entry's C(sequence N) first; C(junos) writes the device's C(<configuration>)). With
    O(load=true), what the role loads in one change instead (C(ios) the C(src) text for
    C(cisco.ios.ios_config); C(eos) the command list of one configuration session; C(junos)
    the XML for C(junipernetworks.junos.junos_config)).
  - O(step=parse_sample), IOS ACL text cut to about O(sample_lines) entries, every shape of
    entry kept, for C(cisco.ios.ios_acls) with C(state=parsed) (slow on long text).
  - O(step=check), the ACLs a C(*_acls) module read back with C(state=parsed), evaluated
    first-match on O(count) flows drawn from O(policy) and compared with the policy's oracle;
    returns every flow on which they disagree.
  - O(step=pending), what the device says waits for confirmation, from one show command's
    output; output it cannot read is an error, never an empty list.
  - O(step=bound), the ACL names bound C(out) on O(interface), per address family, from what a
    C(*_acl_interfaces) module gathered or from EOS C(show running-config) text.
  - O(step=read_acls), the collection's ACLs in an IOS router's C(show running-config | section access-list)
    output (O(text)), read strictly, as C(cisco.ios.ios_acls) returns them with C(state=gathered) (which
    takes minutes on thousands of entries). A line of one of the collection's ACLs it does not read whole is
    an error naming it, never an ACL left out; the sections of other ACLs are not read.
  - Runs on the controller; the device is never contacted.
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Runs in check mode; it changes nothing anywhere.
  diff_mode:
    support: none
    description: Returns no diff.
  platform:
    support: full
    description: Runs on the controller only (an action plugin); the device is not contacted.
    platforms: all
options:
  step:
    description: The step to run.
    type: str
    required: true
    choices: [device_form, parse_sample, check, pending, bound, read_acls]
  platform:
    description: The device's platform (O(step=device_form), O(step=check), O(step=pending)).
    type: str
    choices: [ios, eos, junos]
  rendered:
    description: O(step=device_form), the C(rendered) value of the C(*_acls) module's result.
    type: raw
  load:
    description: O(step=device_form), return the form the role loads rather than the form C(parsed) reads.
    type: bool
    default: false
  bindings:
    description: O(step=device_form) with O(load), the C(rendered) value of the C(*_acl_interfaces) module, loaded in the same change.
    type: raw
  object_groups:
    description:
      - O(step=device_form), C(ios) with O(load), the object groups the ACLs name, as the C(object_groups) of
        P(warden.egress.to_device_acls#filter); their lines come first.
    type: list
    elements: dict
  session:
    description: O(step=device_form), C(eos) with O(load), the configuration session's name.
    type: str
  timer:
    description: O(step=device_form), C(eos) with O(load), the commit timer C(HH:MM:SS); without, the session is committed at once.
    type: str
  replace:
    description:
      - O(step=device_form), C(eos) with O(load), the ACLs the session removes before it writes them again (a
        replacement in place), as a list of C([family, name]).
    type: list
    elements: list
  text:
    description:
      - The ACLs as the device lists them (what O(step=device_form) returns), IOS only.
      - O(step=parse_sample), the text to cut.
      - O(step=check), the whole text of which O(parsed) is the vendor's parse of the sample; the check then reads
        every line with its own strict reader, requires the vendor's parse to read each sampled entry as it does, and
        decides the flows on what it read. Without it, the flows are decided on O(parsed).
      - O(step=read_acls), the router's C(show running-config | section access-list) output (C(stdout[0]) of
        C(cisco.ios.ios_command)).
    type: str
  sample_lines:
    description: O(step=parse_sample) and O(step=check) with O(text), about how many entries the sample keeps.
    type: int
    default: 200
  parsed:
    description: O(step=check), the C(parsed) value of the C(*_acls) module's result.
    type: list
    elements: dict
  policy:
    description: O(step=check), the edge Policy IR the ACLs were rendered from.
    type: dict
  count:
    description: O(step=check), how many flows to sample.
    type: int
    default: 2000
  names:
    description:
      - O(step=check), the ACL names per family (C(ipv4), C(ipv6)), as P(warden.egress.to_device_acls#filter)
        returns them; C(WARDEN-EGRESS-V4) and C(WARDEN-EGRESS-V6) when omitted.
    type: dict
  object_group_lines:
    description:
      - O(step=check), C(ios), the object groups the ACLs name, as the device lists them (the
        C(object_group_lines) of P(warden.egress.to_device_acls#filter)). An entry naming a group not given,
        or a line of them the check does not read, is an error.
    type: list
    elements: str
  output:
    description:
      - O(step=pending), the show command's output (C(stdout[0]) of the C(*_command) module) - C(ios)
        C(show archive config rollback timer), C(eos) C(show configuration sessions detail) as JSON,
        C(junos) C(show system commit).
    type: raw
  gathered:
    description: O(step=bound), the C(gathered) value of a C(*_acl_interfaces) module's result, or EOS C(show running-config) text.
    type: raw
  interface:
    description: O(step=bound), the interface, as the device names it; without it, every binding is returned.
    type: str
notes:
  - This is an action that runs on the controller.
  - Options that belong to another step are refused.
seealso:
  - plugin: warden.egress.to_device_acls
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Hold the parsed-back ACLs against the policy
  warden.egress.network_acl_step:
    step: check
    platform: eos
    parsed: "{{ __parsed.parsed }}"
    policy: "{{ __policy }}"
  register: __checked

- name: Refuse to stack a change on one that waits for confirmation
  warden.egress.network_acl_step:
    step: pending
    platform: junos
    output: "{{ __commits.stdout[0] }}"
  register: __waiting
  failed_when: __waiting.pending | length > 0
"""

RETURN = r"""
form:
  description: The text (the command list for C(eos) with O(load)).
  returned: O(step=device_form)
  type: raw
  sample: "ip access-list WARDEN-EGRESS-V4\n10 remark site baseline\n20 deny ip any 10.0.0.0/8 log"
sample:
  description: The sample, in the order of the text; the text itself when it has no more entries than O(sample_lines).
  returned: O(step=parse_sample)
  type: str
  sample: "ip access-list extended WARDEN-EGRESS-V4\n 10 remark baseline\n 20 deny ip any 10.0.0.0 0.255.255.255 log"
disagree:
  description: The flows on which the ACLs and the policy disagree, each with C(flow), C(oracle) (accept or drop) and C(acl) (permit or deny).
  returned: O(step=check)
  type: list
  elements: dict
  sample: [{"flow": {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "tcp", "dport": 25}, "oracle": "accept", "acl": "deny"}]
pending:
  description: What waits for confirmation (EOS session names); empty when nothing does.
  returned: O(step=pending)
  type: list
  elements: str
  sample: ["rollback timer"]
bound:
  description: With O(interface), the ACL name bound out per family (a family with none is absent); else every binding, as C(*_acl_interfaces) gathers them.
  returned: O(step=bound)
  type: raw
  sample: {"ipv4": "WARDEN-EGRESS-V4-3", "ipv6": "WARDEN-EGRESS-V6-3"}
gathered:
  description:
    - The collection's ACLs on the router, as C(cisco.ios.ios_acls) returns them with C(state=gathered) (an
      C(afi), then its C(acls), each with its C(aces); remarks left out); empty when it holds none.
  returned: O(step=read_acls)
  type: list
  elements: dict
  sample: [{"afi": "ipv4", "acls": [{"name": "WARDEN-EGRESS-V4-3", "acl_type": "extended", "aces": [
      {"sequence": 10, "grant": "deny", "protocol": "ip", "source": {"any": true}, "destination": {"any": true}, "log": {"set": true}}]}]}]
"""
