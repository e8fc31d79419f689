"""Learning names: a learned address that the local resolver of the host that logged the flow
answered for a name, before every line of the flow, is suggested as dns:NAME (the name
asked, never a CNAME chain's target alone, never a wildcard), an address only when no name is
known; the replay decides by the name. Resolver records are journald's, as the learn role
gathers them (journalctl -u warden-egress-dns.service -o json): only those journald attributes
to the unit's dnsmasq count, and only for that host's own flows."""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess
import sys

import pytest
import yaml
from journal import _micros, record
from sample import ADDRESSES, EDGE, GROUPS, ROLES, SEGMENTS, site

from ansible_collections.warden.egress.plugins.plugin_utils.learn.report import report_markdown, suggestion_yaml
from ansible_collections.warden.egress.plugins.plugin_utils.learn.resolver import ResolverLog
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import learn
from ansible_collections.warden.egress.plugins.plugin_utils.model.dnsnames import parse_dns_settings
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.render import nftables

TODAY = datetime.date(2026, 12, 2)
ADDRS = dict(ADDRESSES, ws2=["198.51.100.16", "2001:db8:10::16"])
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
FLOW_AT = "2026-12-02T10:00:05Z"


def host_vars(**overrides) -> dict:
    out = {h: dict(site(**overrides), egress_role=r, egress_mode="audit") for h, r in dict(ROLES, ws2="client").items()}
    out["gw1"] = dict(site(**overrides), egress_edge=EDGE, egress_segments=SEGMENTS, egress_mode="audit")
    return out


def kernel(src: str, dst: str, when: str = FLOW_AT, port: int = 443, iif: str = "") -> str:
    """A kernel record of an audit line (journalctl -k -o json)."""
    word = "audit[edge]" if iif else "audit[host]"
    return record(f"warden-egress {word}: IN={iif} OUT={'eth1' if iif else 'eth0'} SRC={src} DST={dst} LEN=60 TOS=0x00 TTL=64 ID=1 DF "
                  f"PROTO=TCP SPT=40000 DPT={port} WINDOW=64240 RES=0x00 SYN URGP=0 ", when=when)


def resolver(message: str, when: str = "2026-12-02T10:00:04Z", **fields) -> str:
    """A record of journalctl -u warden-egress-dns.service -o json: a line of the unit's dnsmasq
    as journald attributes it (fields given replace or, as None, remove journald's)."""
    out = {"__REALTIME_TIMESTAMP": str(_micros(when)), "_BOOT_ID": "b0", "MESSAGE": message, "_SYSTEMD_UNIT": "warden-egress-dns.service",
           "_COMM": "dnsmasq", "_EXE": "/usr/sbin/dnsmasq", "_UID": "108", "_PID": "4242", "_TRANSPORT": "syslog", "SYSLOG_IDENTIFIER": "dnsmasq"}
    out.update(fields)
    return json.dumps({k: v for k, v in out.items() if v is not None})


def answer(name: str, address: str, serial: int = 7, when: str = "2026-12-02T10:00:04Z", qtype: str = "A", chain: tuple = (),
           **fields) -> list[str]:
    """What dnsmasq logs for one query answered from upstream: the query, the chain's CNAME
    lines from the name asked, the address under the chain's last name."""
    head = f"{serial} 127.0.0.1/40{serial:03d}"
    lines = [resolver(f"{head} query[{qtype}] {name} from 127.0.0.1", when, **fields),
             resolver(f"{head} forwarded {name} to 203.0.113.53", when, **fields)]
    owners = [name, *chain]
    lines += [resolver(f"{head} reply {owner} is <CNAME>", when, **fields) for owner in owners[:-1]]
    lines.append(resolver(f"{head} reply {owners[-1]} is {address}", when, **fields))
    return lines


def learned(logs: dict, resolvers: dict | None, variables: dict | None = None) -> dict:
    out = learn(variables or host_vars(), ADDRS, GROUPS, logs, today=TODAY, resolver_logs=resolvers)
    out["report"] = report_markdown(out)
    out["yaml"] = suggestion_yaml(out)
    return out


