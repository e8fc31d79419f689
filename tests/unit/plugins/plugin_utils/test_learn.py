"""Learning from audit log lines: parsing the kernel's LOG lines the renderers produce, mapping
them onto the example site, findings never suggested, and the oracle replay's numbers."""

from __future__ import annotations

import datetime

import pytest
from journal import record
from sample import ADDRESSES, EDGE, GROUPS, ROLES, SEGMENTS, site

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.learn.collect import collect, parse_line, parse_message
from ansible_collections.warden.egress.plugins.plugin_utils.learn.report import report_markdown, suggestion_yaml
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import apply_change, learn
from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import compile_site

TODAY = datetime.date(2026, 12, 2)
ADDRS = dict(ADDRESSES, ws2=["198.51.100.16", "2001:db8:10::16"])


def host_vars(mode: str = "audit") -> dict:
    out = {h: dict(site(), egress_role=r, egress_mode=mode) for h, r in dict(ROLES, ws2="client").items()}
    out["gw1"] = dict(site(), egress_edge=EDGE, egress_segments=SEGMENTS, egress_mode=mode)
    return out


def message(src: str, dst: str, proto: str = "TCP", dport: int = 443, iif: str = "", oif: str = "eth0", word: str | None = None,
            prefix: str = "warden-egress") -> str:
    """A kernel LOG line as nftables and iptables write it; the word is ``audit[host]`` or
    ``audit[edge]`` (by the input interface) unless given."""
    v6 = ":" in src
    word = word or ("audit[edge]" if iif else "audit[host]")
    head = "LEN=60 TC=0 HOPLIMIT=64 FLOWLBL=0" if v6 else "LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF"
    if proto in ("TCP", "UDP"):
        tail = f"SPT=40000 DPT={dport} WINDOW=64240 RES=0x00 SYN URGP=0 " if proto == "TCP" else f"SPT=40000 DPT={dport} LEN=40 "
    else:
        tail = f"TYPE={128 if v6 else 8} CODE=0 ID=1 SEQ=1 "
    mac = "MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 " if iif else ""
    return f"{prefix} {word}: IN={iif} OUT={oif} {mac}SRC={src} DST={dst} {head} PROTO={proto} {tail}"


def line(src: str, dst: str, proto: str = "TCP", dport: int = 443, iif: str = "", oif: str = "eth0", word: str | None = None,
         when: str = "2026-12-02T10:00:01+0000", prefix: str = "warden-egress", mono: int | None = None) -> str:
    """That line as ``journalctl -k -o json`` prints its record."""
    return record(message(src, dst, proto, dport, iif, oif, word, prefix), when=when, mono=mono)


# ---------------------------------------------------------------------------- parsing

def journald(text: str, when: str = "2026-12-02T10:00:01+0000") -> str:
    """The line as journalctl -o short-iso prints it: text, which parse_line reads for a person."""
    return f"{when} h kernel: [ 1234.567890] {text}"


@pytest.mark.parametrize("text, expect", [
    (journald(message("198.51.100.14", "203.0.113.9")),
     {"src": "198.51.100.14", "dst": "203.0.113.9", "proto": "tcp", "dport": 443, "iif": None, "oif": "eth0", "word": "audit",
      "decided_by": "host", "time": "2026-12-02T10:00:01Z", "family": "ipv4"}),
    (journald(message("2001:db8:10::14", "2001:db8:5100::9", proto="UDP", dport=123)), {"family": "ipv6", "proto": "udp", "dport": 123}),
    (journald(message("198.51.100.66", "203.0.113.9", iif="eth0", oif="eth1", word="deny")), {"iif": "eth0", "oif": "eth1", "word": "deny"}),
    (journald(message("198.51.100.14", "203.0.113.9", proto="ICMP")), {"proto": "icmp", "icmp_type": "echo-request", "dport": None}),
    (journald(message("2001:db8:10::14", "2001:db8:5100::9", proto="ICMPv6")), {"proto": "icmpv6", "icmp_type": "echo-request"}),
    # syslog's short format (journalctl -o short, /var/log/kern.log): the year is the one given
    ("Dec  2 10:00:01 ws1 kernel: warden-egress alert: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.7 LEN=60 PROTO=TCP SPT=1 DPT=6667 "
     "WINDOW=1 URGP=0", {"word": "alert", "dport": 6667, "time": "2026-12-02T10:00:01Z"}),
    # microseconds and a +hh:mm zone (short-iso-precise); a raw protocol number
    ("2026-12-02T11:00:01.123456+01:00 gw1 kernel: warden-egress deny: IN=eth0 OUT=eth1 SRC=198.51.100.66 DST=203.0.113.9 LEN=60 PROTO=47",
     {"proto": 47, "dport": None, "time": "2026-12-02T10:00:01Z"}),
    # the socket's owner; an ICMP error's inner packet (in brackets) repeats fields, and is not read
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.9 LEN=60 PROTO=TCP SPT=1 DPT=8443 WINDOW=1 URGP=0 UID=998 GID=998 ",
     {"decided_by": "host", "uid": 998, "gid": 998, "time": None}),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.9 LEN=88 PROTO=ICMP TYPE=3 CODE=3 [SRC=203.0.113.9 "
     "DST=198.51.100.11 LEN=60 PROTO=UDP SPT=53 DPT=40000 LEN=40 ] ", {"icmp_type": "destination-unreachable", "src": "198.51.100.11"}),
])
def test_parse_line_reads_our_lines(text, expect):
    kind, record = parse_line(text, year=2026)
    assert kind == "flow", record
    for key, value in expect.items():
        assert record[key] == value, key


