# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the compiler's inputs out of Ansible's hostvars (private to the collection)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import HAS_NETADDR
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError

# The variables the compiler reads, as the host sees them.
POLICY_VARIABLES = (
    "egress_trusted_prefixes",
    "egress_upstreams",
    "egress_services",
    "egress_roles",
    "egress_exceptions",
    "egress_log",
    "egress_mode",
    "egress_platform",
    "egress_role",
    "egress_table",
    "egress_edge",
    "egress_segments",
    "egress_exception_warn_days",
    "egress_site_hosts",
    "egress_dns",
    "egress_replies",
    "egress_serves_without_ssh",
    # How Ansible reaches the host: a policy that drops the replies of its SSH session is refused.
    "ansible_connection",
    "ansible_port",
    "ansible_ssh_port",
)


def host_addresses(hostvars: Mapping):
    """A lookup: inventory host name -> its egress_addresses (or ansible_host if an IP), or None."""

    def lookup(name: str):
        if name not in hostvars:
            return None
        hv = hostvars[name]
        addresses = hv.get("egress_addresses")
        if addresses:
            return addresses
        candidate = hv.get("ansible_host")
        try:
            ipaddress.ip_address(str(candidate))
        except ValueError:
            return []
        return [str(candidate)]

    return lookup


TEMPLATE_MARKS = ("{{", "{%", "{#")


def holds_template(value: object) -> bool:
    """Whether ``value`` (a string, or a container of them) has any Jinja mark in it."""
    if isinstance(value, str):
        return any(mark in value for mark in TEMPLATE_MARKS)
    if isinstance(value, Mapping):
        return any(holds_template(k) or holds_template(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_template(v) for v in value)
    return False


def read_values(raw: Mapping, names, render, checked: dict | None = None) -> dict:
    """The variables of ``names`` that ``raw`` sets, as the inventory holds them, except that a
    value holding a template is passed through ``render(name, value)``. ``checked``, kept
    from one host to the next, remembers what each value object held: a site-wide value is
    one object shared by every host, and looking through a 5,000-prefix list once per host
    costs more than compiling it."""
    out = {}
    for name in names:
        if name not in raw:
            continue
        value = raw[name]
        if checked is None:
            templated = holds_template(value)
        else:
            seen = checked.get(id(value))
            if seen is None or seen[0] is not value:  # the value is kept, so its id is not reused
                seen = checked[id(value)] = (value, holds_template(value))
            templated = seen[1]
        out[name] = render(name, value) if templated else value
    return out


def policy_inputs(hostvars: Mapping, target: str) -> dict:
    """The egress_* variables of ``target`` (only those that are set). Values read as the
    inventory holds them when they hold no template: templating a site's large upstream
    lists again for every host costs more than compiling it."""
    raw = hostvars.raw_get(target) if hasattr(hostvars, "raw_get") else hostvars[target]
    templated: list = []  # the host's templated variables, got once (getting them costs a whole variable merge)

    def render(name, value):
        if not templated:
            templated.append(hostvars[target])
        return templated[0][name]

    return read_values(raw, POLICY_VARIABLES, render)


def host_roles(hostvars: Mapping, hosts: list) -> dict:
    """Every host of ``hosts`` that has an egress_role, with that value."""
    out = {}
    for name in hosts:
        if name in hostvars:
            role = hostvars[name].get("egress_role")
            if role is not None:
                out[name] = role
    return out


def compile_target(filter_name: str, label: str, hostvars: Mapping, target: str, build: Callable) -> dict:
    """What a compiling filter does around its compiler: check the controller and the target,
    call ``build(inputs, addresses)`` and turn a bad value into the filter's error."""
    if not HAS_NETADDR:
        raise AnsibleFilterError(f"warden.egress.{filter_name} needs the Python package netaddr on the controller")
    if not isinstance(target, str) or target not in hostvars:
        raise AnsibleFilterError(f"warden.egress.{filter_name}: target {target!r} is not an inventory host")
    try:
        return build(policy_inputs(hostvars, target), host_addresses(hostvars))
    except PolicyError as exc:
        raise AnsibleFilterError(f"warden.egress: {label} {target}: {exc}") from None


def inventory_inputs(hostvars: Mapping, hosts: list) -> tuple[dict, Callable]:
    """What compile_site takes, read from Ansible's hostvars: each host's egress_* variables
    (its egress_verify_flows too) and an address lookup."""
    host_vars = {}
    for host in hosts:
        if host in hostvars:
            host_vars[host] = policy_inputs(hostvars, host)
            flows = hostvars[host].get("egress_verify_flows")
            if flows:
                host_vars[host]["egress_verify_flows"] = flows
    return host_vars, host_addresses(hostvars)
