#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: probe
short_description: Try real outbound connections from a host and report what got through
version_added: 0.1.0
description:
  - For each flow, opens a real TCP connection or sends a real UDP datagram from the
    target host, optionally from a chosen source address, and reports the outcome and what
    it proves, one of C(allowed) (the packet got through the filters), C(denied) (a filter dropped
    it) or C(inconclusive) (the outcome proves nothing about the filters).
  - Flows run in parallel, so a host's blocked TCP flows cost one timeout, not one each.
  - "Outcomes: C(connected) (TCP handshake done), C(answered) (UDP reply received) and
    C(refused) (the peer answered with a reset or port-unreachable) mean the packet left and
    came back: C(allowed). C(blocked) (the host's own firewall dropped the packet: the kernel
    refuses the send with EPERM, which UDP sees at once) and a TCP C(timeout) (the SYN got no
    answer at all, which is what a firewall's drop looks like) mean C(denied)."
  - "C(inconclusive) outcomes: C(unreachable) (no route, or a router or the next hop said the
    destination cannot be reached: the packet may never have met a filter), C(prohibited)
    (a C(prohibit) route or an ICMP administratively-prohibited answer, from something that
    is not this collection's policy, which only drops), a UDP C(timeout) (no answer: a server
    may simply ignore the probe's datagram, so silence proves nothing) and C(error)."
  - A TCP C(timeout) is C(denied) only if the packet could have left. When the kernel is
    still resolving the next hop's link-layer address at the end of the wait (its neighbour
    entry is C(INCOMPLETE), so the SYN never left the host), the outcome is C(unreachable).
    The check reads the kernel's route and neighbour tables with C(ip) (iproute2); where that
    cannot be read, a TCP timeout is C(inconclusive).
  - O(flows[].src) may be an address the host does not own (the socket is bound with
    C(IP_FREEBIND)), which is how a spoofed source is tried.
  - A flow with O(flows[].user) is sent by a process of that local user (and of
    O(flows[].group), or else of the user's own group), which is how an allow entry limited
    to some C(users) or C(groups) is tried. Each user's flows run in a child process that has
    dropped root for that user; the module itself runs as root.
  - To try a connection opened from outside to a host (an inbound probe), run this module
    on the other host (the verify role delegates such flows to the host named in their
    C(from_host)).
  - "A flow whose O(flows[].dst) is C(dns:NAME) goes to a DNS name: immediately before it
    connects, the module asks the host's own resolver for the name (C(getaddrinfo): C(/etc/hosts),
    then the servers in C(/etc/resolv.conf), which on a host whose policy names upstreams by DNS
    is the local resolver that fills the name sets), then tries the first address of each
    family of the answer (only O(flows[].family) when given, or the family of O(flows[].src)).
    The flow agrees with its expectation only if every address tried does. The result names
    the name, the addresses resolved and those tried (C(dns_name), C(resolved), C(tried)), and
    its C(dst) reads C(dns:NAME (ADDRESS, ...))."
  - A name that does not resolve (no such name, no answer of the family asked for, no
    resolver answering) is the outcome C(unresolved), observed C(inconclusive). It never
    agrees with an expectation, not even with O(flows[].inconclusive_ok). The resolver's own
    timeouts (C(/etc/resolv.conf) C(options)) apply to the lookup, on top of O(timeout).
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Probing changes nothing, so it runs in check mode too.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  idempotent:
    support: full
    description: Never reports a change.
  platform:
    support: full
    platforms: linux
    description: Linux only (C(IP_FREEBIND), the C(ip) command of iproute2).
