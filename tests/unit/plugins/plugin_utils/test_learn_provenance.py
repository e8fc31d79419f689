"""Learn only from lines the kernel wrote, for the host that sent them: forged lines (written to
/dev/kmsg from user space, or by another ruleset's imitating log prefix), lines in another
host's name, edge lines on a host with no edge policy, a tag or word the policy does not write
in its mode, lines cut short, and lines of a shared kernel log whose owner cannot be decided
are never suggested. Real kernel lines come from audit-mode rulesets in network namespaces."""

from __future__ import annotations

import datetime
import random
import uuid

import pytest
from journal import as_journal, kmsg_records, kmsg_write, record
from netns import BACKENDS, HOST_V4, SPOOF_V4, Pair, sh
from sample import ADDRESSES, EDGE, GROUPS, ROLES, SEGMENTS, compile_for, site

from ansible_collections.warden.egress.plugins.plugin_utils.learn.report import report_markdown, suggestion_yaml
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import learn

TODAY = datetime.date(2026, 12, 2)
TCP_TAIL = "WINDOW=64240 RES=0x00 SYN URGP=0 "


def host_vars(mode: str = "audit", **overrides) -> dict:
    out = {h: dict(site(**overrides), egress_role=r, egress_mode=mode) for h, r in ROLES.items()}
    out["gw1"] = dict(site(**overrides), egress_edge=EDGE, egress_segments=SEGMENTS, egress_mode=mode)
    return out


def fields(src: str, dst: str, dport: int, iif: str = "", oif: str = "eth0", mark: str = "") -> str:
    return (f"IN={iif} OUT={oif} SRC={src} DST={dst} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=7 DF PROTO=TCP SPT=40000 DPT={dport} "
            f"{TCP_TAIL}{mark}")


def learned(logs: dict, variables: dict | None = None) -> dict:
    out = learn(variables or host_vars(), ADDRESSES, GROUPS, logs, today=TODAY)
    out["report"] = report_markdown(out)
    out["yaml"] = suggestion_yaml(out)
    return out


def never_suggested(out: dict, *destinations: str) -> None:
    for dst in destinations:
        assert dst not in out["yaml"], dst
    assert not [f for f in out["flows"] if f["dst"] in destinations and not f["findings"]]


# ---------------------------------------------------------------------------- attribution

def test_a_host_line_whose_source_is_not_this_hosts_is_a_finding():
    """mail1's log holds host-path lines from ws1's address and from an address no host has:
    findings, never allows for mail1's role; mail1's own line is learned."""
    logs = {"mail1": [record(f"warden-egress audit[host]: {fields('198.51.100.14', '203.0.113.71', 8443)}"),
                      record(f"warden-egress audit[host]: {fields('198.51.100.120', '203.0.113.72', 8443)}"),
                      record(f"warden-egress audit[host]: {fields('198.51.100.11', '203.0.113.73', 8443)}")]}
    out = learned(logs)
    by = {f["dst"]: f for f in out["flows"]}
    assert [x["class"] for x in by["203.0.113.71"]["findings"]] == ["not_this_host"]
    assert "source is not this host's: 198.51.100.14 is not an address of mail1 (it is ws1's)" in by["203.0.113.71"]["findings"][0]["why"]
    assert [x["class"] for x in by["203.0.113.72"]["findings"]] == ["not_this_host"]
    never_suggested(out, "203.0.113.71", "203.0.113.72")
    assert "203.0.113.73/32" in out["yaml"]
    assert "| 198.51.100.14 (on mail1) | (no role) | 203.0.113.71 | tcp/8443 | 1 | source is not this host's" in out["report"]