TCP = "IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0 "


@pytest.mark.parametrize("text, kind, why", [
    ("e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex", "foreign", "no warden log prefix"),
    ("other-fw deny: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 PROTO=TCP SPT=1 DPT=1", "foreign", "not one of the site's"),
    # our prefix quoted inside another kernel message is not at its start: not a line of ours
    (f"audit: type=1107 audit(1764669601.000:42): pid=1 uid=0 msg='x warden-egress audit[host]: {TCP}'", "foreign", "no warden log prefix"),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 LEN=60 PROTO=TCP SPT=40000", "malformed", "DPT=(none)"),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.", "malformed", "no PROTO"),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=2001:db8::1 PROTO=TCP DPT=1", "malformed", "different address families"),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.300 DST=203.0.113.9 PROTO=TCP DPT=1", "malformed", "not a pair of IP addresses"),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 PROTO=TCP DPT=70000", "malformed", "DPT=70000"),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 PROTO=ICMP", "malformed", "TYPE=(none)"),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 PROTO=GRE", "malformed", "not a protocol"),
    # cut right after a complete-looking port (DPT=44 of 443): a TCP line goes on to WINDOW= and URGP=
    (f"warden-egress audit[host]: {TCP}".split("DPT=443", maxsplit=1)[0] + "DPT=44", "malformed", "cut short"),
    (f"warden-egress audit[host]: {TCP}".split(" URGP=", maxsplit=1)[0], "malformed", "without WINDOW= and URGP="),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 LEN=48 PROTO=UDP SPT=1 DPT=12", "malformed", "without LEN="),
    ("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 LEN=48 PROTO=ICMP TYPE=1", "malformed", "without CODE="),
    # a log prefix of another ruleset that imitates a whole line: the kernel's own fields follow it
    (f"warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.66 PROTO=TCP DPT=25 WINDOW=1 URGP=0 {TCP}", "malformed", "twice"),
    # a tag or word no policy writes so
    (f"warden-egress audit[evil]: {TCP}", "not_this_policy", "no policy writes this tag"),
    (f"warden-egress audit: {TCP}", "not_this_policy", "without the tag"),
    (f"warden-egress deny[host]: {TCP}", "not_this_policy", "no policy writes a tag after 'deny'"),
    (None, "malformed", "not a line of text"),
])
def test_parse_message_tells_bad_lines_apart(text, kind, why):
    got, reason = parse_message(text)
    assert got == kind, reason
    assert why in reason


