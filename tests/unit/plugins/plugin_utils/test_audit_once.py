"""Audit mode logs each would-be-denied flow once, with the policy that decided (host or
edge). Real packets from a host namespace and through a gateway namespace, on nftables and
iptables; what was logged is read from the kernel's own counters on the rules that write
the lines and from the flows the kernel remembers, not from the kernel log (lines logged in
a network namespace other than the first one may never reach it)."""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import tempfile

import pytest
from netns import BACKENDS, HOST_V4, Pair, Routed, rendered, run_module, sh
from sample import EDGE, compile_for, edge_ir

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.learn.collect import parse_line
from ansible_collections.warden.egress.plugins.plugin_utils.render.iptables import render as render_iptables
from ansible_collections.warden.egress.plugins.plugin_utils.render.nftables import render as render_nftables

DST4, DST6 = "203.0.113.9", "2001:db8:5100::9"
IDENTS = itertools.count(1)
CLIENT = "198.51.100.14"  # ws1, role client, behind the gateway
# ICMP echo requests (each with an identifier of its own, never used before in the
# namespace, so that each is a new connection to the kernel, not a repeat it lets through as
# established) and packets of an experimental
# protocol (253): flows without ports, keyed on the addresses and the protocol.
RAW = (
    "import socket, struct, sys\n"
    "dst, proto, count, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)\n"
    "for ident in range(base, base + count):\n"
    "    s.sendto(struct.pack('!BBHHH', 8, 0, 0xffff - 0x0800 - ident, ident, 0) if proto == 1 else b'warden', (dst, 0))\n"
)


def flows(src: str | None = None) -> list[dict]:
    """The same TCP flow five times, the same port over UDP twice (another flow: the
    protocol is part of the key), another TCP port once, and one IPv6 flow three times."""
    out = [{"dst": DST4, "port": 8443, "proto": "tcp"}] * 5 + [{"dst": DST4, "port": 8443, "proto": "udp"}] * 2
    out += [{"dst": DST4, "port": 8444, "proto": "tcp"}] + ([] if src else [{"dst": DST6, "port": 8443, "proto": "tcp"}] * 3)
    return [dict(f, src=src) if src else dict(f) for f in out]


def send(topology, ns: str, src: str | None) -> None:
    for result in topology.probe(flows(src), timeout=3, workers=1) if src is None else Pair.probe(topology, flows(src), 3, 1, ns=ns):
        assert result["passed"], result  # audit mode lets everything through
    for proto, count in ((1, 3), (253, 2)):
        sh("python3", "-c", RAW, DST4, str(proto), str(count), str(next(IDENTS) * 16), ns=ns)


def nft_audit(topology, ns: str, tag: str) -> tuple[dict, dict]:
    """Packets counted by the rules that write audit lines, per set they add to; and the
    flows in each set."""
    chain = json.loads(sh("nft", "-j", "list", "chain", "inet", "warden_egress", f"audit_{tag}", ns=ns).stdout)
    logged: dict = {}
    for item in chain["nftables"]:
        exprs = item.get("rule", {}).get("expr", [])
        prefix = [e["log"]["prefix"] for e in exprs if "log" in e]
        if prefix:
            assert prefix == [f"warden-egress audit[{tag}]: "]
            name = next(e["set"]["set"] for e in exprs if "set" in e).lstrip("@")
            logged[name] = sum(e["counter"]["packets"] for e in exprs if "counter" in e)
    seen: dict = {}
    for name in logged:
        listing = json.loads(sh("nft", "-j", "list", "set", "inet", "warden_egress", name, ns=ns).stdout)
        elements = [e for item in listing["nftables"] for e in item.get("set", {}).get("elem", [])]
        keys = [(e["elem"]["val"] if "elem" in e else e)["concat"] for e in elements]
        seen[name] = sorted((tuple(part if isinstance(part, (str, int)) else json.dumps(part) for part in key) for key in keys), key=str)
    return logged, seen


def ipt_audit(ns: str, tag: str) -> tuple[dict, dict, dict]:
    """Packets counted per family by the rule that logs and by the rule after it that lets
    every packet through; and the flows the family's audit set remembers."""
    logged: dict = {}
    passed: dict = {}
    for family, tool in (("ipv4", "iptables-save"), ("ipv6", "ip6tables-save")):
        for line in sh(tool, "-c", "-t", "filter", ns=ns).stdout.splitlines():
            match = re.match(rf"^\[(\d+):\d+\] -A warden_egress-audit{tag} ", line)
            if not match or "--add-set" in line:
                continue
            target = logged if "-j LOG" in line else passed
            target[family] = target.get(family, 0) + int(match.group(1))
            if "-j LOG" in line:
                assert f'--log-prefix "warden-egress audit[{tag}]: "' in line and ("--log-uid" in line) == (tag == "host"), line
    remembered: dict = {}
    for line in sh("ipset", "save", ns=ns).stdout.splitlines():
        words = line.split()
        if words[0] == "add" and f"-audit~{tag}." in words[1]:
            family = "ipv6" if words[1].endswith(".6") else "ipv4"
            remembered.setdefault(family, []).append(words[2])
    return logged, passed, {family: sorted(flows) for family, flows in remembered.items()}