options:
  flows:
    description: Connections to try.
    type: list
    elements: dict
    required: true
    suboptions:
      dst:
        description:
          - Destination address, or C(dns:NAME), a host name (no wildcard) the host's resolver
            is asked for just before the flow is tried.
        type: str
        required: true
      family:
        description:
          - For a flow to C(dns:NAME), the one address family to ask the resolver for and try.
            Default each family of the answer (the family of O(flows[].src) when it is given).
        type: str
        choices: [ipv4, ipv6]
      port:
        description: Destination port.
        type: int
        required: true
      proto:
        description: Transport protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      src:
        description: Source address to bind to (need not be assigned to the host).
        type: str
      name:
        description: A label echoed back in the result.
        type: str
      expect:
        description:
          - What the policy expects. When set, the result's C(ok) says whether the
            observation agrees (C(allowed) means the packet got through the filter).
          - An C(inconclusive) observation never agrees, unless O(flows[].inconclusive_ok) is true.
        type: str
        choices: [allowed, denied]
      inconclusive_ok:
        description:
          - Accept an C(inconclusive) observation for this flow (C(ok) is then true); a flow
            that is observed C(allowed) or C(denied) must still match O(flows[].expect).
        type: bool
        default: false
      reason:
        description: Why that is expected; echoed back.
        type: str
      user:
        description: Send as this local user (a name or a number); root when left out.
        type: str
      group:
        description: Send with this group (a name or a number); default the user's own group. Needs O(flows[].user).
        type: str
  timeout:
    description: Seconds to wait for each flow.
    type: float
    default: 2.0
"""

EXAMPLES = r"""
- name: Can the mail server reach its relay but not a web server?
  warden.egress.probe:
    flows:
      - {dst: 198.51.100.25, port: 25}
      - {dst: 198.51.100.80, port: 80}
      - {dst: "dns:api.example.com", port: 443, family: ipv4}
  register: probe
