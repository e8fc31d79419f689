"""probe: what each outcome proves, on real sockets in network namespaces.

A drop by the host's own nftables or iptables rules is 'denied' (a TCP SYN gets no answer,
a UDP send is refused with EPERM); an answer or a refusal from the far end is 'allowed'; an
outcome that proves nothing about the filters (no route, a next hop that never answered,
silence after a UDP datagram) is 'inconclusive', and never agrees with an expectation unless
the flow says inconclusive_ok."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time

import pytest
from netns import BACKENDS, HOST_V4, TOP, Pair, run_module, sh
from sample import ADDRESSES, compile_for

from ansible_collections.warden.egress.plugins.modules.probe import check_next_hops, settle
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


# Flows to DNS names: the probe asks the host's own resolver (its /etc/resolv.conf) just before
# it connects. The site of test_dns_kernel: the host namespace runs the policy and its dnsmasq,
# which fills the name sets as it answers; the world runs the lab's DNS server.


def _dns_kernel():
    path = os.path.join(TOP, "tests", "unit", "plugins", "plugin_utils", "test_dns_kernel.py")
    spec = importlib.util.spec_from_file_location("warden_egress_probe_dns_site", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", name="named")
def fixture_named(tmp_path_factory):
    """The site, and the host namespace's /etc/resolv.conf pointing at its dnsmasq (ip netns
    exec mounts /etc/netns/NAME/resolv.conf there), as the linux role writes it on such a host."""
    with Pair() as pair:
        site = _dns_kernel().Site(pair, "nftables", str(tmp_path_factory.mktemp("named")), {"cache_ttl": 2, "grace": 1})
        etc = f"/etc/netns/{pair.host}"
        try:
            os.makedirs(etc)
            with open(f"{etc}/resolv.conf", "w", encoding="utf-8") as handle:
                handle.write("nameserver 127.0.0.1\noptions timeout:1 attempts:2\n")
            yield site
        finally:
            shutil.rmtree(etc, ignore_errors=True)
            site.close()


def _answered(site, name: str) -> set:
    """Every address the world's DNS server gave for ``name``."""
    with open(site.world_log, encoding="utf-8") as handle:
        return {a for line in handle for a in [json.loads(line)] if a["name"] == name for a in a["addresses"]}


def test_a_flow_to_a_name_is_resolved_by_the_host_and_tried_to_the_address_given(named, tmp_path):
    """The verify role's rows for flows to names, probed in the host: each name is resolved
    through the host's resolver, which fills the sets as it answers, and the address it gave
    is tried at once, in each family of the answer or in the one asked for. A covered name gets
    out; a name only reached through a CNAME the policy does not cover is dropped."""
    flows = expect_flows(named.ir, [
        {"name": "api", "dst": "dns:api.example.com", "port": 443},
        {"name": "api v6", "dst": "dns:api.example.com", "port": 443, "family": "ipv6"},
        {"name": "chain", "dst": "dns:www.example.com", "port": 443},
    ], ADDRESSES["mail1"])
    assert [(f.get("family"), f["expect"]) for f in flows] == [(None, "allowed"), ("ipv6", "allowed"), (None, "denied")]
    results = by_name(probe(named.pair, tmp_path, flows, timeout=1.0))
    api = results["api"]
    assert api["ok"] and api["observed"] == "allowed" and api["outcome"] in ("connected", "refused"), api
    assert [t["family"] for t in api["tried"]] == ["ipv6", "ipv4"] or [t["family"] for t in api["tried"]] == ["ipv4", "ipv6"], api
    tried = [t["dst"] for t in api["tried"]]
    assert set(tried) <= set(api["resolved"]) <= _answered(named, "api.example.com"), api  # what the resolver gave, not anything else
    assert api["dst"] == f"dns:api.example.com ({', '.join(tried)})" and api["dns_name"] == "api.example.com"
    assert api["detail"].startswith("api.example.com resolved to "), api
    v6 = results["api v6"]
    assert v6["ok"] and [t["family"] for t in v6["tried"]] == ["ipv6"] and all(":" in a for a in v6["resolved"]), v6
    chain = results["chain"]
    assert [t["dst"] for t in chain["tried"]] == ["2001:db8:5100::77", "203.0.113.77"] or \
        sorted(t["dst"] for t in chain["tried"]) == ["2001:db8:5100::77", "203.0.113.77"], chain
    assert (chain["outcome"], chain["observed"], chain["ok"]) == ("timeout", "denied", True), chain