def by_dst(out: dict) -> dict:
    return {f["dst"]: f for f in out["flows"]}


MAIL1 = {"mail1": [kernel("198.51.100.11", "203.0.113.77")]}


# ---------------------------------------------------------------------------- names suggested


def test_the_name_asked_is_suggested_instead_of_the_address_and_the_replay_decides_by_it():
    """mail1's resolver answered www.example.com through a chain to node.cdn.example.net with
    203.0.113.77 a second before mail1's flow to it: the suggestion is dns:www.example.com (what
    dnsmasq's nftset matches), not the chain's target and not the address; the replay judges
    the flow by that name and lets it out. A flow to an address no answer gave keeps its address."""
    logs = {"mail1": [*MAIL1["mail1"], kernel("198.51.100.11", "203.0.113.99")]}
    out = learned(logs, {"mail1": answer("www.example.com", "203.0.113.77", chain=("edge.example.net", "node.cdn.example.net"))})
    flow = by_dst(out)["203.0.113.77"]
    assert flow["dns_name"] == "www.example.com"
    assert flow["dns_names"] == [{"name": "www.example.com", "resolver": "mail1", "answers": 1, "first_answer": "2026-12-02T10:00:04Z",
                                  "last_answer": "2026-12-02T10:00:04Z", "via": ["node.cdn.example.net"]}]
    assert "dns_names" not in by_dst(out)["203.0.113.99"]
    assert out["suggestion"]["egress_upstreams"] == {"learned_mail_server_https": ["dns:www.example.com", "203.0.113.99/32"]}
    assert out["replay"]["denied_now"] == 2 and out["replay"]["denied_suggested"] == 0, out["replay"]
    assert "| https | 203.0.113.77 = dns:www.example.com | 1 (mail1) |" in out["report"]
    assert ("| mail1 (on mail1) | 203.0.113.77 | https | dns:www.example.com | mail1's resolver, 1 answer 2026-12-02T10:00:04Z, "
            "via CNAME to node.cdn.example.net | learned_mail_server_https |") in out["report"]
    assert "#   learned_mail_server_https: 198.51.100.11 -> 203.0.113.77 https (www.example.com: mail1's resolver" in out["yaml"]
    assert "node.cdn.example.net" not in yaml.safe_dump(out["suggestion"])


def test_without_resolver_records_the_address_is_suggested():
    out = learned(MAIL1, None)
    assert out["suggestion"]["egress_upstreams"] == {"learned_mail_server_https": ["203.0.113.77/32"]} and out["resolver"] is None
    assert "Resolver records" not in out["report"]


def test_an_address_answered_for_several_names_suggests_them_all_and_says_so():
    records = answer("a.example.com", "203.0.113.77", serial=1) + answer("b.example.org", "203.0.113.77", serial=2)
    out = learned(MAIL1, {"mail1": records})
    assert [n["name"] for n in by_dst(out)["203.0.113.77"]["dns_names"]] == ["a.example.com", "b.example.org"]
    assert out["suggestion"]["egress_upstreams"] == {"learned_mail_server_https": ["dns:a.example.com", "dns:b.example.org"]}
    text = "203.0.113.77 was answered for 2 names (a.example.com, b.example.org): each is suggested; keep those its clients use"
    assert text in out["yaml"] and text in out["report"]
    assert out["replay"]["denied_suggested"] == 0


def test_a_name_must_be_answered_before_every_line_of_the_flow():
    """The flow is seen at 10:00 and again at 12:00; one answer before 10:00 does not name the
    12:00 line (the name set would have forgotten it): the address is suggested. With an
    answer before each line, the name is."""
    lines = {"mail1": [*MAIL1["mail1"], kernel("198.51.100.11", "203.0.113.77", when="2026-12-02T12:00:05Z")]}
    once = learned(lines, {"mail1": answer("api.example.com", "203.0.113.77")})
    assert by_dst(once)["203.0.113.77"]["count"] == 2 and "dns_names" not in by_dst(once)["203.0.113.77"]
    assert once["suggestion"]["egress_upstreams"] == {"learned_mail_server_https": ["203.0.113.77/32"]}
    twice = learned(lines, {"mail1": answer("api.example.com", "203.0.113.77")
                            + answer("api.example.com", "203.0.113.77", serial=8, when="2026-12-02T12:00:00Z")})
    assert by_dst(twice)["203.0.113.77"]["dns_names"][0]["answers"] == 2
    assert twice["suggestion"]["egress_upstreams"] == {"learned_mail_server_https": ["dns:api.example.com"]}