def test_collect_merges_a_flow_and_counts_every_kind_of_line():
    logs = {
        "ws1": "\n".join([line("198.51.100.14", "203.0.113.9", when="2026-12-02T10:00:01+0000"),
                          line("198.51.100.14", "203.0.113.9", when="2026-12-02T12:30:00+0000"),
                          line("198.51.100.14", "203.0.113.9", word="alert", when="2026-12-02T11:00:00+0000"),
                          record("e1000e: eth0 NIC Link is Up"), "kernel: something else", "",
                          record(message("198.51.100.14", "203.0.113.9")[:-40]),
                          record(message("198.51.100.14", "203.0.113.9"), facility=1)]),
        "proxy1": {"unreachable": True, "msg": "ssh: connect to host proxy1 port 22: No route to host"},
        "dns1": {"rc": 1, "stdout": "", "stderr": "No journal files were found.\n"},
        "mail1": {"rc": 0, "stdout": "", "stderr": ""},
    }
    out = collect(logs)
    assert len(out["flows"]) == 1
    flow = out["flows"][0]
    assert (flow["count"], flow["first_seen"], flow["last_seen"], flow["words"]) == (2, "2026-12-02T10:00:01Z", "2026-12-02T12:30:00Z", ["alert", "audit"])
    assert out["hosts"]["ws1"] | {} == {"lines": 7, "flows": 3, "foreign": 1, "not_kernel": 1, "not_a_record": 1, "not_this_policy": 0,
                                        "malformed": 1, "copies": 0, "first": "2026-12-02T10:00:01Z", "last": "2026-12-02T12:30:00Z",
                                        "failed": None}
    assert out["problems"]["not_kernel"][0]["why"].startswith("not written by the kernel (_TRANSPORT=kernel, SYSLOG_FACILITY=1")
    assert out["hosts"]["proxy1"]["failed"].startswith("unreachable: ssh: connect")
    assert out["hosts"]["dns1"]["failed"] == "rc 1: No journal files were found."
    assert out["hosts"]["mail1"]["lines"] == 0 and out["hosts"]["mail1"]["failed"] is None


# ---------------------------------------------------------------------------- the example site

LOGS = {
    "ws1": [
        line("198.51.100.14", "203.0.113.90"),                              # https to an unknown server: ws1 alone -> exception
        line("198.51.100.14", "203.0.113.7", dport=6667),                   # IRC -> finding
        line("198.51.100.14", "203.0.113.25", dport=25),                    # SMTP from a client -> finding
        line("2001:db8:10::14", "2001:db8:5100::99", proto="UDP", dport=53),  # DNS to a server not designated -> finding
        line("198.51.100.14", "10.1.2.3", dport=8080),                       # never leaves -> finding
    ],
    "ws2": [line("198.51.100.16", "203.0.113.91", proto="UDP", dport=123)],  # NTP, none designated -> finding
    "mail1": [
        line("198.51.100.11", "203.0.113.44", dport=8443, when="2026-12-02T09:00:00+0000"),  # a port no service names
        line("198.51.100.11", "203.0.113.44", dport=8443, when="2026-12-02T13:00:00+0000"),
        line("198.51.100.11", "203.0.113.66", dport=25),                     # SMTP from the mail role, not to a relay -> finding
        line("198.51.100.11", "203.0.113.5", dport=31337),                   # backdoor -> finding
    ],
    "dns1": [line("198.51.100.12", "203.0.113.53", dport=443)],              # to an existing upstream (dns_forwarders)
    "gw1": [
        line("198.51.100.66", "203.0.113.99", iif="eth0", oif="eth1"),  # the workstation segment
        line("198.51.100.14", "203.0.113.99", iif="eth0", oif="eth1"),  # ws1 through the gateway
        line("198.51.100.100", "203.0.113.99", iif="eth0", oif="eth1"),  # no inventory host, no segment
        "garbage",
    ],
    "proxy1": {"unreachable": True, "msg": "timed out"},
}
FINDING_DESTINATIONS = {"203.0.113.7", "203.0.113.25", "2001:db8:5100::99", "10.1.2.3", "203.0.113.91", "203.0.113.66", "203.0.113.5"}


@pytest.fixture(scope="module")
def learned():
    return learn(host_vars(), ADDRS, GROUPS, LOGS, today=TODAY)


def test_sources_map_to_hosts_segments_and_roles(learned):
    by = {(f["reporter"], f["src"], f["dst"]): f for f in learned["flows"]}
    assert by[("gw1", "198.51.100.66", "203.0.113.99")]["source"] == {"kind": "segment", "name": "workstations", "roles": ["client"]}
    assert by[("gw1", "198.51.100.14", "203.0.113.99")]["source"]["name"] == "ws1"
    assert by[("gw1", "198.51.100.100", "203.0.113.99")]["source"]["kind"] == "unknown"
    assert by[("dns1", "198.51.100.12", "203.0.113.53")]["upstreams"] == ["dns_forwarders"]
    assert by[("dns1", "198.51.100.12", "203.0.113.53")]["service"] == "https"
    assert by[("mail1", "198.51.100.11", "203.0.113.44")]["service"] is None


def test_aggregate_per_role(learned):
    rows = {(r["service"], r["destination"]): r for r in learned["roles"]["client"]}
    row = rows[("https", "203.0.113.99")]
    assert (row["hosts"], row["sources"], row["count"]) == (2, ["workstations", "ws1"], 2)
    mail = {(r["service"], r["destination"]): r for r in learned["roles"]["mail_server"]}[("tcp/8443", "203.0.113.44")]
    assert (mail["count"], mail["first_seen"], mail["last_seen"], mail["hosts"]) == (2, "2026-12-02T09:00:00Z", "2026-12-02T13:00:00Z", 1)


