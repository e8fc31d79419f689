"""probe: what each outcome proves, on real sockets in network namespaces.

A drop by the host's own nftables or iptables rules is 'denied' (a TCP SYN gets no answer,
a UDP send is refused with EPERM); an answer or a refusal from the far end is 'allowed'; an
outcome that proves nothing about the filters (no route, a next hop that never answered,
silence after a UDP datagram) is 'inconclusive', and never agrees with an expectation unless
the flow says inconclusive_ok."""

from __future__ import annotations

import time

import pytest
from netns import BACKENDS, HOST_V4, Pair, run_module, sh
from sample import ADDRESSES, compile_for

from ansible_collections.warden.egress.plugins.modules.probe import check_next_hops
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.verify import expect_flows


@pytest.fixture()
def pair():
    """The pair, once IPv6 neighbour discovery can work on it (until the link-local address
    has finished duplicate address detection, the host cannot resolve its IPv6 next hop:
    that case is a dead next hop, tested below)."""
    with Pair() as p:
        deadline = time.monotonic() + 5
        while any("tentative" in sh("ip", "-6", "addr", "show", "dev", "eth0", ns=ns).stdout for ns in p.names):
            assert time.monotonic() < deadline, "IPv6 link-local addresses still tentative after 5 s"
            time.sleep(0.05)
        yield p


def probe(pair, tmp_path, flows, timeout=0.5):
    result = run_module("probe", str(tmp_path), {"flows": flows, "timeout": timeout}, ns=pair.host)
    assert "results" in result, result
    return result["results"]


def by_name(results):
    return {r["name"]: r for r in results}


def test_no_route_is_inconclusive(pair, tmp_path):
    """With no route at all, every flow fails at once with 'network unreachable': the packet
    never met a filter, so an expected-denied flow is not proven and does not pass."""
    sh("ip", "route", "del", "default", ns=pair.host)
    sh("ip", "-6", "route", "del", "default", ns=pair.host)
    flows = [
        {"name": "tcp4", "dst": "203.0.113.80", "port": 80, "expect": "denied"},
        {"name": "udp4", "dst": "203.0.113.53", "port": 53, "proto": "udp", "expect": "denied"},
        {"name": "tcp6", "dst": "2001:db8:5100::80", "port": 80, "expect": "denied"},
        {"name": "allowed4", "dst": "203.0.113.25", "port": 25, "expect": "allowed"},
        {"name": "accepted", "dst": "203.0.113.99", "port": 22, "expect": "denied", "inconclusive_ok": True},
    ]
    results = by_name(probe(pair, tmp_path, flows))
    for name in ("tcp4", "udp4", "tcp6", "allowed4", "accepted"):
        r = results[name]
        assert (r["outcome"], r["observed"], r["passed"]) == ("unreachable", "inconclusive", False), r
        assert "unreachable" in r["detail"].lower(), r
        assert r["seconds"] < 0.4, r  # refused by the routing table at once, not a timeout
    assert [n for n, r in results.items() if r["ok"]] == ["accepted"]