def test_a_name_is_resolved_immediately_before_the_connection(named, tmp_path):
    """Both halves of the sets emptied, then the probe: its own lookup (a TTL 0 name, never
    cached) puts the address back before its first packet. A flow to an address the set no
    longer holds, tried without a lookup, is dropped."""
    (answer,) = named.ask([["zero.example.com", "A"]])
    old = answer["addresses"][0]
    named.empty("a")
    named.empty("b")
    flows = expect_flows(named.ir, [{"name": "zero", "dst": "dns:zero.example.com", "port": 443}], ADDRESSES["mail1"])
    flows.append({"name": "old address", "dst": old, "port": 443, "expect": "denied"})
    results = by_name(probe(named.pair, tmp_path, flows, timeout=1.0))
    zero = results["zero"]
    assert zero["ok"] and zero["observed"] == "allowed" and len(zero["tried"]) == 1, zero
    assert zero["tried"][0]["dst"] != old and zero["tried"][0]["dst"] in named.members(), zero
    assert results["old address"]["ok"], results["old address"]


@pytest.mark.parametrize("flow", [
    {"name": "no such name", "dst": "dns:nowhere.example.com", "port": 443, "expect": "denied", "inconclusive_ok": True},
    {"name": "no address of the family", "dst": "dns:zero.example.com", "port": 443, "family": "ipv6", "expect": "allowed",
     "inconclusive_ok": True},
])
def test_a_name_that_does_not_resolve_fails_the_check(named, tmp_path, flow):
    """Nothing was tried, so nothing is proven: the outcome says so, and even inconclusive_ok
    does not make it pass."""
    (result,) = probe(named.pair, tmp_path, [flow], timeout=1.0)
    assert (result["outcome"], result["observed"], result["passed"], result["ok"]) == ("unresolved", "inconclusive", False, False), result
    assert result["tried"] == [] and result["dst"] == f"{flow['dst']} (not resolved)", result
    assert result["detail"].startswith(f"{flow['dst'][4:]} did not resolve through the host's resolver ("), result


@pytest.mark.parametrize("flow, message", [
    ({"dst": "dns:*.example.com", "port": 443}, r"flows\[0\]\.dst: 'dns:\*\.example\.com' is not dns: and a host name"),
    ({"dst": "dns:{{ lookup('pipe', 'id') }}", "port": 443}, r"flows\[0\]\.dst: .* is not dns: and a host name"),
    ({"dst": "api.example.com", "port": 443}, r"flows\[0\]\.dst: 'api\.example\.com' is not an IP address or dns:NAME"),
    ({"dst": "203.0.113.7", "port": 443, "family": "ipv4"}, r"flows\[0\]\.family: 'ipv4' is for a flow to dns:NAME"),
    ({"dst": "dns:api.example.com", "port": 443, "family": "ipv6", "src": "198.51.100.11"}, r"flows\[0\]\.family: 'ipv6' is not the family of src"),
])
def test_a_bad_flow_to_a_name_fails_the_module(tmp_path, flow, message):
    result = run_module("probe", str(tmp_path), {"flows": [flow]})
    assert result.get("failed") and __import__("re").search(message, result["msg"]), result


def test_each_address_tried_for_a_name_is_judged_and_its_next_hop_checked():
    """A name tried in two families agrees only if both tries do; a TCP timeout of one try is
    checked against the neighbour table like any other, and the flow judged again."""
    row = {"name": "api", "dst": "dns:api.example.com", "port": 443, "proto": "tcp", "expect": "denied", "inconclusive_ok": False,
           "dns_name": "api.example.com", "resolved": ["203.0.113.9", "2001:db8:5100::9"], "tried": [
               {"dst": "203.0.113.9", "family": "ipv4", "proto": "tcp", "outcome": "timeout", "observed": "denied", "detail": "no answer within 1 s"},
               {"dst": "2001:db8:5100::9", "family": "ipv6", "proto": "tcp", "outcome": "refused", "observed": "allowed", "detail": ""}]}
    settle(row)
    assert (row["outcome"], row["observed"], row["ok"], row["passed"]) == ("refused", "allowed", False, False), row
    assert row["dst"] == "dns:api.example.com (203.0.113.9, 2001:db8:5100::9)"
    row["tried"][1].update(outcome="timeout", observed="denied", detail="no answer within 1 s")
    settle(row)
    assert (row["observed"], row["ok"]) == ("denied", True)

    def run(args):
        if args[2] == "neigh":
            return json.dumps([{"dst": "2001:db8:10::fe", "dev": "eth0", "state": ["INCOMPLETE"]}])
        return json.dumps([{"gateway": "2001:db8:10::fe" if ":" in args[-1] else "198.51.100.254", "dev": "eth0"}])

    check_next_hops([row], run)
    assert [t["outcome"] for t in row["tried"]] == ["timeout", "unreachable"]
    assert (row["outcome"], row["observed"], row["ok"]) == ("unreachable", "inconclusive", False), row
