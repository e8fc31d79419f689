# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: policies
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: An inventory host's Policy IRs, from the run's site compile or compiled here
description:
  - Returns the Policy IRs of each inventory host given. With O(site_dir), they are read from
    C(HOST.json) in that directory, which M(warden.egress.site_compile) wrote for this run;
    without it, they are compiled here, by the compiler of the P(warden.egress.policy#filter)
    and P(warden.egress.edge_policy#filter) filters, and a bad value fails with their message
    (the host, the variable path and the value).
  - Compiled here, a host's IRs are its host policy when it has C(egress_role), then its edge
    policy when it has C(egress_edge); that is also the order M(warden.egress.site_compile) writes.
  - Read from O(site_dir), the file must hold a list of Policy IRs of that host, at most one
    of each kind; anything else (a file of another host, another schema, not JSON, missing)
    is an error naming the file. What is read is never templated.
  - The roles C(warden.egress.linux), C(warden.egress.pf), C(warden.egress.network_acl) and
    C(warden.egress.verify) get their policies through it (O(site_dir) is their
    C(egress_site_dir)).
options:
  _terms:
    description: Inventory host names.
    type: list
    elements: str
    required: true
  kind:
    description:
      - C(all), every Policy IR of each host, host policy first; use C(query) (or
        C(wantlist=true)), since C(lookup) returns a single IR bare.
      - C(host) or C(edge), the one IR of that kind of each host; a host that has none is an error.
    type: str
    choices: [all, host, edge]
    default: all
  site_dir:
    description:
      - The directory of this run's site compile (the C(dir) that M(warden.egress.site_compile) returns).
      - Empty, the policies are compiled here.
    type: str
    default: ""
notes:
  - Runs on the controller; the play's C(hostvars) and C(groups) are read from the task's variables.
seealso:
  - module: warden.egress.site_compile
  - plugin: warden.egress.policy
    plugin_type: filter
  - plugin: warden.egress.edge_policy
    plugin_type: filter
"""

EXAMPLES = r"""
- name: This host's policies, from the run's site compile when there is one
  ansible.builtin.set_fact:
    __policies: "{{ query('warden.egress.policies', inventory_hostname, site_dir=egress_site_dir | default('')) }}"

- name: The edge policy of this host's gateway
  ansible.builtin.set_fact:
    __edge: "{{ lookup('warden.egress.policies', egress_gateway.host, kind='edge', site_dir=egress_site_dir | default('')) }}"
"""

RETURN = r"""
_raw:
  description:
    - With O(kind=all), the Policy IRs of each host in turn (see docs/policy-ir.md in the collection).
    - With O(kind=host) or O(kind=edge), one Policy IR per host.
  type: list
  elements: dict
"""

import json
import os

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.warden.egress.plugins.filter.edge_policy import edge_policy
from ansible_collections.warden.egress.plugins.filter.policy import policy
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import ir_problem

KINDS = ("all", "host", "edge")
NAME = "warden.egress.policies"


def read_site_file(site_dir: str, host: str) -> list:
    """The Policy IRs the site compile wrote for ``host``, checked: a list of IRs of that
    host, at most one of each kind. Nothing read is templated."""
    path = os.path.join(os.path.expanduser(site_dir), f"{host}.json")
    try:
        with open(path, encoding="utf-8") as handle:
            irs = json.load(handle)
    except OSError as exc:
        raise AnsibleLookupError(f"{NAME}: cannot read {host}'s policies from the site compile: {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise AnsibleLookupError(f"{NAME}: {path} is not the site compile's JSON: {exc}") from None
    if not isinstance(irs, list) or not irs:
        raise AnsibleLookupError(f"{NAME}: {path} does not hold a list of Policy IRs")
    kinds = []
    for index, ir in enumerate(irs):
        problem = ir_problem(ir)
        if problem:
            raise AnsibleLookupError(f"{NAME}: {path}: [{index}] is not a Policy IR from warden.egress.site_compile: it {problem}")
        if ir["target"] != host:
            raise AnsibleLookupError(f"{NAME}: {path}: [{index}] is the {ir['kind']} policy of {ir['target']!r}, not of {host!r}")
        if ir["kind"] in kinds:
            raise AnsibleLookupError(f"{NAME}: {path}: [{index}] is a second {ir['kind']} policy")
        kinds.append(ir["kind"])
    return irs


def compile_here(hostvars, groups, host: str, own: object) -> list:
    """``host``'s IRs compiled here: the host policy if ``own`` (the host's variables) has
    egress_role, then the edge policy if it has egress_edge."""
    return (([policy(hostvars, host, groups)] if "egress_role" in own else [])
            + ([edge_policy(hostvars, host, groups)] if "egress_edge" in own else []))


def policies(variables, host: object, kind: str = "all", site_dir: str = "") -> list:
    """The Policy IRs of ``host`` (with ``kind`` host or edge, the one of that kind), read from
    ``site_dir`` when it is set, else compiled from ``variables`` (the task's: hostvars, groups)."""
    if kind not in KINDS:
        raise AnsibleLookupError(f"{NAME}: kind {kind!r} is not all, host or edge")
    if not isinstance(host, str) or not host:
        raise AnsibleLookupError(f"{NAME}: {host!r} is not an inventory host name")
    if site_dir:
        irs = read_site_file(site_dir, host)
        if kind == "all":
            return irs
        found = [ir for ir in irs if ir["kind"] == kind]
        if not found:
            raise AnsibleLookupError(f"{NAME}: {os.path.join(site_dir, host + '.json')} holds no {kind} policy of {host!r}")
        return found
    hostvars, groups = variables["hostvars"], variables["groups"]
    if kind == "host":
        return [policy(hostvars, host, groups)]
    if kind == "edge":
        return [edge_policy(hostvars, host, groups)]
    if host not in hostvars:
        raise AnsibleLookupError(f"{NAME}: {host!r} is not an inventory host")
    # this host's variables as its tasks see them (role parameters, play vars); another host's as hostvars has them
    own = variables if host == variables.get("inventory_hostname") else hostvars[host]
    return compile_here(hostvars, groups, host, own)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        kind, site_dir = self.get_option("kind"), self.get_option("site_dir") or ""
        out = []
        for host in terms:
            try:
                out.extend(policies(variables or {}, host, kind, str(site_dir)))
            except AnsibleLookupError:
                raise
            except AnsibleError as exc:  # the compiling filters' errors, their message kept
                raise AnsibleLookupError(exc.message) from None
        return out
