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
    target host, optionally from a chosen source address, and reports the outcome.
  - Flows run in parallel, so a host's blocked TCP flows cost one timeout, not one each.
  - Outcomes are C(connected) (TCP handshake done), C(answered) (UDP reply received),
    C(refused) (the peer answered with a reset or port-unreachable, so the packet left and
    came back), C(blocked) (the local firewall refused the packet), C(timeout) (nothing
    came back) and C(error).
  - O(flows[].src) may be an address the host does not own (the socket is bound with
    C(IP_FREEBIND)), which is how a spoofed source is tried.
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
options:
  flows:
    description: Connections to try.
    type: list
    elements: dict
    required: true
    suboptions:
      dst:
        description: Destination address.
        type: str
        required: true
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
        type: str
        choices: [allowed, denied]
      reason:
        description: Why that is expected; echoed back.
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
  register: probe
"""

RETURN = r"""
results:
  description:
    - One entry per flow, in the order given, with C(outcome), C(passed) and C(observed)
      (C(allowed) or C(denied)), and C(ok) when the flow carried O(flows[].expect).
  returned: always
  type: list
  elements: dict
  sample:
    - {dst: 198.51.100.25, port: 25, proto: tcp, src: null, name: smtp, expect: allowed, reason: "role mail_server: smtp to smtp_relays",
       outcome: connected, passed: true, observed: allowed, ok: true, detail: "", seconds: 0.002}
"""

import errno
import ipaddress
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
IPV6_FREEBIND = getattr(socket, "IPV6_FREEBIND", 78)
PASSED = ("connected", "answered", "refused")


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


def try_flow(flow: dict, timeout: float) -> dict:
    result = dict(flow)
    start = time.monotonic()
    outcome, detail = "error", ""
    try:
        with _socket(flow, timeout) as sock:
            sock.connect((flow["dst"], flow["port"]))
            if flow["proto"] == "tcp":
                outcome = "connected"
            else:
                sock.send(b"warden-egress probe\n")
                sock.recv(512)
                outcome = "answered"
    except ConnectionRefusedError:
        outcome = "refused"
    except PermissionError as exc:
        outcome, detail = "blocked", str(exc)
    except (TimeoutError, socket.timeout):
        outcome = "timeout"
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            outcome = "blocked"
        elif exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            outcome = "unreachable"
        detail = str(exc)
    except ValueError as exc:
        detail = str(exc)
    passed = outcome in PASSED
    result.update(outcome=outcome, passed=passed, observed="allowed" if passed else "denied", detail=detail)
    result["seconds"] = round(time.monotonic() - start, 3)
    if flow.get("expect"):
        result["ok"] = result["observed"] == flow["expect"]
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "flows": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "dst": {"type": "str", "required": True},
                    "port": {"type": "int", "required": True},
                    "proto": {"type": "str", "choices": ["tcp", "udp"], "default": "tcp"},
                    "src": {"type": "str"},
                    "name": {"type": "str"},
                    "expect": {"type": "str", "choices": ["allowed", "denied"]},
                    "reason": {"type": "str"},
                },
            },
            "timeout": {"type": "float", "default": 2.0},
        },
        supports_check_mode=True,
    )
    flows = module.params["flows"]
    for index, flow in enumerate(flows):
        for key in ("dst", "src"):
            if flow.get(key):
                try:
                    ipaddress.ip_address(flow[key])
                except ValueError:
                    module.fail_json(msg=f"flows[{index}].{key}: {flow[key]!r} is not an IP address")
        if not 1 <= flow["port"] <= 65535:
            module.fail_json(msg=f"flows[{index}].port: {flow['port']!r} is not a port (1-65535)")
    with ThreadPoolExecutor(max_workers=min(256, max(1, len(flows)))) as pool:
        results = list(pool.map(lambda f: try_flow(f, module.params["timeout"]), flows))
    module.exit_json(changed=False, results=results)


if __name__ == "__main__":
    main()