def expected_nft(src: str, v6: bool) -> dict:
    seen = {
        "audit_seen4": sorted([(src, DST4, "tcp", 8443), (src, DST4, "tcp", 8444), (src, DST4, "udp", 8443)], key=str),
        "audit_seen_other4": sorted([(src, DST4, "icmp"), (src, DST4, 253)], key=str),
        "audit_seen6": [],
        "audit_seen_other6": None,  # IPv6 neighbour traffic of the namespace itself may land here
    }
    if v6:
        seen["audit_seen6"] = [(str(ipaddress.ip_address("2001:db8:10::11")), DST6, "tcp", 8443)]
    return seen


@pytest.fixture(scope="module")
def pair():
    with Pair() as topology:
        yield topology


@pytest.fixture(scope="module")
def routed():
    with Routed([CLIENT], []) as topology:
        yield topology


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_host_logs_each_flow_once_not_each_packet(pair, backend):
    """mail1 in audit mode: 13 would-be-denied packets in 6 flows (5 IPv4, 1 IPv6) are all
    let through, and exactly 6 audit lines are written, tagged host."""
    pair.load(compile_for("mail1", egress_mode="audit", egress_platform=backend), backend)
    try:
        send(pair, pair.host, None)
        if backend == "nftables":
            logged, seen = nft_audit(pair, pair.host, "host")
        else:
            logged, passed, remembered = ipt_audit(pair.host, "host")
    finally:
        pair.unload()
    if backend == "nftables":
        want = expected_nft(HOST_V4, v6=True)
        for name, flows_seen in want.items():
            if flows_seen is not None:
                assert seen[name] == flows_seen, (name, seen[name])
                assert logged[name] == len(flows_seen), logged
    else:
        # 5 IPv4 flows (two TCP ports, one UDP, ICMP echo, protocol 253): one line each
        assert logged["ipv4"] == 5, logged
        ports = ("tcp:8443", "tcp:8444", "udp:8443", "icmp:echo-request", "253:0")
        assert remembered["ipv4"] == sorted(f"{HOST_V4},{port},{DST4}" for port in ports), remembered
        assert logged["ipv6"] >= 1 and f"2001:db8:10::11,tcp:8443,{DST6}" in remembered["ipv6"], (logged, remembered)
        # Every packet went through: 6 TCP, 2 UDP, 3 ICMP, 2 of protocol 253.
        assert passed["ipv4"] == 13, passed


