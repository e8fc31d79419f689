"""What a host serves and who may send, held against the kernel on both Linux backends:
real connections from the 'world' namespace to listeners in the 'host' namespace (whose
output hook carries the policy), real connections out of the host as other local users
(the probe drops root for them), and an established session that must survive the load."""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
import time

import pytest
from netns import BACKENDS, HOST_V4, HOST_V6, TOP, Pair, run_module, sh
from sample import ADDRESSES as SITE_ADDRESSES
from sample import GROUPS, site

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.compile.local_ids import with_local_ids

ADDRESSES = {**SITE_ADDRESSES, "mail1": [HOST_V4, HOST_V6], "dns1": ["198.51.100.140", "2001:db8:5100::12"], "proxy1": ["198.51.100.141", "2001:db8:5100::13"]}
ROLE = {
    "serves": [
        {"service": ["http", "smtp"]},
        {"service": "ssh", "from": ["198.51.100.0/24", "2001:db8:10::/64"]},
        {"service": "dns", "from": ["203.0.113.0/25", "2001:db8:5100::/80"]},
    ],
    "allow": [
        {"service": "smtp", "to": "any", "users": ["nobody"]},
        {"service": "https", "to": "any", "groups": ["nogroup"]},
        {"service": "dns", "to": "internal_resolvers"},
    ],
}
ECHO = """
import socket, sys, threading
def serve(conn):
    with conn:
        try:
            while True:
                data = conn.recv(512)
                if not data:
                    return
                conn.sendall(data)
        except OSError:
            return
sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("::", 22))
sock.listen(16)
print("listening", flush=True)
while True:
    threading.Thread(target=serve, args=(sock.accept()[0],), daemon=True).start()
"""
SESSION = """
import socket, sys
sock = socket.create_connection((sys.argv[1], 22), timeout=2, source_address=(sys.argv[2], 0))
sock.sendall(b"one\\n")
print(sock.recv(64).decode().strip(), flush=True)
sys.stdin.readline()
sock.sendall(b"two\\n")
try:
    print(sock.recv(64).decode().strip() or "closed", flush=True)
except OSError as exc:
    print(type(exc).__name__, flush=True)
"""
CLIENTS = {4: ["198.51.100.254", "203.0.113.9"], 6: ["2001:db8:10::fe", "2001:db8:5100::9", "2001:db8:5100:0:1::9"]}
SERVICES = [(22, "tcp"), (25, "tcp"), (80, "tcp"), (4444, "tcp"), (53, "udp"), (5353, "udp")]


def policy(**overrides) -> dict:
    variables = site(egress_roles={"web_mail": ROLE}, egress_role="web_mail", **overrides)
    return compile_policy(variables, "mail1", ADDRESSES, GROUPS)


def resolved(ir: dict) -> dict:
    """The policy as the roles load it: names looked up on the target (here, this machine)."""
    numbers = {"users": {n: pwd.getpwnam(n).pw_uid for n in ir["local_ids"]["users"]},
               "groups": {n: grp.getgrnam(n).gr_gid for n in ir["local_ids"]["groups"]}}
    return with_local_ids([ir], numbers, "mail1")[0]


