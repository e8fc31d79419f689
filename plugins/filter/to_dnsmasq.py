# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: to_dnsmasq
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: Render the local resolver that fills the DNS name sets of an nftables or iptables policy
description:
  - For policies whose upstreams hold DNS names (C(dns:NAME), C(dns:*.ZONE)), returns the
    configuration of the host's local dnsmasq, which puts every address it answers for a
    covered name in the policy's name sets before the client has the answer, and what the
    timer that empties each half of those sets runs. See the collection's docs/dns.md.
  - The policies' platform decides the kind of set, nftables sets (dnsmasq C(nftset)) or ipsets
    (dnsmasq C(ipset)).
  - Returns an empty C(conf) when no upstream of the policies holds a name.
options:
  _input:
    description:
      - A Policy IR, or the list of them that share one table (platform nftables or iptables).
    type: raw
    required: true
  resolv_file:
    description:
      - The file of servers the resolver forwards to when C(egress_dns.servers) is unset
        (the host's own servers, as they were before it asked the local resolver).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Render the local resolver's files
  ansible.builtin.set_fact:
    __resolver: "{{ __policies | warden.egress.to_dnsmasq(resolv_file='/etc/warden_egress/resolv.upstream') }}"
"""

RETURN = r"""
_value:
  description: The resolver's files.
  type: dict
  contains:
    conf:
      description: The dnsmasq configuration (empty when no upstream holds a name).
      type: str
    flush:
      description: For each half (C(a), C(b)), the text that empties it (C(nft -f) for nftables, C(ipset restore) for iptables).
      type: dict
    lifetime:
      description: Seconds between two emptyings (each half in turn); null without names.
      type: int
"""

from ansible_collections.warden.egress.plugins.plugin_utils.adapters.filters import render_ir
from ansible_collections.warden.egress.plugins.plugin_utils.render import iptables, nftables

RESOLVER = {"nftables": nftables.dnsmasq, "iptables": iptables.dnsmasq}


def _files(irs, resolv_file):
    platform = (irs[0] if isinstance(irs, list) else irs)["platform"]
    if platform not in RESOLVER:
        raise ValueError(f"egress_platform {platform!r} has no local resolver sets (nftables and iptables have)")
    return RESOLVER[platform](irs, resolv_file=resolv_file)


def to_dnsmasq(ir, resolv_file=""):
    return render_ir("to_dnsmasq", lambda irs: _files(irs, resolv_file), ir)


class FilterModule:
    def filters(self):
        return {"to_dnsmasq": to_dnsmasq}