def test_a_full_audit_set_on_iptables_logs_every_packet_and_drops_none(pair):
    """When the kernel remembers as many flows as the set holds, a new flow may not be added:
    its packets are then logged each time, and every packet still gets through (audit mode
    never drops; a full hashlimit table would)."""
    pair.load(compile_for("mail1", egress_mode="audit", egress_platform="iptables"), "iptables")
    try:
        name = next(line.split()[1] for line in sh("ipset", "save", ns=pair.host).stdout.splitlines()
                    if line.startswith("create ") and "-audit~host.4 " in line)
        # fill it with flows nobody sends (the set's maxelem, as the renderer writes it)
        maxelem = int(re.search(r"maxelem (\d+)", sh("ipset", "list", "-t", name, ns=pair.host).stdout).group(1))
        filler = "".join(f"add {name} 198.51.100.250,tcp:{1 + n % 65535},203.0.113.{200 + n // 65535}\n" for n in range(maxelem))
        sh("ipset", "restore", ns=pair.host, data=filler)
        for extra in range(1, 11):  # the kernel may take one more before it says the hash is full
            if sh("ipset", "add", name, f"198.51.100.251,tcp:{extra},203.0.113.1", ns=pair.host, check=False).returncode:
                break
        else:
            pytest.fail(f"{name} takes more than its maxelem {maxelem}")
        send(pair, pair.host, None)  # asserts every flow got through
        logged, passed, remembered = ipt_audit(pair.host, "host")
    finally:
        pair.unload()
    # The kernel's "full" is approximate (it counts per region, and may still fit a few
    # flows), so what the set remembered varies; what must not vary: nothing is dropped, and
    # every flow is logged at least once.
    assert len(remembered["ipv4"]) >= maxelem, len(remembered["ipv4"])
    assert passed["ipv4"] == 13, passed
    assert logged["ipv4"] >= 5, logged


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gateway_logs_each_forwarded_flow_once_tagged_edge(routed, backend):
    """The edge in audit mode: a client behind the gateway sends the same flows; one line per
    flow, tagged edge, and nothing in the host's chain."""
    routed.load([compile_for("proxy1", egress_mode="audit", egress_platform=backend),
                 edge_ir(egress_mode="audit", egress_platform=backend)], backend)
    try:
        send(routed, routed.client, CLIENT)
        if backend == "nftables":
            logged, seen = nft_audit(routed, routed.gw, "edge")
            host_logged, dummy = nft_audit(routed, routed.gw, "host")
        else:
            logged, dummy, remembered = ipt_audit(routed.gw, "edge")
            host_logged, dummy, dummy = ipt_audit(routed.gw, "host")
    finally:
        routed.unload()
    if backend == "nftables":
        want = expected_nft(CLIENT, v6=False)
        for name in ("audit_seen4", "audit_seen_other4"):
            assert seen[name] == want[name], (name, seen[name])
            assert logged[name] == len(want[name]), logged
        assert host_logged["audit_seen4"] == 0, host_logged
    else:
        assert logged["ipv4"] == 5 and len(remembered["ipv4"]) == 5, (logged, remembered)
        assert all(flow.startswith(f"{CLIENT},") for flow in remembered["ipv4"]), remembered
        assert not host_logged.get("ipv4"), host_logged


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_apply_modules_switch_to_audit_and_back_and_traffic_is_no_change(pair, backend):
    """Enforce, then audit: the audit chain replaces the deny chain; flows fill the kernel's
    memory of flows, and applying the same audit policy again changes nothing; back to
    enforce, the audit chain is gone."""
    def apply(mode: str, tmp: str) -> dict:
        ir = compile_for("mail1", egress_mode=mode, egress_platform=backend)
        if backend == "nftables":
            args = {"content": rendered(ir, backend), "path": os.path.join(tmp, "etc", "warden_egress.nft")}
        else:
            args = {**{k: v for k, v in rendered(ir, backend).items() if k in ("ipset", "ipv4", "ipv6")}, "directory": os.path.join(tmp, "etc")}
        result = run_module("nft_apply" if backend == "nftables" else "iptables_apply", tmp, {**args, "state_dir": os.path.join(tmp, "state")}, ns=pair.host)
        assert not result.get("failed"), result
        return result

    def chains() -> str:
        if backend == "nftables":
            return sh("nft", "list", "table", "inet", "warden_egress", ns=pair.host).stdout
        return sh("iptables-save", "-t", "filter", ns=pair.host).stdout

    with tempfile.TemporaryDirectory() as tmp:
        try:
            assert apply("enforce", tmp)["changed"]
            assert "audit" not in chains()
            assert apply("audit", tmp)["changed"]
            assert re.search(r"chain audit_host|:warden_egress-audithost", chains()) and not re.search(r"chain deny |:warden_egress-deny ", chains())
            send(pair, pair.host, None)
            again = apply("audit", tmp)
            assert not again["changed"], again
            assert apply("enforce", tmp)["changed"]
            assert "audit" not in chains() and re.search(r"chain deny |:warden_egress-deny ", chains())
        finally:
            pair.unload()


def test_each_policy_has_its_audit_chain_and_the_host_path_logs_the_local_user():
    """Enforce mode, and audit mode without denied lines, have no audit chain (the golden
    files hold the rest of their rendering unchanged)."""
    for ir in (compile_for("mail1"), compile_for("mail1", egress_mode="audit", egress_log={"denied": False})):
        assert "audit_" not in render_nftables(ir) and "-audit" not in render_iptables(ir)["ipv4"]
    text = render_nftables([compile_for("proxy1", egress_mode="audit"), edge_ir(egress_mode="audit")])
    host = text[text.index("chain audit_host"):text.index("chain audit_edge")]
    edge = text[text.index("chain audit_edge"):]
    edge = edge[:edge.index("\t}")]
    assert host.count('log prefix "warden-egress audit[host]: " flags skuid') == 4
    assert edge.count('log prefix "warden-egress audit[edge]: " accept') == 4 and "skuid" not in edge