def test_an_upstream_that_lists_the_name_is_allowed_as_it_is():
    variables = host_vars(egress_upstreams={**site()["egress_upstreams"], "apis": ["dns:api.example.com", "203.0.113.7"]})
    out = learned(MAIL1, {"mail1": answer("api.example.com", "203.0.113.77")}, variables)
    assert "egress_upstreams" not in out["suggestion"]
    assert {"service": "https", "to": "apis"} in out["suggestion"]["egress_roles"]["mail_server"]["allow"]
    assert out["replay"]["denied_suggested"] == 0


def test_a_lone_hosts_name_goes_to_an_upstream_of_its_exception():
    """Two clients, and only ws1 went there: an exception for ws1, whose to cannot hold a name,
    names an upstream of its own that does; the replay lets the flow out by the name."""
    out = learned({"ws1": [kernel("198.51.100.14", "203.0.113.77")]}, {"ws1": answer("api.example.com", "203.0.113.77")})
    assert out["suggestion"]["egress_upstreams"] == {"learned_ws1_only_https": ["dns:api.example.com"]}
    assert [(e["hosts"], e["to"]) for e in out["suggestion"]["egress_exceptions"]] == [(["ws1"], ["learned_ws1_only_https"])]
    assert out["replay"]["denied_suggested"] == 0, out["replay"]


def test_a_gateways_resolver_names_its_edge_flows_within_the_edges_lifetime():
    """An answer 900 s before the flow: within a gateway edge's lifetime when the site's
    resolvers may cache for 600 s (300 + 600 + 120), beyond a host's own (300 + 120)."""
    variables = host_vars(egress_dns={"upstream_cache_ttl": 600})
    edge = {"gw1": [kernel("198.51.100.66", "203.0.113.77", iif="eth0")]}
    early = {"gw1": answer("api.example.com", "203.0.113.77", when="2026-12-02T09:45:05Z")}
    assert by_dst(learned(edge, early, variables))["203.0.113.77"]["dns_name"] == "api.example.com"
    host = {"gw1": [kernel("198.51.100.11", "203.0.113.77")], "mail1": MAIL1["mail1"]}
    early["mail1"] = answer("api.example.com", "203.0.113.77", when="2026-12-02T09:45:05Z")
    assert "dns_names" not in by_dst(learned(host, early, variables))["203.0.113.77"]


# ---------------------------------------------------------------------------- never used


GOOD = answer("api.example.com", "203.0.113.77")