def test_an_edge_line_needs_a_host_with_an_edge_policy_on_its_interfaces():
    """An edge-form line in the log of a host with no edge policy, or on interfaces the
    gateway's edge policy does not name, is a finding; it is named in the report as not
    replayed."""
    logs = {"mail1": [record(f"warden-egress audit[edge]: {fields('198.51.100.14', '203.0.113.81', 443, iif='eth0', oif='eth1')}")],
            "gw1": [record(f"warden-egress audit[edge]: {fields('198.51.100.14', '203.0.113.82', 443, iif='eth7', oif='eth1')}"),
                    record(f"warden-egress audit[edge]: {fields('198.51.100.14', '203.0.113.83', 443, iif='eth0', oif='eth1')}")]}
    out = learned(logs)
    by = {f["dst"]: f for f in out["flows"]}
    assert [x["class"] for x in by["203.0.113.81"]["findings"]] == ["no_edge_policy"]
    assert by["203.0.113.81"]["findings"][0]["why"] == "a forwarded packet (IN=eth0 OUT=eth1) in the log of mail1, which has no edge policy"
    assert [x["class"] for x in by["203.0.113.82"]["findings"]] == ["no_edge_policy"]
    never_suggested(out, "203.0.113.81", "203.0.113.82")
    assert "203.0.113.83/32" in out["yaml"]  # the gateway's own line, from ws1, is learned
    assert "* 198.51.100.14 → 203.0.113.81 https (on mail1): mail1 has no edge policy" in out["report"]


@pytest.mark.parametrize("logged, variables, why", [
    ("warden-egress deny: {f}", {}, "'deny' from the host policy of mail1, which is in audit mode"),
    ("warden-egress audit[host]: {f}", {"mode": "enforce"}, "'audit' from the host policy of mail1, which is in enforce mode"),
    ("warden-egress audit[edge]: {f}", {}, "audit[edge] with IN=: the edge policy logs forwarded packets"),
    ("warden-egress audit[evil]: {f}", {}, "audit[evil]: no policy writes this tag"),
    ("warden-egress audit: {f}", {}, "without the tag"),
    ("warden-egress audit[host]: {f}", {"egress_log": {"prefix": "mailfw"}}, "prefix 'warden-egress': the host policy of mail1 logs as 'mailfw'"),
])
def test_a_tag_or_word_the_policy_does_not_write_in_its_mode_is_no_flow(logged, variables, why):
    variables = dict(variables)
    site_vars = host_vars(variables.pop("mode", "audit"))
    site_vars["mail1"].update(variables)  # another host keeps the site's prefix, so the line has the site's form
    out = learned({"mail1": [record(logged.format(f=fields("198.51.100.11", "203.0.113.91", 8443)))]}, site_vars)
    assert out["flows"] == [] and out["suggestion"] == {}
    assert out["hosts"]["mail1"]["not_this_policy"] == 1
    assert why in out["problems"]["not_this_policy"][0]["why"]
    assert "1 not what the policy of their host writes" in out["report"] and why in out["report"]


def test_a_shared_kernel_log_never_attributes_by_guess():
    """Copies of one kernel line (one kernel stamp) in the logs of mail1 and dns1: a host line
    from an address neither has, from ws1 (whose log was not read), an edge line where neither
    is a gateway: findings with no owner. mail1's own line is mail1's. Lines not ours and
    malformed lines count once."""
    lines = [f"warden-egress audit[host]: {fields('198.51.100.120', '203.0.113.101', 8443)}",
             f"warden-egress audit[host]: {fields('198.51.100.14', '203.0.113.102', 8443)}",
             f"warden-egress audit[edge]: {fields('198.51.100.14', '203.0.113.103', 443, iif='eth0', oif='eth1')}",
             f"warden-egress audit[host]: {fields('198.51.100.11', '203.0.113.104', 8443)}",
             "e1000e: eth0 NIC Link is Up",
             f"warden-egress audit[host]: {fields('198.51.100.11', '203.0.113.105', 8443)}".split("DPT=", maxsplit=1)[0] + "DPT=84"]
    logs = {host: [record(text, when=f"2026-12-02T10:00:0{n}Z", mono=1000 + i) for i, text in enumerate(lines)]
            for n, host in enumerate(("mail1", "dns1"), 1)}
    out = learned(logs)
    by = {f["dst"]: f for f in out["flows"]}
    for dst in ("203.0.113.101", "203.0.113.102", "203.0.113.103"):
        assert by[dst]["reporter"] is None and [x["class"] for x in by[dst]["findings"]] == ["owner_undecided"], by[dst]
        assert by[dst]["seen_on"] == ["dns1", "mail1"]
    assert by["203.0.113.104"]["reporter"] == "mail1" and not by["203.0.113.104"]["findings"]
    never_suggested(out, "203.0.113.101", "203.0.113.102", "203.0.113.103")
    total = {k: sum(h[k] for h in out["hosts"].values()) for k in ("foreign", "malformed", "copies")}
    assert total == {"foreign": 1, "malformed": 1, "copies": 6}
    assert "(on no owner)" in out["report"] and "no host's policy can be shown to have written it" in out["report"]

    # two gateways sharing the log whose edge policies both fit: no guess either
    two = host_vars()
    two["gw2"] = dict(two["gw1"])
    shared = [record(lines[2], mono=7), record(lines[2], mono=7)]
    out = learn(two, dict(ADDRESSES, gw2=["198.51.100.126"]), GROUPS, {"gw1": shared[:1], "gw2": shared[1:]}, today=TODAY)
    assert [(f["reporter"], [x["class"] for x in f["findings"]]) for f in out["flows"]] == [(None, ["owner_undecided"])]
    assert out["suggestion"] == {}