@pytest.fixture(scope="module")
def lab():
    """The pair with listeners in the host: an echo server on 22 (a session that stays up),
    the lab listener on 25, 80, 4444 (tcp) and 53, 5353 (udp)."""
    with Pair() as pair:
        deadline = time.monotonic() + 5
        while any("tentative" in sh("ip", "-6", "addr", "show", "dev", "eth0", ns=ns).stdout for ns in pair.names):
            assert time.monotonic() < deadline, "IPv6 link-local addresses still tentative after 5 s"
            time.sleep(0.05)
        echo = subprocess.Popen(["ip", "netns", "exec", pair.host, sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
        listener = subprocess.Popen(["ip", "netns", "exec", pair.host, sys.executable, os.path.join(TOP, "lab", "files", "listener.py"),
                                     "--tcp=25,80,4444", "--udp=53,5353"])
        try:
            assert echo.stdout.readline().strip() == "listening"
            time.sleep(0.5)
            yield pair
        finally:
            for process in (echo, listener):
                process.kill()
                process.wait()


def inbound_flows() -> list[dict]:
    return [{"src": src, "dst": HOST_V4 if version == 4 else HOST_V6, "port": port, "proto": proto}
            for version, sources in CLIENTS.items() for src in sources for port, proto in SERVICES]


def disagreements(lab, ir, flows):
    observed = lab.probe(flows, ns=lab.world)
    out = []
    for flow, seen in zip(flows, observed):
        expected = evaluate(ir, {"src": flow["src"], "dst": flow["dst"], "proto": flow["proto"], "dport": flow["port"], "direction": "inbound"})
        if (expected["verdict"] == "accept") != seen["passed"]:
            out.append((flow["src"], flow["proto"], flow["port"], expected["reason"], seen["outcome"]))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_served_listeners_answer(lab, backend):
    ir = resolved(policy())
    flows = inbound_flows()
    verdicts = [evaluate(ir, {"src": f["src"], "dst": f["dst"], "proto": f["proto"], "dport": f["port"], "direction": "inbound"})["verdict"]
                for f in flows]
    assert verdicts.count("accept") >= 10 and verdicts.count("drop") >= 10
    lab.load(ir, backend)
    try:
        assert not disagreements(lab, ir, flows)
    finally:
        lab.unload()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_comparison_can_fail(lab, backend):
    """Without the 'serves' rules the served listeners cannot answer either; with today's
    policy (no serves) the unserved listener answers: both disagree with the oracle."""
    ir = resolved(policy())
    flows = [f for f in inbound_flows() if f["port"] in (25, 4444)]
    lab.load(ir, backend, without="serves")
    try:
        assert {(src, port) for src, dummy, port, dummy2, dummy3 in disagreements(lab, ir, flows)} == \
            {(f["src"], 25) for f in flows if f["port"] == 25}
    finally:
        lab.unload()
    lab.load(resolved(policy(egress_replies="any")), backend)
    try:
        assert {(src, port) for src, dummy, port, dummy2, dummy3 in disagreements(lab, ir, flows)} == \
            {(f["src"], 4444) for f in flows if f["port"] == 4444}
    finally:
        lab.unload()


def connect_from_port(lab, src: str, sport: int, dst: str, port: int) -> str:
    code = ("import socket, sys\n"
            "s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.settimeout(0.7)\n"
            "s.bind((sys.argv[1], int(sys.argv[2])))\n"
            "try:\n    s.connect((sys.argv[3], int(sys.argv[4]))); print('connected')\n"
            "except OSError as exc:\n    print(type(exc).__name__)\n")
    return sh(sys.executable, "-c", code, src, str(sport), dst, str(port), ns=lab.world).stdout.strip()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bind_shell_cannot_answer_a_client_on_an_allowed_port(lab, backend):
    """The listener's reply to a client whose source port is 25 goes to port 25, which the
    role may reach (smtp to any): only the rule that drops unserved replies stops it."""
    open_smtp = {**ROLE, "allow": [{"service": "smtp", "to": "any"}]}
    ir = compile_policy(site(egress_roles={"web_mail": open_smtp}, egress_role="web_mail"), "mail1", ADDRESSES, GROUPS)
    shell = {"src": "203.0.113.9", "dst": HOST_V4, "dport": 4444, "direction": "inbound", "sport": 25}
    assert evaluate(ir, shell)["verdict"] == "drop"
    assert evaluate({**ir, "rules": [r for r in ir["rules"] if r["action"] != "unserved"]}, shell)["verdict"] == "accept"
    for without, expected in ((None, "TimeoutError"), ("does not serve", "connected")):
        lab.load(ir, backend, without=without)
        try:
            assert connect_from_port(lab, "203.0.113.9", 25, HOST_V4, 4444) == expected, without
        finally:
            lab.unload()


def session(lab, ir, backend) -> tuple[str, str]:
    """Open a session to the host's port 22 from the local network, load ``ir``, send again."""
    client = subprocess.Popen(["ip", "netns", "exec", lab.world, sys.executable, "-c", SESSION, HOST_V4, "198.51.100.254"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        first = client.stdout.readline().strip()
        lab.load(ir, backend)
        client.stdin.write("\n")
        client.stdin.flush()
        return first, client.stdout.readline().strip()
    finally:
        client.kill()
        client.wait()
        lab.unload()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_ssh_session_survives_the_load(lab, backend):
    assert session(lab, resolved(policy()), backend) == ("one", "two")
    no_ssh = {**ROLE, "serves": ROLE["serves"][:1]}
    cut = compile_policy(site(egress_roles={"web_mail": no_ssh}, egress_role="web_mail", egress_serves_without_ssh=True), "mail1", ADDRESSES, GROUPS)
    assert session(lab, resolved(cut), backend) == ("one", "TimeoutError")


USERS = [("nobody", "nogroup"), ("daemon", "daemon"), ("daemon", "nogroup"), ("root", "root"), (None, None)]
OUT = [("203.0.113.25", 25), ("2001:db8:5100::25", 25), ("203.0.113.80", 443), ("2001:db8:5100::80", 443)]


@pytest.mark.parametrize("names", [True, False], ids=["numbers", "names"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_only_the_named_users_may_send(lab, backend, names, tmp_path):
    """A process of another user cannot send what 'users' reserves, nor a process of another
    group what 'groups' reserves; the rules carry numbers (as the roles load them) or names
    (the tools look them up)."""
    ir = policy()
    flows = [{"name": f"{user}:{group} {dst} {port}", "dst": dst, "port": port, **({"user": user, "group": group} if user else {})}
             for user, group in USERS for dst, port in OUT]
    lab.load(ir if names else resolved(ir), backend)
    try:
        result = run_module("probe", str(tmp_path), {"flows": flows, "timeout": 0.5}, ns=lab.host)
        assert "results" in result, result
        wrong = []
        for flow, seen in zip(flows, result["results"]):
            src = HOST_V6 if ":" in flow["dst"] else HOST_V4
            expected = evaluate(ir, {"src": src, "dst": flow["dst"], "dport": flow["port"], "user": flow.get("user"), "group": flow.get("group")})
            if (expected["verdict"] == "accept") != (seen["observed"] == "allowed") or seen["observed"] == "inconclusive":
                wrong.append((flow["name"], expected["reason"], seen["outcome"]))
        assert not wrong
        allowed = {f["name"] for f, seen in zip(flows, result["results"]) if seen["observed"] == "allowed"}
        assert allowed == {"nobody:nogroup 203.0.113.25 25", "nobody:nogroup 2001:db8:5100::25 25", "nobody:nogroup 203.0.113.80 443",
                           "nobody:nogroup 2001:db8:5100::80 443", "daemon:nogroup 203.0.113.80 443", "daemon:nogroup 2001:db8:5100::80 443"}
    finally:
        lab.unload()


def test_the_probe_refuses_an_unknown_user(lab, tmp_path):
    result = run_module("probe", str(tmp_path), {"flows": [{"dst": "203.0.113.25", "port": 25, "user": "no_such_user_here"}]}, ns=lab.host)
    assert result.get("failed") and "flows[0]: user 'no_such_user_here' is not known on this host" in result["msg"], json.dumps(result)