@pytest.mark.parametrize("resolvers, kind", [
    # another unit's process says it is dnsmasq (SYSLOG_IDENTIFIER is the writer's word)
    ({"mail1": answer("api.example.com", "203.0.113.77", _SYSTEMD_UNIT="cron.service")}, "not_resolver"),
    # a user's own unit of the same name, under the user's manager
    ({"mail1": answer("api.example.com", "203.0.113.77", _SYSTEMD_UNIT="user@1000.service", _SYSTEMD_USER_UNIT="warden-egress-dns.service",
                      _UID="1000")}, "not_resolver"),
    # in the unit, but not dnsmasq: another program, or one that renamed itself dnsmasq
    ({"mail1": answer("api.example.com", "203.0.113.77", _COMM="sh", _EXE="/usr/bin/dash")}, "not_resolver"),
    ({"mail1": answer("api.example.com", "203.0.113.77", _EXE="/usr/bin/python3.11")}, "not_resolver"),
    # journald knew no process (it had gone), or no credentials
    ({"mail1": answer("api.example.com", "203.0.113.77", _COMM=None, _EXE=None)}, "not_resolver"),
    ({"mail1": answer("api.example.com", "203.0.113.77", _PID=None)}, "not_resolver"),
    # the same text through another transport than dnsmasq's syslog
    ({"mail1": answer("api.example.com", "203.0.113.77", _TRANSPORT="journal")}, "not_resolver"),
    # another host's resolver answered it: never for mail1's flow
    ({"dns1": GOOD, "mail1": []}, None),
    # answered after the flow, or longer ago than an answer keeps an address
    ({"mail1": answer("api.example.com", "203.0.113.77", when="2026-12-02T10:00:06Z")}, None),
    ({"mail1": answer("api.example.com", "203.0.113.77", when="2026-12-02T09:53:04Z")}, None),
    # not a DNS name, or a wildcard
    ({"mail1": answer("api_1.example.com", "203.0.113.77")}, "malformed"),
    ({"mail1": answer("*.example.com", "203.0.113.77")}, "malformed"),
    ({"mail1": answer("203.0.113.5", "203.0.113.77")}, "malformed"),
    # an IPv4 address answering a query for AAAA records
    ({"mail1": answer("api.example.com", "203.0.113.77", qtype="AAAA")}, "malformed"),
    # a reply whose query line is not in the log; a chain that does not start at the name asked
    ({"mail1": GOOD[1:]}, "unanchored"),
    ({"mail1": [GOOD[0], resolver("7 127.0.0.1/40007 reply other.example.com is <CNAME>"),
                resolver("7 127.0.0.1/40007 reply far.example.net is 203.0.113.77")]}, "unanchored"),
    # a query of another process (serials are per process), or of another serial
    ({"mail1": [GOOD[0], resolver("7 127.0.0.1/40007 reply api.example.com is 203.0.113.77", _PID="4243")]}, "unanchored"),
    # text where a record was expected; a line that is not exactly dnsmasq's format
    ({"mail1": ["Dec  2 10:00:04 mail1 dnsmasq[4242]: 7 127.0.0.1/40007 reply api.example.com is 203.0.113.77"]}, "not_a_record"),
    ({"mail1": [GOOD[0], resolver("7 127.0.0.1/40007 reply api.example.com is 203.0.113.77 extra")]}, "other"),
    ({"mail1": [GOOD[0], resolver("7 127.0.0.1/40007 cached api.example.com is 203.0.113.77")]}, "other"),
])
def test_resolver_records_that_do_not_hold_are_never_used(resolvers, kind):
    """Each: the flow keeps its address, no name is suggested, and the record is counted by
    its kind (an answer from another host, or outside the window, is an answer, not used)."""
    out = learned(MAIL1, resolvers)
    assert "dns_names" not in by_dst(out)["203.0.113.77"]
    assert out["suggestion"]["egress_upstreams"] == {"learned_mail_server_https": ["203.0.113.77/32"]}
    assert "dns:" not in out["yaml"].split("\negress_upstreams:")[1]
    counted = {k: sum(h[k] for h in out["resolver"]["hosts"].values()) for k in ("not_a_record", "not_resolver", "other", "malformed", "unanchored")}
    if kind is not None:
        assert counted[kind] >= 1, counted
        assert counted == {**{k: counted[k] for k in counted if k in ("other",)}, **{k: 0 for k in counted if k not in (kind, "other")},
                           kind: counted[kind]}, counted
    else:
        assert sum(h["answers"] for h in out["resolver"]["hosts"].values()) == 1 and not any(counted[k] for k in counted if k != "other")


def test_the_report_names_resolver_records_not_read():
    out = learned(MAIL1, {"mail1": answer("api.example.com", "203.0.113.77", _SYSTEMD_UNIT="cron.service"), "dns1": {"rc": 1, "stderr": "no"}})
    assert "Resolver records read: 3: 0 queries, 0 answers with an address, 0 CNAME steps, 3 not written by the unit's dnsmasq" in out["report"]
    assert "Resolver logs that could not be read: dns1 (rc 1: no)." in out["report"]
    assert ("* mail1 record 1, not written by the unit's dnsmasq (as journald attributes it): _SYSTEMD_UNIT=cron.service: journald did not "
            "see it come from warden-egress-dns.service (SYSLOG_IDENTIFIER=dnsmasq is what the writer says)") in out["report"]