def test_findings_are_classified_and_never_suggested(learned):
    classes = {f["dst"]: f["classes"] for f in learned["findings"]}
    assert classes["203.0.113.7"] == ["irc"]
    assert classes["203.0.113.25"] == ["smtp"]
    assert classes["2001:db8:5100::99"] == ["undesignated_dns"]
    assert classes["10.1.2.3"] == ["never_leave"]
    assert classes["203.0.113.91"] == ["undesignated_ntp"]
    assert classes["203.0.113.66"] == ["undesignated_smtp"]
    assert classes["203.0.113.5"] == ["backdoor"]
    assert [f["classes"] for f in learned["findings"] if f["source"] == "198.51.100.100"] == [["unknown_source"]]
    text = suggestion_yaml(learned)
    for dst in FINDING_DESTINATIONS | {"198.51.100.100"}:
        assert dst not in text
    allowed = [(role, entry["service"]) for role, spec in learned["suggestion"]["egress_roles"].items() for entry in spec["allow"]]
    assert ("client", "smtp") not in allowed and ("client", "ntp") not in allowed and ("mail_server", "learned_tcp_31337") not in allowed
    # and the replay agrees: with the suggestion, every finding is still denied
    still = {s["dst"] for s in learned["replay"]["still_denied"]}
    assert FINDING_DESTINATIONS <= still


def test_suggestion_shapes(learned):
    change = learned["suggestion"]
    assert change["egress_services"] == {"learned_tcp_8443": {"proto": "tcp", "ports": [8443]}}
    assert change["egress_upstreams"] == {"learned_client_https": ["203.0.113.99/32"], "learned_mail_server_tcp_8443": ["203.0.113.44/32"]}
    assert {"service": "https", "to": "dns_forwarders"} in change["egress_roles"]["dns_resolver"]["allow"]
    assert {"service": "https", "to": "learned_client_https"} in change["egress_roles"]["client"]["allow"]
    assert {"service": "dns", "to": "internal_resolvers"} in change["egress_roles"]["client"]["allow"]  # the role stays whole
    # only ws1 of the two client hosts went there: an exception, its blanks left for a person
    assert change["egress_exceptions"] == [{"hosts": ["ws1"], "service": "https", "to": ["203.0.113.90/32"], "reason": None, "owner": None, "expires": None}]


def test_suggestion_with_blanks_is_refused_until_a_person_fills_them(learned):
    merged = apply_change(host_vars(), learned["suggestion"], TODAY)
    with pytest.raises(PolicyError) as err:
        list(compile_site(merged, ADDRS, GROUPS, today=TODAY))
    assert "egress_exceptions[1].reason" in str(err.value)


def test_replay_numbers(learned):
    replay = learned["replay"]
    # 13 distinct flows (mail1's two 8443 lines are one), every one logged as denied. The
    # suggestion lets out the 5 that are no finding (ws1's exception, mail1's 8443, dns1's
    # https, the segment and ws1 through the gateway); the 8 findings stay denied.
    assert replay["flows"] == 13 and replay["not_replayed"] == []
    assert replay["denied_now"] == 13
    findings = len(learned["findings"])
    assert findings == 8
    assert replay["denied_suggested"] == findings
    assert "Enforcing today would deny 13 of the 13 flows seen; with the suggestion, 8." in report_markdown(learned)


def test_replay_counts_a_flow_the_policy_already_allows():
    """A line logged before the policy allowed the flow: enforcing today would not deny it."""
    logs = {"ws1": [line("198.51.100.14", "198.51.100.13", dport=3128), line("198.51.100.14", "203.0.113.90")]}
    out = learn(host_vars(), ADDRS, GROUPS, logs, today=TODAY)
    assert (out["replay"]["flows"], out["replay"]["denied_now"], out["replay"]["denied_suggested"]) == (2, 1, 0)


def test_suggested_change_really_allows_the_flows(learned):
    filled = apply_change(host_vars(), learned["suggestion"], TODAY, fill_blanks=True)
    policies = dict(compile_site(filled, ADDRS, GROUPS, today=TODAY))
    host = next(ir for ir in policies["mail1"] if ir["kind"] == "host")
    assert evaluate(host, {"src": "198.51.100.11", "dst": "203.0.113.44", "dport": 8443})["denied"] is False
    assert evaluate(host, {"src": "198.51.100.11", "dst": "203.0.113.45", "dport": 8443})["denied"] is True