def test_an_audit_line_reads_back_with_its_tag_and_user():
    """The prefix the renderers write, in front of the fields the kernel logs, parses back
    into the flow, the policy that decided and the local user."""
    fields = "IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.9 LEN=60 TOS=0x00 PROTO=TCP SPT=40000 DPT=8443 WINDOW=64240 SYN URGP=0 UID=1001 GID=1001"
    nft = re.search(r'log prefix "([^"]+)" flags skuid', render_nftables(compile_for("mail1", egress_mode="audit"))).group(1)
    ipt_text = render_iptables(compile_for("mail1", egress_mode="audit", egress_platform="iptables"))["ipv4"]
    ipt = re.search(r'--log-prefix "([^"]+)" --log-uid', ipt_text).group(1)
    edge_text = render_nftables(edge_ir(egress_mode="audit"))
    edge = re.search(r'log prefix "([^"]+)"', edge_text[edge_text.index("chain audit_edge"):]).group(1)
    for prefix, tag in ((nft, "host"), (ipt, "host"), (edge, "edge")):
        kind, record = parse_line(f"2026-12-04T10:00:00+0000 mail1 kernel: [ 12.3] {prefix}{fields}")
        assert kind == "flow", record
        assert (record["word"], record["decided_by"], record["uid"], record["gid"]) == ("audit", tag, 1001, 1001)
        assert (record["src"], record["dst"], record["proto"], record["dport"]) == ("198.51.100.11", "203.0.113.9", "tcp", 8443)


def test_every_accepted_prefix_fits_with_its_tag():
    """iptables' LOG prefix holds 29 characters: in audit mode the prefix, a space and
    'audit[host]: ' must fit, which leaves 15; the compiler refuses more, naming the variable.
    Enforce mode, and audit mode without denied lines, keep the 17 they had."""
    from sample import ADDRESSES, GROUPS, site

    cases = [("a" * 15, "iptables", "audit", True, False), ("a" * 16, "iptables", "audit", True, True),
             ("a" * 16, "iptables", "audit", False, False), ("a" * 17, "iptables", "enforce", True, False),
             ("a" * 24, "nftables", "audit", True, False)]
    for prefix, platform, mode, denied, refused in cases:
        variables = site(egress_role="mail_server", egress_mode=mode, egress_platform=platform, egress_log={"prefix": prefix, "denied": denied})
        if refused:
            with pytest.raises(PolicyError, match=r"egress_log\.prefix.*egress_mode audit"):
                compile_policy(variables, "mail1", ADDRESSES, GROUPS)
            continue
        ir = compile_policy(variables, "mail1", ADDRESSES, GROUPS)
        if platform == "iptables":
            text = render_iptables(ir)["ipv4"]
            assert (f'--log-prefix "{prefix} audit[host]: "' in text) == (mode == "audit" and denied), prefix
        else:
            assert f'"{prefix} audit[host]: "' in render_nftables(ir)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gateway_in_audit_mode_logs_the_flows_of_a_burst_above_its_rate(routed, backend):
    """A client opens more new connections than the edge's per-source rate lets through: those
    above it go to the rate-limit chain, which in audit mode logs the burst and then lets the
    flow be judged as any other, so every would-be-denied flow of the burst is audited (and
    enforcing would not deny one nobody saw)."""
    ports = list(range(9101, 9109))  # eight flows the client role does not allow, at once
    edge = {**EDGE, "conn_limit": {"rate": "1/minute", "burst": 1}}
    routed.load([compile_for("proxy1", egress_mode="audit", egress_platform=backend),
                 edge_ir(edge=edge, egress_mode="audit", egress_platform=backend)], backend)
    try:
        for result in Pair.probe(routed, [{"dst": DST4, "port": port, "proto": "tcp", "src": CLIENT} for port in ports], 3, 1, ns=routed.client):
            assert result["passed"], result  # audit mode lets everything through
        if backend == "nftables":
            logged, seen = nft_audit(routed, routed.gw, "edge")
            flows_seen = [key for key in seen["audit_seen4"] if key[1] == DST4]
            bursts = None  # nft's rate-limit chain counts nothing; the iptables run shows the burst is over the rate
        else:
            logged, dummy, remembered = ipt_audit(routed.gw, "edge")
            flows_seen = remembered.get("ipv4", [])
            bursts = sum(int(re.match(r"^\[(\d+):", line).group(1)) for line in sh("iptables-save", "-c", "-t", "filter", ns=routed.gw).stdout.splitlines()
                         if re.match(r"^\[\d+:\d+\] -A warden_egress-ratelimit .*-j LOG", line))
    finally:
        routed.unload()
    assert bursts is None or bursts >= 1, "the burst did not exceed the rate (nothing logged by the rate-limit chain)"
    assert len(flows_seen) == len(ports), (logged, flows_seen)
    assert sorted(int(str(key[3] if backend == "nftables" else key.split(",")[1].split(":")[1])) for key in flows_seen) == ports
