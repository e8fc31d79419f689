"""The first load on a host that tracks no connection, held against the kernel on both Linux
backends. Connection tracking starts in a network namespace with the first rule that uses
it: a connection open before that (the controller's SSH session) is picked up from its next
packet. When that packet is the host's (the module's answer), it is tracked as ``new``
with ACK and without SYN; the policy must let it out for the SSH session Ansible uses or a
connection to a port the host serves, and for nothing else. Each case builds fresh
namespaces, so nothing is tracked before the load."""

from __future__ import annotations

import subprocess
import sys

import pytest
from netns import BACKENDS, HOST_V4, HOST_V6, Pair
from sample import ADDRESSES as SITE_ADDRESSES
from sample import GROUPS, site

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate

ADDRESSES = {**SITE_ADDRESSES, "mail1": [HOST_V4, HOST_V6]}
CLIENT_V4, CLIENT_V6, OUTSIDE_V4 = "198.51.100.254", "2001:db8:10::fe", "203.0.113.9"
# One side talks first once told to ("go"); the other answers. The connecting side says
# "hi" and the listening side answers it before the load, as an SSH session has.
PEER = """
import socket, sys
mode, role, addr, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
if mode == "listen":
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((addr, port))
    server.listen(1)
    print("listening", flush=True)
    conn = server.accept()[0]
    conn.settimeout(3)
    conn.recv(16)
    conn.sendall(b"hi\\n")
else:
    source = (sys.argv[5], 0) if len(sys.argv) > 5 else None
    conn = socket.create_connection((addr, port), timeout=3, source_address=source)
    conn.sendall(b"hi\\n")
    conn.recv(16)
print("ready", flush=True)

def line():
    try:
        return conn.recv(16).decode().strip() or "closed"
    except OSError as exc:
        return type(exc).__name__

if role == "talk":
    sys.stdin.readline()
    conn.sendall(b"hello\\n")
    if line() == "ack":
        conn.sendall(b"bye\\n")
    sys.stdin.readline()
else:
    conn.settimeout(4)
    heard = line()
    print(heard, flush=True)
    if heard == "hello":
        conn.sendall(b"ack\\n")
        print(line(), flush=True)
"""
SSH_ONLY = {"serves": [{"service": "ssh", "from": ["198.51.100.0/24", "2001:db8:10::/64"]}], "allow": []}


def policy(role: dict | None = None, **overrides) -> dict:
    """mail1's policy: the site's mail_server role (which declares no serves), or ``role``."""
    if role is None:
        return compile_policy(site(**{"egress_role": "mail_server", **overrides}), "mail1", ADDRESSES, GROUPS)
    return compile_policy(site(egress_roles={"web_mail": role}, egress_role="web_mail", **overrides), "mail1", ADDRESSES, GROUPS)


def _peer(ns: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", PEER, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def after_first_load(ir: dict, backend: str, port: int, host_listens: bool = True, client: str = CLIENT_V4,
                     without: str | None = None) -> list[str]:
    """A connection between the host and ``client`` (to the host's ``port``, or from the host to
    the client's when not ``host_listens``), open and used both ways before the first load;
    after the load the host talks first. Returns what the client then heard: ["hello", "bye"]
    when the connection went on both ways, ["TimeoutError"] when the host's packet was dropped."""
    with Pair() as lab:
        if host_listens:
            host = _peer(lab.host, "listen", "talk", "::" if ":" in client else "0.0.0.0", str(port))
            assert host.stdout.readline().strip() == "listening"
            other = _peer(lab.world, "connect", "answer", HOST_V6 if ":" in client else HOST_V4, str(port), client)
        else:
            other = _peer(lab.world, "listen", "answer", client, str(port))
            assert other.stdout.readline().strip() == "listening"
            host = _peer(lab.host, "connect", "talk", client, str(port))
        try:
            assert host.stdout.readline().strip() == "ready" and other.stdout.readline().strip() == "ready"
            assert lab.nft("list", "ruleset").stdout.strip() == "", "something was loaded before the first load"
            lab.load(ir, backend, without)
            host.stdin.write("go\n")
            host.stdin.flush()
            heard = [other.stdout.readline().strip()]
            if heard == ["hello"]:
                heard.append(other.stdout.readline().strip())
            return heard
        finally:
            for process in (host, other):
                process.kill()
                process.wait()


def oracle(ir: dict, sport: int, client: str = CLIENT_V4) -> str:
    """What the policy says of the host's first packet on a connection picked up mid-stream."""
    return evaluate(ir, {"src": HOST_V6 if ":" in client else HOST_V4, "dst": client, "proto": "tcp", "dport": 40000,
                         "midstream": True, "sport": sport})["verdict"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_ssh_session_goes_on_with_serves_unset(backend):
    ir = policy()
    assert ir["replies"] == "any" and oracle(ir, 22) == "accept"
    assert after_first_load(ir, backend, 22) == ["hello", "bye"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_the_pickup_the_first_load_cuts_the_ssh_session(backend):
    """The defect the pickup rule mends: this is what every first load over SSH did."""
    assert after_first_load(policy(), backend, 22, without="picked up mid-stream") == ["TimeoutError"]


@pytest.mark.parametrize("client", [CLIENT_V4, CLIENT_V6])
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_ssh_session_goes_on_when_ssh_is_served(backend, client):
    ir = policy(SSH_ONLY)
    assert ir["replies"] == "served" and oracle(ir, 22, client) == "accept"
    assert after_first_load(ir, backend, 22, client=client) == ["hello", "bye"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_served_session_from_a_client_it_is_not_served_to_is_cut(backend):
    ir = policy(SSH_ONLY)
    assert oracle(ir, 22, OUTSIDE_V4) == "drop"
    assert after_first_load(ir, backend, 22, client=OUTSIDE_V4) == ["TimeoutError"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_listener_on_a_port_not_served_is_cut(backend):
    """A listener started before the first load, on a port the host does not serve, whose
    client was connected: the host's next packet does not leave."""
    ir = policy(SSH_ONLY)
    assert oracle(ir, 4444) == "drop"
    assert after_first_load(ir, backend, 4444) == ["TimeoutError"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_with_serves_unset_only_the_ssh_port_is_picked_up(backend):
    ir = policy()
    assert oracle(ir, 4444) == "drop"
    assert after_first_load(ir, backend, 4444) == ["TimeoutError"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_connection_the_host_opened_before_the_load_is_cut(backend):
    """The host's own connection (to a port its role does not allow), open before the first
    load: its packets leave from a port of the host's choosing, never picked up."""
    ir = policy(SSH_ONLY)
    assert after_first_load(ir, backend, 4444, host_listens=False, client=OUTSIDE_V4) == ["TimeoutError"]


def test_no_pickup_for_a_host_reached_without_ssh():
    """A host Ansible reaches without a network session, with serves unset, has nothing to pick up."""
    ir = policy(ansible_connection="containers.podman.podman")
    assert not any(rule.get("midstream") for rule in ir["rules"])
    assert oracle(ir, 22) == "drop"
    assert [r["sports"] for r in policy(ansible_port=2222)["rules"] if r.get("midstream")] == [[(2222, 2222)]]