"""

RETURN = r"""
results:
  description:
    - One entry per flow, in the order given, with C(outcome), C(passed) (the packet got out
      and something answered), C(observed) (C(allowed), C(denied) or C(inconclusive)),
      C(detail), C(seconds) (how long trying the flow took, to the microsecond; the JUnit
      report's testcase time), and C(ok) when the flow carried O(flows[].expect).
    - A flow to C(dns:NAME) also has C(dns_name), C(resolved) (every address of the answer) and
      C(tried) (per address tried, its C(dst), C(family), C(outcome), C(observed), C(detail) and C(ok));
      its C(dst) is C(dns:NAME) with the addresses tried.
  returned: always
  type: list
  elements: dict
  sample:
    - {dst: 198.51.100.25, port: 25, proto: tcp, src: null, name: smtp, expect: allowed, reason: "role mail_server: smtp to smtp_relays",
       inconclusive_ok: false, outcome: connected, passed: true, observed: allowed, ok: true, detail: "", seconds: 0.002}
    - {dst: "dns:api.example.com (203.0.113.104)", family: ipv4, port: 443, proto: tcp, src: null, name: api, expect: allowed,
       reason: "role billing: https to apis (allowed by name: api.example.com)", inconclusive_ok: false, dns_name: api.example.com,
       resolved: [203.0.113.104, 203.0.113.105], outcome: connected, passed: true, observed: allowed, ok: true,
       detail: "api.example.com resolved to 203.0.113.104, 203.0.113.105; 203.0.113.104: connected", seconds: 0.004,
       tried: [{dst: 203.0.113.104, family: ipv4, proto: tcp, outcome: connected, observed: allowed, detail: "", ok: true}]}
"""

import errno
import grp
import ipaddress
import json
import os
import pwd
import re
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
IPV6_FREEBIND = getattr(socket, "IPV6_FREEBIND", 78)
PASSED = ("connected", "answered", "refused")
UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH)
DNS = "dns:"
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


def observed(outcome: str, proto: str) -> str:
    """What an outcome proves about the filters on the path."""
    if outcome in PASSED:
        return "allowed"
    if outcome == "blocked" or (outcome == "timeout" and proto == "tcp"):
        return "denied"
    return "inconclusive"


def judge(result: dict) -> bool:
    """Whether an observation agrees with the flow's expectation."""
    if result["observed"] == "inconclusive":
        return bool(result.get("inconclusive_ok"))
    return result["observed"] == result["expect"]


def _socket(flow: dict, timeout: float) -> socket.socket:
    address = ipaddress.ip_address(flow["dst"])
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    kind = socket.SOCK_STREAM if flow["proto"] == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    sock.settimeout(timeout)
    if flow.get("src"):
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
        sock.bind((flow["src"], 0))
    return sock


def _outcome(flow: dict, timeout: float) -> tuple[str, str]:
    try:
        with _socket(flow, timeout) as sock:
            sock.connect((flow["dst"], flow["port"]))
            if flow["proto"] == "tcp":
                return "connected", ""
            sock.send(b"warden-egress probe\n")
            sock.recv(512)
            return "answered", ""
    except ConnectionRefusedError:
        return "refused", ""
    except (TimeoutError, socket.timeout):
        return "timeout", f"no answer within {timeout:g} s"
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return "blocked", str(exc)
        if exc.errno == errno.EACCES:
            return "prohibited", str(exc)
        if exc.errno in UNREACHABLE:
            return "unreachable", str(exc)
        return "error", str(exc)
    except (ValueError, OverflowError) as exc:
        return "error", str(exc)


def dns_name(dst: str) -> str | None:
    """The host name of a destination written ``dns:NAME`` (lower case, without a final dot);
    None for an address. A value that is not a host name raises ValueError."""
    if dst[:len(DNS)].lower() != DNS:
        return None
    name = dst[len(DNS):].lower()
    name = name[:-1] if name.endswith(".") else name
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(f"{dst!r} is not dns: and a host name (dns:api.example.com); a wildcard names no host to try")
    return name


def resolve(name: str, flow: dict) -> list[tuple[str, str]]:
    """What the host's own resolver answers for ``name`` now (getaddrinfo: /etc/hosts, then the
    servers of /etc/resolv.conf), in its order, each address once, as (family, address); only
    the flow's ``family`` when it has one. A failure raises OSError (socket.gaierror)."""
    kind = socket.SOCK_STREAM if flow["proto"] == "tcp" else socket.SOCK_DGRAM
    out: list = []
    for family, dummy, dummy, dummy, sockaddr in socket.getaddrinfo(name, flow["port"], FAMILIES.get(flow.get("family"), socket.AF_UNSPEC), kind):
        entry = ("ipv4" if family == socket.AF_INET else "ipv6", sockaddr[0])
        if family in (socket.AF_INET, socket.AF_INET6) and entry not in out:
            out.append(entry)
    return out


def _try_named(flow: dict, name: str, timeout: float) -> dict:
    """A flow to a DNS name: resolved through the host's resolver immediately before the
    connection, then tried to the first address of each family of the answer (of the flow's
    ``family`` only, when it has one), in parallel. See settle()."""
    result = dict(flow, dns_name=name, resolved=[], tried=[])
    try:
        answer = resolve(name, flow)
    except (OSError, UnicodeError) as exc:
        result["unresolved"] = getattr(exc, "strerror", None) or str(exc)
        return settle(result)
    result["resolved"] = [address for dummy, address in answer]
    first: dict = {}
    for family, address in answer:
        first.setdefault(family, address)
    if not first:
        result["unresolved"] = "the answer holds no address"
        return settle(result)
    with ThreadPoolExecutor(max_workers=len(first)) as pool:
        outcomes = list(pool.map(lambda address: _outcome({**flow, "dst": address}, timeout), first.values()))
    for (family, address), (outcome, detail) in zip(first.items(), outcomes):
        result["tried"].append({"dst": address, "family": family, "proto": flow["proto"], "outcome": outcome,
                                "observed": observed(outcome, flow["proto"]), "detail": detail})
    return settle(result)


def settle(result: dict) -> dict:
    """A flow to a name, judged from its tries: ``ok`` only if every address tried agrees with
    the expectation; ``outcome``, ``observed`` those of the first try that does not (else of the
    first); ``dst`` the name with the addresses tried. A name that did not resolve is the
    outcome ``unresolved``, which never agrees, not even with ``inconclusive_ok``."""
    name, tried = result["dns_name"], result["tried"]
    if not tried:
        why = result.get("unresolved") or "no address of the family asked for"
        result.update(dst=f"{DNS}{name} (not resolved)", outcome="unresolved", passed=False, observed="inconclusive",
                      detail=f"{name} did not resolve through the host's resolver ({why}): nothing was tried")
        if result.get("expect"):
            result["ok"] = False
        return result
    for attempt in tried:
        attempt["ok"] = judge({**attempt, "expect": result.get("expect"), "inconclusive_ok": result.get("inconclusive_ok")})
    worst = next((a for a in tried if not a["ok"]), tried[0]) if result.get("expect") else tried[0]
    said = "; ".join(f"{a['dst']}: {a['outcome']}" + (f" ({a['detail']})" if a["detail"] else "") for a in tried)
    result.update(dst=f"{DNS}{name} ({', '.join(a['dst'] for a in tried)})", outcome=worst["outcome"], observed=worst["observed"],
                  passed=all(a["outcome"] in PASSED for a in tried), detail=f"{name} resolved to {', '.join(result['resolved'])}; {said}")
    if result.get("expect"):
        result["ok"] = all(a["ok"] for a in tried)
    return result


def try_flow(flow: dict, timeout: float) -> dict:
    """Try one flow; ``observed`` reads a TCP timeout as a drop (see check_next_hops). A flow to
    ``dns:NAME`` is resolved first (see _try_named)."""
    start = time.monotonic()
    name = dns_name(flow["dst"])
    if name is not None:
        result = _try_named(flow, name, timeout)
        result["seconds"] = round(time.monotonic() - start, 6)
        return result
    result = dict(flow)
    outcome, detail = _outcome(flow, timeout)
    result.update(outcome=outcome, passed=outcome in PASSED, observed=observed(outcome, flow["proto"]), detail=detail)
    result["seconds"] = round(time.monotonic() - start, 6)
    if flow.get("expect"):
        result["ok"] = judge(result)
    return result


def _account(user: str, group: str | None) -> tuple[int, int, tuple]:
    """(uid, gid, supplementary groups) of a local user, with ``group`` as its group; a
    name or number this host does not know raises KeyError."""
    entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    if group is None:
        gid = entry.pw_gid
    else:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return entry.pw_uid, gid, tuple(os.getgrouplist(entry.pw_name, gid))


def run_as(flows: list[dict], account: tuple[int, int, tuple], timeout: float) -> tuple[int, int]:
    """Start a child process that drops root for ``account`` and tries ``flows``; returns
    (pid, the read end of the pipe its results come back on). See collect()."""
    read, write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    code = 1
    try:  # the child: never returns
        os.close(read)
        uid, gid, groups = account
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
        with ThreadPoolExecutor(max_workers=min(256, max(1, len(flows)))) as pool:
            results = list(pool.map(lambda f: try_flow(f, timeout), flows))
        with os.fdopen(write, "w") as out:
            json.dump(results, out)
        code = 0
    finally:
        os._exit(code)  # pylint: disable=protected-access


def collect(pid: int, read: int) -> list[dict] | None:
    """The results of a child started by run_as (None if it failed)."""
    with os.fdopen(read) as handle:
        text = handle.read()
    dummy, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        return None
    return json.loads(text)


def check_next_hops(results: list[dict], run: Callable[[list[str]], str]) -> None:
    """A TCP timeout is a drop only if the SYN could leave the host: when the next hop's
    neighbour entry is still INCOMPLETE, the kernel never got its link-layer address, the
    SYN waited in the host and nothing on the path was tried (outcome ``unreachable``).
    ``run`` runs an ``ip`` command and returns its output; if it fails, every TCP timeout
    becomes inconclusive (the drop cannot be told from a dead next hop)."""
    # each try: a flow, or each address tried for a flow to a name (then settled again)
    waited = [(r, a) for r in results for a in (r["tried"] if "dns_name" in r else [r]) if a["outcome"] == "timeout" and a["proto"] == "tcp"]
    if not waited:
        return
    try:
        pending = {(n["dst"], n.get("dev")) for n in json.loads(run(["ip", "-j", "neigh", "show"]) or "[]")
                   if "INCOMPLETE" in n.get("state", [])}
        hops = {}
        for dst in sorted({a["dst"] for dummy, a in waited}):
            route = (json.loads(run(["ip", "-j", "route", "get", dst]) or "[]") or [{}])[0]
            hops[dst] = (route.get("gateway", dst), route.get("dev"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        for result, attempt in waited:
            _mark(result, attempt, "error", f"{attempt['detail']}; the next hop could not be checked ({exc}), so the timeout proves nothing")
        return
    for result, attempt in waited:
        hop, dev = hops[attempt["dst"]]
        if (hop, dev) in pending:
            _mark(result, attempt, "unreachable",
                  f"{attempt['detail']}: the next hop {hop} on {dev} never answered (neighbour INCOMPLETE), the packet did not leave")


def _mark(result: dict, attempt: dict, outcome: str, detail: str) -> None:
    attempt.update(outcome=outcome, observed=observed(outcome, attempt["proto"]), detail=detail)
    if attempt is not result:
        settle(result)
    elif result.get("expect"):
        result["ok"] = judge(result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "flows": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "dst": {"type": "str", "required": True},
                    "family": {"type": "str", "choices": ["ipv4", "ipv6"]},
                    "port": {"type": "int", "required": True},
                    "proto": {"type": "str", "choices": ["tcp", "udp"], "default": "tcp"},
                    "src": {"type": "str"},
                    "name": {"type": "str"},
                    "expect": {"type": "str", "choices": ["allowed", "denied"]},
                    "inconclusive_ok": {"type": "bool", "default": False},
                    "reason": {"type": "str"},
                    "user": {"type": "str"},
                    "group": {"type": "str"},
                },
            },
            "timeout": {"type": "float", "default": 2.0},
        },
        supports_check_mode=True,
    )
    flows = module.params["flows"]
    for index, flow in enumerate(flows):
        try:
            name = dns_name(flow["dst"])
        except ValueError as exc:
            module.fail_json(msg=f"flows[{index}].dst: {exc}")
        for key in ("dst", "src") if name is None else ("src",):
            if flow.get(key):
                try:
                    ipaddress.ip_address(flow[key])
                except ValueError:
                    module.fail_json(msg=f"flows[{index}].{key}: {flow[key]!r} is not an IP address" + (" or dns:NAME" if key == "dst" else ""))
        if flow.get("family") is not None and name is None:
            module.fail_json(msg=f"flows[{index}].family: {flow['family']!r} is for a flow to dns:NAME (an address has its own family)")
        if name is not None and flow.get("src"):
            family = f"ipv{ipaddress.ip_address(flow['src']).version}"
            if flow.get("family") not in (None, family):
                module.fail_json(msg=f"flows[{index}].family: {flow['family']!r} is not the family of src {flow['src']!r}")
            flow["family"] = family
        if not 1 <= flow["port"] <= 65535:
            module.fail_json(msg=f"flows[{index}].port: {flow['port']!r} is not a port (1-65535)")
    # Each user's flows go to a child process, started before any thread of this one.
    accounts: dict = {}
    for index, flow in enumerate(flows):
        if flow.get("group") is not None and flow.get("user") is None:
            module.fail_json(msg=f"flows[{index}].group: {flow['group']!r} needs flows[{index}].user (the process that sends)")
        if flow.get("user") is not None:
            try:
                account = _account(flow["user"], flow.get("group"))
            except (KeyError, ValueError, OverflowError):
                module.fail_json(msg=f"flows[{index}]: user {flow['user']!r}" + (f" or group {flow['group']!r}" if flow.get("group") else "")
                                 + " is not known on this host")
            accounts.setdefault(account, []).append(index)
    timeout = module.params["timeout"]
    children = [(indexes, run_as([flows[i] for i in indexes], account, timeout)) for account, indexes in accounts.items()]
    own = [i for i, flow in enumerate(flows) if flow.get("user") is None]
    results: list = [None] * len(flows)
    with ThreadPoolExecutor(max_workers=min(256, max(1, len(own)))) as pool:
        for i, result in zip(own, pool.map(lambda i: try_flow(flows[i], timeout), own)):
            results[i] = result
    for indexes, (pid, read) in children:
        found = collect(pid, read)
        if found is None or len(found) != len(indexes):
            module.fail_json(msg=f"the process that tried flows {indexes} as user {flows[indexes[0]]['user']!r} failed")
        for i, result in zip(indexes, found):
            results[i] = result
    ip = module.get_bin_path("ip")

    def run(args: list[str]) -> str:
        if ip is None:
            raise OSError("the ip command (iproute2) is not installed")
        rc, out, err = module.run_command([ip] + args[1:])
        if rc != 0:
            raise OSError(f"{' '.join(args)}: {err.strip() or f'exit {rc}'}")
        return out

    check_next_hops(results, run)
    module.exit_json(changed=False, results=results)


if __name__ == "__main__":
    main()