def test_bad_input_is_counted_never_a_traceback():
    out = learn(host_vars(), ADDRS, GROUPS, {"ws1": "", "dns1": {"failed": "journalctl: not found"}, "zz": ["x", 42]}, today=TODAY)
    assert out["flows"] == [] and out["suggestion"] == {}
    assert out["hosts"]["zz"]["not_a_record"] == 2
    report = report_markdown(out)
    assert "Window: an empty window" in report
    assert "dns1 (journalctl: not found)" in report
    assert "Enforcing today would deny 0 of the 0 flows seen; with the suggestion, 0." in report
    assert "No flow to allow" in suggestion_yaml(out)


def test_lines_from_a_host_outside_the_inventory_are_reported_not_replayed():
    out = learn(host_vars(), ADDRS, GROUPS, {"stranger": [line("198.51.100.14", "203.0.113.90")]}, today=TODAY)
    assert out["replay"]["not_replayed"][0]["why"] == "stranger has no host policy"
    assert [f["classes"] for f in out["findings"]] == [["no_host_policy"]] and out["suggestion"] == {}
    report = report_markdown(out)
    assert "1 flows could not be replayed" in report
    assert "* 198.51.100.14 → 203.0.113.90 https (on stranger): stranger has no host policy" in report


def test_long_names_stay_within_the_compilers_limits():
    variables = host_vars()
    roles = {"reporting_servers_of_finance_it": {"allow": []}}
    for v in variables.values():
        v["egress_roles"] = roles
    variables["intranet1"]["egress_role"] = "reporting_servers_of_finance_it"
    out = learn(variables, ADDRS, GROUPS, {"intranet1": [line("198.51.100.15", "203.0.113.77", dport=9443)]}, today=TODAY)
    names = list(out["suggestion"]["egress_upstreams"])
    assert len(names) == 1 and len(names[0]) <= 32
    assert out["replay"]["denied_suggested"] == 0


@pytest.mark.parametrize("stamped", [True, False], ids=["kernel stamp", "journald time only"])
def test_a_kernel_log_shared_by_containers_counts_each_line_once_for_the_host_that_wrote_it(stamped):
    """Containers on one machine share its kernel log: each container's journal holds every
    namespace's lines, stamped by its own journald a moment apart; the kernel's own stamp of a
    line (when journald kept it) is the same in every copy."""
    lines = [(message("198.51.100.14", "203.0.113.90"), ":01", 11),                       # ws1's own policy
             (message("198.51.100.14", "203.0.113.90", iif="eth0", oif="eth1"), ":01", 12),  # the gateway's
             (message("198.51.100.14", "203.0.113.90"), ":01", 13),                       # ws1's, an hour later
             ("e1000e: eth0 NIC Link is Up", ":01", 14)]                                   # not ours: counted once too

    def copy(n: int, text: str, second: str, mono: int) -> dict:
        hour = "11" if mono == 13 else "10"
        entry = record(text, when=f"2026-12-02T{hour}:00{second[:-1]}{n}Z", mono=mono, as_text=False)
        if not stamped:
            del entry["_SOURCE_MONOTONIC_TIMESTAMP"]
        return entry

    logs = {host: [copy(n, *entry) for entry in lines] for n, host in enumerate(["mail1", "dns1", "ws1", "gw1"], 1)}
    out = learn(host_vars(), ADDRS, GROUPS, logs, today=TODAY)
    by = {(f["reporter"], f["iif"]): f for f in out["flows"]}
    assert set(by) == {("ws1", None), ("gw1", "eth0")}, "each line belongs to the host whose policy wrote it"
    assert by[("ws1", None)]["count"] == 2 and by[("gw1", "eth0")]["count"] == 1  # the same text an hour later is another line
    assert by[("ws1", None)]["source"]["name"] == "ws1" and by[("ws1", None)]["role"] == "client"
    assert by[("ws1", None)]["seen_on"] == ["dns1", "gw1", "mail1", "ws1"]
    assert out["shared"] == 12
    assert sum(h["foreign"] for h in out["hosts"].values()) == 1, "a line not ours counts once, not once per host"
    assert "12 lines were copies of a kernel line" in report_markdown(out)

    # apart from the shared log, two hosts' lines are theirs even when the text is alike
    apart = collect({"ws1": [line("198.51.100.14", "203.0.113.90")], "mail1": [line("198.51.100.14", "203.0.113.90", when="2026-12-02T10:00:30Z")]})
    assert [f["reporter"] for f in apart["flows"]] == ["mail1", "ws1"] and apart["shared"] == 0
