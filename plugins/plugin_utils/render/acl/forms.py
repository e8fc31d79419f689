# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a vendor ACL module rendered, in the forms the device needs (private to the collection).

Two kinds of form:

* the form the device *lists* its configuration in, which is also what the module's
  ``state: parsed`` reads (``ios_device_form``, ``junos_running_config``);
* the form the role *loads* in one change, under the device's own safety net: the IOS
  ``src`` for ``cisco.ios.ios_config`` (sent after ``configure terminal revert timer``), the EOS
  configuration session with its commit timer for ``arista.eos.eos_command``, and the Junos
  XML for ``junipernetworks.junos.junos_config`` (a ``commit confirmed``).

Every configuration line comes from the vendor module's ``state: rendered``; only what no
module reaches is written here: the session and timer commands, and IOS object groups.
"""

from __future__ import annotations

import ipaddress
import re
import xml.dom.minidom

from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.base import GROUP_KINDS

NC_PREFIX = re.compile(r"(</?)nc:")
EOS_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def ios_device_form(lines: list) -> list:
    """cisco.ios rendered output as the device lists it: its IPv6 entries end in
    ``sequence N`` (``permit tcp any any eq smtp sequence 10 log``), a form its own parsed
    state reads as an ACL with no entries at all; the device shows ``sequence N`` first."""
    out, in_v6 = [], False
    for line in lines:
        if line.startswith("ipv6 access-list ") or line.startswith("ip access-list "):
            in_v6 = line.startswith("ipv6 ")
            out.append(line)
            continue
        words = line.split()
        if in_v6 and "sequence" in words and words.index("sequence") + 1 < len(words):
            at = words.index("sequence")
            number = words[at + 1]
            rest = words[:at] + words[at + 2:]
            out.append(" sequence " + number + " " + " ".join(rest))
        else:
            out.append(" " + line if in_v6 or not line.startswith("ip") else line)
    return out


def _lines(rendered) -> list:
    """A module's rendered commands as a list of lines (the modules return a list; a
    single string is split)."""
    if rendered is None:
        return []
    if isinstance(rendered, str):
        return [line for line in rendered.splitlines() if line.strip()]
    return [str(line) for line in rendered]


def _no_template(text: str, what: str) -> str:
    """The vendor's config action plugins template a ``src`` file before they send it: a
    Jinja delimiter in it would change what reaches the device, so it is refused."""
    found = re.search(r"\{\{|\{%|\{#", text)
    if found:
        raise ValueError(f"the {what} holds {found.group(0)!r}, which the module would read as a template")
    return text


def ios_object_group_lines(groups) -> list:
    """The lines that define ``groups`` (``render_acl.ios_render``'s ``object_groups``) as the
    device lists them: ``object-group network NAME`` with ``host A.B.C.D`` or ``A.B.C.D MASK``
    members, ``object-group v6-network NAME`` with ``host X:X::X`` or ``X:X::/N`` members.
    cisco.ios has no resource module for object groups; these lines and those of
    ``ios_delete_group_lines`` are the only IOS configuration warden writes itself."""
    out = []
    for group in groups or []:
        out.append(f"object-group {GROUP_KINDS[group['afi']]} {group['name']}")
        for member in group["members"]:
            net = ipaddress.ip_network(member)
            if net.num_addresses == 1:
                out.append(f" host {net.network_address}")
            elif net.version == 4:
                out.append(f" {net.network_address} {net.netmask}")
            else:
                out.append(f" {net}")
    return out


def ios_delete_group_lines(groups) -> list:
    """The lines that delete ``groups`` (each with ``afi`` and ``name``)."""
    return [f"no object-group {GROUP_KINDS[group['afi']]} {group['name']}" for group in groups or []]


def ios_load(acls, bindings=None, groups=None) -> str:
    """The ``src`` ``cisco.ios.ios_config`` sends (``match: none``) in one configuration
    change: the object groups the new generation's ACLs name (``ios_object_group_lines``;
    IOS needs a group defined before an entry names it), the ACLs as ``cisco.ios.ios_acls``
    rendered them, then the interface lines ``cisco.ios.ios_acl_interfaces`` rendered, where
    each ``ip access-group NAME out`` (``ipv6 traffic-filter NAME out``) replaces the ACL
    bound in that direction in one command. No line removes a binding: the interface is
    never left without an ACL. (A ``src`` file, because ``ios_config`` given ``lines`` sends
    them all once per line.)"""
    acl_lines, bind_lines = _lines(acls), _lines(bindings)
    if not any(line.startswith("ip access-list ") for line in acl_lines) or not any(line.startswith("ipv6 access-list ") for line in acl_lines):
        raise ValueError("the rendered IOS configuration lacks the IPv4 or the IPv6 access list")
    if any(line.split()[:1] == ["no"] for line in bind_lines):
        raise ValueError(f"the rendered IOS bindings remove a binding: {bind_lines}")
    named = {word for line in acl_lines for before, word in zip(line.split(), line.split()[1:]) if before == "object-group"}
    defined = {group["name"] for group in groups or []}
    if named - defined:
        raise ValueError(f"the rendered IOS ACLs name object groups the change does not define: {sorted(named - defined)}")
    return _no_template("\n".join(ios_object_group_lines(groups) + acl_lines + bind_lines) + "\n", "IOS load")


def eos_session(session: str, acls, bindings=None, timer: str | None = None, replace: list | None = None) -> list:
    """The commands ``arista.eos.eos_command`` sends for one EOS configuration session:
    ``configure session NAME``; ``no ip access-list X`` for each ACL in ``replace`` (an ACL
    replaced in place); the ACL lines ``arista.eos.eos_acls`` rendered; the interface lines
    ``arista.eos.eos_acl_interfaces`` rendered; ``end``, which leaves the session pending; then
    ``configure session NAME commit timer HH:MM:SS`` (rolled back by the switch unless
    ``configure session NAME commit`` follows in time) or, with no timer, ``commit``. The
    session changes the running configuration at once, when it is committed."""
    if not EOS_SESSION.fullmatch(session or ""):
        raise ValueError(f"EOS session name {session!r} is not letters, digits, '-' and '_' (at most 64)")
    if timer is not None and not re.fullmatch(r"[0-9]{2}:[0-5][0-9]:[0-5][0-9]", timer):
        raise ValueError(f"EOS commit timer {timer!r} is not HH:MM:SS")
    acl_lines, bind_lines = _lines(acls), _lines(bindings)
    if not acl_lines:
        raise ValueError("the rendered EOS configuration has no access list")
    if any(line.split()[:1] == ["no"] for line in bind_lines):
        raise ValueError(f"the rendered EOS bindings remove a binding: {bind_lines}")
    removals = [f"no {'ipv6' if family == 'ipv6' else 'ip'} access-list {name}" for family, name in (replace or [])]
    commit = f"configure session {session} commit" + (f" timer {timer}" if timer else "")
    return [f"configure session {session}"] + removals + acl_lines + bind_lines + ["end", commit]


def _strip_netconf(text: str) -> str:
    """The module's XML without the NETCONF namespace, as the device's own XML reads."""
    return NC_PREFIX.sub(r"\1", text).replace(' xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"', "")


def junos_running_config(rendered: str) -> str:
    """The module's rendered XML as the device returns its configuration (the form its
    ``state: parsed`` reads): no NETCONF namespace, inside ``<configuration>``, each address
    as the ``<name>`` of its list entry (parsed fails on the bare form the module writes)."""
    body = _strip_netconf(rendered)
    body = re.sub(r"<(source|destination)-address>([^<]+)</\1-address>", r"<\1-address><name>\2</name></\1-address>", body)
    document = xml.dom.minidom.parseString(f"<rpc-reply><configuration>{body}</configuration></rpc-reply>")
    return document.documentElement.toprettyxml(indent="  ").strip()


def junos_inet6_form(rendered: str) -> str:
    """The module's rendered XML with each ``protocol`` match of an ``inet6`` filter written
    ``next-header``, the match Junos accepts in an IPv6 filter (the module writes
    ``protocol`` for both families, which the device refuses for inet6)."""

    def fix(match):
        return re.sub(r"<(/?)(nc:)?protocol>", r"<\1\2next-header>", match.group(0))

    return re.sub(r"<(nc:)?inet6>.*?</(nc:)?inet6>", fix, rendered, flags=re.S)


def junos_load(rendered: str, bindings: str | None = None) -> str:
    """What ``junipernetworks.junos.junos_config`` loads (``update: replace``) and commits
    confirmed, in one commit: both of the module's filters, the ``inet6`` one in
    ``next-header`` form, each marked to replace the filter of that name and nothing else,
    and, when given, the bindings ``junos_acl_interfaces`` rendered (merged: the filters are
    added to the outside unit's ``output-list``; nothing else on the interface changes)."""
    body = _strip_netconf(junos_inet6_form(rendered))
    families = []
    for family in ("inet6", "inet"):
        found = re.search(rf"<{family}>(.*?)</{family}>", body, flags=re.S)
        if not found:
            raise ValueError(f"the rendered Junos configuration has no {family} filter")
        families.append(f"<{family}>" + found.group(1).replace("<filter>", '<filter replace="replace">', 1) + f"</{family}>")
    bound = ""
    if bindings:
        bound = _strip_netconf(bindings if isinstance(bindings, str) else "".join(bindings))
        if not bound.startswith("<interfaces>") or "<output-list>" not in bound:
            raise ValueError("the rendered Junos bindings are not an interfaces output-list")
    load = f"<configuration><firewall><family>{families[1]}{families[0]}</family></firewall>{bound}</configuration>"
    xml.dom.minidom.parseString(load)  # well formed, or an error here rather than on the device
    return _no_template(load, "Junos load")
