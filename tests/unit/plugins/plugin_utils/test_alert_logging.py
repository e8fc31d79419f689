"""Alert logging at the gateway: each alert class has its own log limit, per source, so one
noisy host (or class) cannot hide another. Real packets through a gateway namespace on
nftables and iptables; what was logged is read from the kernel's own counters (the rule
that writes the log line) and meters (one entry per source), not from the shared kernel log."""

from __future__ import annotations

import ipaddress
import json
import re
import time

import pytest
from netns import BACKENDS, Routed, sh
from sample import EDGE, compile_for, edge_ir

from ansible_collections.warden.egress.plugins.plugin_utils.render.iptables import render as render_iptables
from ansible_collections.warden.egress.plugins.plugin_utils.render.common import alert_burst, alert_timeout
from ansible_collections.warden.egress.plugins.plugin_utils.render.nftables import render as render_nftables

# 14 hosts inside the trusted prefix, none a mail server: 12 IPv4, 2 IPv6.
IRC_V4 = [f"198.51.100.{20 + i}" for i in range(12)]
IRC_V6 = ["2001:db8:10::20", "2001:db8:10::21"]
NOISY, QUIET = "198.51.100.40", "198.51.100.41"
PREFIX = "warden-egress alert: "


def flow(src, port, proto="tcp"):
    return {"src": src, "dst": "2001:db8:5100::9" if ":" in src else "203.0.113.9", "port": port, "proto": proto}


@pytest.fixture(scope="module")
def routed():
    with Routed(IRC_V4 + [NOISY, QUIET], IRC_V6) as topology:
        yield topology