def test_resolver_log_reads_dnsmasq_bytes_and_a_deleted_binary():
    """journald gives a MESSAGE that is not UTF-8 as bytes; dnsmasq replaced by an upgrade while
    running is still dnsmasq (/proc says '(deleted)')."""
    lines = answer("api.example.com", "203.0.113.77", _EXE="/usr/sbin/dnsmasq (deleted)")
    first = json.loads(lines[0])
    first["MESSAGE"] = list(first["MESSAGE"].encode())
    log = ResolverLog({"mail1": [json.dumps(first), *lines[1:]]})
    assert log.answers["mail1"]["203.0.113.77"] == [(_micros("2026-12-02T10:00:04Z"), "api.example.com", "")]


# ---------------------------------------------------------------------------- the resolver's configuration


def named_ir(**dns) -> dict:
    from sample import compile_for
    return compile_for("mail1", egress_upstreams={**site()["egress_upstreams"], "apis": ["dns:api.example.com"]},
                       egress_roles={"mail_server": {"allow": [{"service": "https", "to": "apis"}]}}, egress_dns=dns)


def test_the_resolver_logs_its_answers_unless_told_not_to():
    conf = nftables.dnsmasq(named_ir(), ["203.0.113.53"])["conf"].splitlines()
    assert "log-queries=extra" in conf and "log-async=25" in conf and not any(line.startswith("log-facility") for line in conf)
    quiet = nftables.dnsmasq(named_ir(log_answers="no"), ["203.0.113.53"])["conf"].splitlines()
    assert not any(line.startswith("log-") for line in quiet)


@pytest.mark.parametrize("value", ["maybe", 2, None, ["yes"]])
def test_log_answers_is_a_boolean(value):
    with pytest.raises(PolicyError) as caught:
        parse_dns_settings({"log_answers": value})
    assert str(caught.value).startswith("egress_dns.log_answers: ")


# ---------------------------------------------------------------------------- the selection on the host


def test_the_host_keeps_back_what_no_learned_address_needs(tmp_path):
    """roles/learn/files/resolver_records.py, as the role runs it: of the records journalctl
    gives, the query, CNAME and reply lines of a query that answered a learned address come
    back unchanged; the rest stays, counted. What comes back is read as the whole log would be."""
    records = (answer("www.example.com", "203.0.113.77", serial=1, chain=("node.cdn.example.net",))
               + answer("other.example.com", "203.0.113.5", serial=2)
               + answer("api.example.com", "2001:db8:5100::4104", serial=3, qtype="AAAA")
               + [resolver("started, version 2.90 cachesize 150")])
    (tmp_path / "resolver.log").write_text("\n".join(records) + "\n")
    fake = tmp_path / "journalctl"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat {tmp_path}/resolver.log\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    script = os.path.join(TOP, "roles", "learn", "files", "resolver_records.py")
    with open(script, encoding="utf-8") as handle:
        code = handle.read()
    run = subprocess.run([sys.executable, "-c", code, "--", "-u", "warden-egress-dns.service", "--since", "-7d"],
                         input="DST=x 203.0.113.77 2001:db8:5100:0::4104\n", capture_output=True, text=True, check=False,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "args").read_text().split() == ["-u", "warden-egress-dns.service", "--since", "-7d"]
    lines = run.stdout.splitlines()
    kept = [json.loads(line)["MESSAGE"] for line in lines[:-1]]
    assert kept == [json.loads(records[i])["MESSAGE"] for i in (0, 2, 3, 7, 9)], kept  # forwarded lines, query 2, the start line stay
    assert json.loads(lines[-1]) == {"WARDEN_EGRESS_LEFT_ON_HOST": "6"}
    log = ResolverLog({"mail1": run.stdout})
    assert sorted(log.answers["mail1"]) == ["2001:db8:5100::4104", "203.0.113.77"] and log.hosts["mail1"]["left_on_host"] == 6
    failing = subprocess.run([sys.executable, "-c", code, "--"], input="", capture_output=True, text=True, check=False,
                             env={**os.environ, "PATH": str(tmp_path / "none")})
    assert failing.returncode == 1 and failing.stderr.startswith("journalctl: ")