def test_dead_next_hop_is_inconclusive(pair, tmp_path):
    """A route through a next hop that never answers ARP or neighbour discovery: the SYN
    waits in the host and times out, which is not a drop by any filter."""
    sh("ip", "route", "add", "203.0.113.64/26", "via", "198.51.100.77", ns=pair.host)
    sh("ip", "-6", "route", "add", "2001:db8:5100:1::/64", "via", "2001:db8:10::77", ns=pair.host)
    flows = [
        {"name": "tcp4", "dst": "203.0.113.70", "port": 80, "expect": "denied"},
        {"name": "tcp6", "dst": "2001:db8:5100:1::70", "port": 80, "expect": "denied"},
        {"name": "udp4", "dst": "203.0.113.70", "port": 53, "proto": "udp", "expect": "denied"},
    ]
    results = by_name(probe(pair, tmp_path, flows))
    for name in ("tcp4", "tcp6"):
        r = results[name]
        assert (r["outcome"], r["observed"], r["ok"]) == ("unreachable", "inconclusive", False), r
        assert "the next hop" in r["detail"] and "INCOMPLETE" in r["detail"], r
    assert (results["udp4"]["observed"], results["udp4"]["ok"]) == ("inconclusive", False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_drop_is_denied(pair, tmp_path, backend):
    """The host's own rules, loaded as the renderer writes them: what they drop is denied
    (TCP times out with the next hop alive, UDP is refused with EPERM), what they let out
    is allowed, and every flow agrees with the oracle's expectation."""
    ir = compile_for("mail1")
    flows = expect_flows(ir, [
        {"name": "http", "dst": "203.0.113.80", "port": 80},
        {"name": "http v6", "dst": "2001:db8:5100::80", "port": 80},
        {"name": "dns to forwarder", "dst": "203.0.113.53", "port": 53, "proto": "udp"},
        {"name": "dns to forwarder v6", "dst": "2001:db8:5100::53", "port": 53, "proto": "udp"},
        {"name": "smtp to relay", "dst": "203.0.113.25", "port": 25},
        {"name": "smtp to relay v6", "dst": "2001:db8:5100::25", "port": 25},
    ], ADDRESSES["mail1"])
    assert [f["expect"] for f in flows] == ["denied"] * 4 + ["allowed"] * 2
    pair.load(ir, backend)
    try:
        results = by_name(probe(pair, tmp_path, flows))
    finally:
        pair.unload()
    outcomes = {name: (r["outcome"], r["observed"], r["ok"]) for name, r in results.items()}
    assert outcomes == {
        "http": ("timeout", "denied", True),
        "http v6": ("timeout", "denied", True),
        "dns to forwarder": ("blocked", "denied", True),
        "dns to forwarder v6": ("blocked", "denied", True),
        "smtp to relay": ("refused", "allowed", True),
        "smtp to relay v6": ("refused", "allowed", True),
    }


def test_udp_silence_is_inconclusive(pair, tmp_path):
    """A far end that ignores a datagram looks exactly like a drop on the path: silence after
    a UDP datagram proves nothing. The same far end refusing (port unreachable) proves the
    datagram left."""
    sh("nft", "-f", "-", ns=pair.world, data="table inet far_end {\n chain input {\n  type filter hook input priority 0; policy accept;\n"
       "  udp dport 123 drop\n }\n}\n")
    flows = [
        {"name": "silent", "dst": "203.0.113.53", "port": 123, "proto": "udp", "expect": "denied"},
        {"name": "silent, accepted", "dst": "203.0.113.53", "port": 123, "proto": "udp", "expect": "denied", "inconclusive_ok": True},
        {"name": "refusing", "dst": "203.0.113.53", "port": 53, "proto": "udp", "expect": "allowed"},
    ]
    results = by_name(probe(pair, tmp_path, flows))
    assert (results["silent"]["outcome"], results["silent"]["observed"], results["silent"]["ok"]) == ("timeout", "inconclusive", False)
    assert results["silent, accepted"]["ok"] is True
    assert (results["refusing"]["outcome"], results["refusing"]["observed"], results["refusing"]["ok"]) == ("refused", "allowed", True)


def test_each_flow_carries_how_long_its_probe_took(pair, tmp_path):
    """seconds is measured around each probe (the JUnit report's testcase time): a far end that
    ignores a SYN holds the probe for the whole timeout, one that refuses answers at once, and
    even that takes more than nothing (it is not rounded to 0)."""
    sh("nft", "-f", "-", ns=pair.world, data="table inet far_end {\n chain input {\n  type filter hook input priority 0; policy accept;\n"
       "  tcp dport 81 drop\n }\n}\n")
    flows = [
        {"name": "ignored", "dst": "203.0.113.80", "port": 81},
        {"name": "refused", "dst": "203.0.113.80", "port": 80},
        {"name": "refused v6", "dst": "2001:db8:5100::80", "port": 80},
    ]
    started = time.monotonic()
    results = by_name(probe(pair, tmp_path, flows, timeout=0.6))
    took = time.monotonic() - started
    assert [results[n]["outcome"] for n in ("ignored", "refused", "refused v6")] == ["timeout", "refused", "refused"], results
    assert 0.6 <= results["ignored"]["seconds"] < took, results
    for name in ("refused", "refused v6"):
        assert 0 < results[name]["seconds"] < 0.3, results
    assert all(isinstance(r["seconds"], float) for r in results.values())


def test_inconclusive_ok_does_not_excuse_a_conclusive_mismatch(pair, tmp_path):
    """inconclusive_ok accepts only an outcome that proves nothing: a flow the policy should
    deny that connects is still a mismatch."""
    flows = [{"name": "open", "dst": "203.0.113.80", "port": 80, "expect": "denied", "inconclusive_ok": True, "src": HOST_V4}]
    result = probe(pair, tmp_path, flows)[0]
    assert (result["outcome"], result["observed"], result["ok"]) == ("refused", "allowed", False)


def test_next_hop_unreadable_makes_tcp_timeouts_inconclusive():
    """Without the neighbour table, a TCP timeout cannot be told from a dead next hop."""
    def run(args):
        raise OSError("the ip command (iproute2) is not installed")

    results = [
        {"name": "t", "dst": "203.0.113.80", "port": 80, "proto": "tcp", "expect": "denied", "inconclusive_ok": False,
         "outcome": "timeout", "observed": "denied", "ok": True, "detail": "no answer within 2 s"},
        {"name": "b", "dst": "203.0.113.53", "port": 53, "proto": "udp", "expect": "denied", "inconclusive_ok": False,
         "outcome": "blocked", "observed": "denied", "ok": True, "detail": "[Errno 1] Operation not permitted"},
    ]
    check_next_hops(results, run)
    assert (results[0]["observed"], results[0]["ok"]) == ("inconclusive", False)
    assert "iproute2" in results[0]["detail"]
    assert (results[1]["observed"], results[1]["ok"]) == ("denied", True)