def nft_logged(routed) -> dict:
    """Packets counted by the rules that write alert lines, per rule comment."""
    listing = json.loads(routed.nft("-j", "list", "chain", "inet", "warden_egress", "forward").stdout)
    counts: dict = {}
    for item in listing["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        exprs = rule["expr"]
        if any(e.get("log", {}).get("prefix") == PREFIX for e in exprs):
            packets = sum(e["counter"]["packets"] for e in exprs if "counter" in e)
            counts[rule.get("comment")] = counts.get(rule.get("comment"), 0) + packets
    return counts


def nft_sources(routed, name: str) -> set:
    out = set()
    for family in ("v4", "v6"):
        listing = json.loads(routed.nft("-j", "list", "set", "inet", "warden_egress", f"alert_{name}_{family}").stdout)
        for item in listing["nftables"]:
            for element in item.get("set", {}).get("elem", []):
                value = element["elem"]["val"] if isinstance(element, dict) and "elem" in element else element
                out.add(value)
    return out


def ipt_counts(routed) -> tuple[dict, dict]:
    """Packets counted per rule comment: by the LOG rules, and by the rules that deny."""
    logged: dict = {}
    denied: dict = {}
    for tool in ("iptables-save", "ip6tables-save"):
        for line in sh(tool, "-c", "-t", "filter", ns=routed.gw).stdout.splitlines():
            match = re.match(r'^\[(\d+):\d+\] -A warden_egress-forward .*--comment "([^"]+)"', line)
            if not match:
                continue
            target = logged if f'--log-prefix "{PREFIX}"' in line else denied
            target[match.group(2)] = target.get(match.group(2), 0) + int(match.group(1))
    return logged, denied


def ipt_sources(routed, name: str) -> set:
    out = set()
    for directory in ("ipt_hashlimit", "ip6t_hashlimit"):
        listing = sh("sh", "-c", f"cat /proc/net/{directory}/*{name}", ns=routed.gw, check=False).stdout
        # "<expires> <src>:<port>-><dst>:<port> <credit> <credit_cap> <cost>"
        out.update(str(ipaddress.ip_address(line.split()[1].split("->")[0].rsplit(":", 1)[0].strip("[]")))
                   for line in listing.splitlines() if line.strip())
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_source_of_every_class_gets_its_alert_logged(routed, backend):
    """One host sends 20 SMTP attempts (an alert class: it is no mail server); then 14 hosts
    try IRC at once, a second host tries SMTP, and the noisy host tries a backdoor port.
    The noisy host gets its burst of lines and no more; every other source of every class
    gets its line. Under one limit shared by all alerts, 5 lines were written in all."""
    ir = edge_ir()
    routed.load(ir, backend)
    try:
        start = time.monotonic()
        routed.probe([flow(NOISY, 25) for dummy in range(20)], timeout=0.5, workers=20)
        results = routed.probe([flow(src, 6667) for src in IRC_V4 + IRC_V6] + [flow(QUIET, 587), flow(NOISY, 31337, "udp")],
                               timeout=0.5, workers=32)
        elapsed = time.monotonic() - start
        assert not any(r["passed"] for r in results)
        if backend == "nftables":
            logged = nft_logged(routed)
            irc, smtp = nft_sources(routed, "irc"), nft_sources(routed, "smtp")
        else:
            logged, denied = ipt_counts(routed)
            irc, smtp = ipt_sources(routed, "irc"), ipt_sources(routed, "smtp")
            # Every denied IRC packet was logged.
            assert logged.get("alert: irc") == denied.get("alert: irc") == 14
    finally:
        routed.unload()
    # One SYN per attempt (the probe gives up before TCP retries): 14 IRC lines, one per host.
    assert logged.get("alert: irc") == 14, logged
    assert irc == set(IRC_V4 + IRC_V6)
    # The noisy host: its burst (5), and one more per 6 s of refill at 10/minute; the quiet
    # host's SMTP line is not hidden by it.
    assert 5 + 1 <= logged.get("alert: smtp", 0) <= 5 + 1 + int(elapsed / 6) + 1, (logged, elapsed)
    assert smtp == {NOISY, QUIET}
    # Its backdoor attempt is another class, with its own limit.
    assert logged.get("alert: backdoor") == 1, logged


def test_each_class_has_its_own_meter_and_the_verdict_chain_does_not_log_alerts():
    text = render_nftables(edge_ir())
    for name in ("irc", "backdoor", "smtp"):
        assert f"set alert_{name}_v4 {{" in text and f"set alert_{name}_v6 {{" in text
        assert f"update @alert_{name}_v4 {{ ip saddr limit rate 10/minute burst 5 packets }} counter log prefix \"{PREFIX}\"" in text
    assert re.search(r"\tchain alert \{\n\t\tdrop comment \"alert\"\n\t\}", text)
    files = render_iptables(edge_ir())
    names = set(re.findall(r"--hashlimit-upto 10/minute --hashlimit-burst 5 --hashlimit-mode srcip --hashlimit-name (\S+)", files["ipv4"]))
    generation = files["generation"]
    assert names == {f"w{generation}4irc", f"w{generation}4backdoo", f"w{generation}4smtp"}
    assert all(len(name) <= 15 for name in names)
    assert not [line for line in files["ipv4"].splitlines() if line.startswith("-A warden_egress-alert ") and "LOG" in line]


def test_alert_lines_follow_egress_log():
    quiet = edge_ir(egress_log={"denied": False})
    assert "log prefix" not in render_nftables(quiet) and "alert_irc" not in render_nftables(quiet)
    assert "-j LOG" not in render_iptables(quiet)["ipv4"]
    # A slow rate keeps a source's meter until its burst has refilled (5 per hour: 1 h).
    slow = edge_ir(egress_log={"rate": "5/hour"})
    assert alert_timeout(slow["log"]) == 3600
    assert "\t\ttimeout 3600s\n" in render_nftables(slow)
    assert "--hashlimit-htable-expire 3600000 " in render_iptables(slow)["ipv4"]
    assert alert_timeout(edge_ir()["log"]) == 60
    # Fewer than 5 a day: the burst is a day's worth (hashlimit refuses more), kept a day.
    daily = edge_ir(egress_log={"rate": "1/day"})
    assert (alert_burst(daily["log"]), alert_timeout(daily["log"])) == (1, 86400)
    assert "limit rate 1/day burst 1 packets" in render_nftables(daily)
    assert "--hashlimit-upto 1/day --hashlimit-burst 1 " in render_iptables(daily)["ipv4"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_alert_logging_loads_in_every_mode_and_rate(routed, backend):
    """Host and edge in one table, audit mode, slow and fast rates: the kernel loads it."""
    rates = ("1/day", "2/day", "5/hour", "10000/second")
    for overrides in ({}, {"egress_mode": "audit"}, *({"egress_log": {"rate": rate}} for rate in rates)):
        routed.load([compile_for("ws1", **overrides), edge_ir(edge=EDGE, **overrides)], backend)
        routed.unload()