def test_text_lines_and_lines_not_written_by_the_kernel_are_counted_never_read():
    text = f"2026-12-02T10:00:01+0000 mail1 kernel: warden-egress audit[host]: {fields('198.51.100.11', '203.0.113.111', 8443)}"
    message = f"warden-egress audit[host]: {fields('198.51.100.11', '203.0.113.112', 8443)}"
    logs = {"mail1": [text, record(message, facility=1), record(message, transport="stdout", facility=0),
                      record(message, facility=None)]}  # journald before v236: no facility, and no SYSLOG_IDENTIFIER=kernel
    out = learned(logs)
    assert out["flows"] == [] and out["suggestion"] == {}
    stats = out["hosts"]["mail1"]
    assert (stats["not_a_record"], stats["not_kernel"]) == (1, 3)
    assert "1 text with no record of who wrote it" in out["report"] and "3 not written by the kernel" in out["report"]
    old = dict(record(message, facility=None, as_text=False), SYSLOG_IDENTIFIER="kernel")  # the kernel's own line, old journald
    assert [f["dst"] for f in learned({"mail1": [old]})["flows"]] == ["203.0.113.112"]


# ---------------------------------------------------------------------------- the machine's kernel log

def test_lines_written_to_dev_kmsg_by_root_are_never_flows():
    """Root writes lines of every form to /dev/kmsg (from the first namespace and from another
    one): the kernel gives them facility 1 (user), even when they claim 0; read back as
    journald keeps them, none is a flow, whoever's log holds them."""
    marker = f"MARK=0x{uuid.uuid4().hex[:8]}"
    forged = [
        f"warden-egress audit[host]: {fields('198.51.100.11', '203.0.113.121', 8443, mark=marker)}",                    # mail1's form
        f"warden-egress audit[edge]: {fields('198.51.100.14', '203.0.113.122', 443, iif='eth0', oif='eth1', mark=marker)}",  # edge form
        f"warden-egress audit[host]: {fields('198.51.100.14', '203.0.113.123', 8443, mark=marker)}",                    # ws1's address
        f"warden-egress audit[host]: {fields('198.51.100.120', '203.0.113.124', 8443, mark=marker)}",                   # nobody's
        f"warden-egress audit[evil]: {fields('198.51.100.11', '203.0.113.125', 8443, mark=marker)}",                    # forged tag
        f"warden-egress deny: {fields('198.51.100.11', '203.0.113.126', 8443, mark=marker)}",                           # forged word
        f"warden-egress audit[host]: {fields('198.51.100.11', '203.0.113.127', 443)}".split("DPT=", maxsplit=1)[0] + "DPT=44 " + marker,  # cut
    ]
    for text in forged[:4]:
        kmsg_write(text, level=0)  # claims the kernel's facility and level 0
    with Pair() as pair:
        for text in forged[4:]:
            sh("python3", "-c", f"import os; fd = os.open('/dev/kmsg', os.O_WRONLY); os.write(fd, {(chr(60) + '4>' + text + chr(10)).encode()!r})",
               ns=pair.host)
    found = kmsg_records(marker, wait=2)
    assert len(found) == len(forged), found
    assert {entry[0] >> 3 for entry in found} == {1}, "the kernel gives user space's lines facility 1 (user)"
    records = [as_journal(k) for k in found]
    for logs in ({"mail1": records}, {"ws1": records}, {"gw1": records}, {"mail1": records, "ws1": records, "gw1": records}):
        out = learned(logs)
        assert out["flows"] == [] and out["suggestion"] == {}, out["flows"]
        assert sum(h["not_kernel"] for h in out["hosts"].values()) == len(forged)
        never_suggested(out, *(f"203.0.113.{n}" for n in range(121, 128)))


@pytest.fixture(scope="module")
def pair():
    with Pair() as topology:
        yield topology


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_kernel_lines_are_learned_for_the_host_that_sent_them(pair, backend):
    """mail1 in audit mode in a namespace (its log lines reach the machine's kernel log with
    nf_log_all_netns, for the moment of sending): its own flow is learned; a packet it sends
    from an address that is not its own is a finding; a line another ruleset in the namespace
    writes with a log prefix imitating a whole line of ours is refused; in a log shared with
    hosts that do not own the source, nobody is given the line."""
    port, spoofed_port, forged_port = random.sample(range(20000, 60000), 3)
    imitation = "warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.66 PROTO=TCP SPT=1 DPT=25 WINDOW=1 URGP=0 "
    with open("/proc/sys/net/netfilter/nf_log_all_netns", encoding="ascii") as handle:
        before = handle.read().strip()
    pair.load(compile_for("mail1", egress_mode="audit", egress_platform=backend), backend)
    sh("nft", "-f", "-", ns=pair.host, data=(
        "table inet forge {\n\tchain output {\n\t\ttype filter hook output priority -10; policy accept;\n"
        f"\t\tudp dport {forged_port} log prefix \"{imitation}\"\n\t}}\n}}\n"))
    try:
        sh("sysctl", "-qw", "net.netfilter.nf_log_all_netns=1")
        try:
            pair.probe([{"dst": "203.0.113.9", "port": port, "proto": "tcp"}, {"dst": "203.0.113.9", "port": forged_port, "proto": "udp"},
                        {"dst": "203.0.113.9", "port": spoofed_port, "proto": "tcp", "src": SPOOF_V4}], timeout=2, workers=1)
        finally:
            sh("sysctl", "-qw", f"net.netfilter.nf_log_all_netns={before}")
    finally:
        pair.unload()
        sh("nft", "delete", "table", "inet", "forge", ns=pair.host, check=False)
    found = [k for p in (port, spoofed_port, forged_port) for k in kmsg_records(f"DPT={p} ", wait=2)]
    assert {k[0] >> 3 for k in found} == {0}, "the kernel's own lines have facility 0"
    records = [as_journal(k) for k in found]
    out = learned({"mail1": records})
    by = {(f["src"], f["dport"]): f for f in out["flows"]}
    assert not by[(HOST_V4, port)]["findings"] and f"learned_tcp_{port}" in out["yaml"]
    assert [x["class"] for x in by[(SPOOF_V4, spoofed_port)]["findings"]] == ["not_this_host"]
    assert out["hosts"]["mail1"]["malformed"] >= 1 and "twice" in out["report"]
    assert (HOST_V4, 25) not in by and "203.0.113.66" not in out["yaml"] and str(spoofed_port) not in out["yaml"]

    shared = learned({"mail1": records, "ws1": records})  # a shared kernel log: the line is mail1's by its source
    assert {(f["reporter"], f["src"]) for f in shared["flows"]} == {("mail1", HOST_V4), (None, SPOOF_V4)}, shared["flows"]
    assert shared["shared"] == len(records)
    assert f"learned_tcp_{port}" in shared["yaml"]
    nobody = learned({"ws1": records, "dns1": records})
    assert {f["reporter"] for f in nobody["flows"]} == {None} and nobody["suggestion"] == {}
