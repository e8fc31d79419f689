"""The warden.egress.learn role, run by ansible-playbook: it reads each host's kernel journal
and its local resolver's (here a journalctl that prints generated records, first on PATH),
reports a host it cannot reach, and writes the report, the suggestion and the what-if on the
controller."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess

import yaml
from journal import record

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TCP_TAIL = "WINDOW=64240 RES=0x00 SYN URGP=0 "
LINES = [
    record("e1000e: eth0 NIC Link is Up", when="2026-12-02T10:00:01Z"),
    record("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.90 LEN=60 TOS=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 "
           f"DPT=8443 {TCP_TAIL}", when="2026-12-02T10:00:02Z"),
    record(f"warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.7 LEN=60 PROTO=TCP SPT=40001 DPT=6667 {TCP_TAIL}",
           when="2026-12-02T10:05:00Z"),
    record("warden-egress audit[host]: IN= OUT=eth0 SRC=2001:db8:10::14 DST=2001:db8:5100::90 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=TCP "
           f"SPT=40002 DPT=8443 {TCP_TAIL}", when="2026-12-02T10:06:00Z"),
    record("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.9 LEN=60 PROTO=TCP SPT=4", when="2026-12-02T10:07:00Z"),
    # written to /dev/kmsg from user space: facility 1, never a flow
    record(f"warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.14 DST=203.0.113.66 LEN=60 PROTO=TCP SPT=1 DPT=443 {TCP_TAIL}",
           when="2026-12-02T10:08:00Z", facility=1),
    # an edge line in the log of a host with no edge policy: a finding, not replayed
    record("warden-egress audit[edge]: IN=eth0 OUT=eth1 SRC=198.51.100.11 DST=203.0.113.67 LEN=60 PROTO=TCP SPT=1 DPT=443 "
           f"{TCP_TAIL}", when="2026-12-02T10:09:00Z"),
]


def resolver(message: str, when: str, unit: str = "warden-egress-dns.service", pid: str = "4242") -> str:
    """A record of journalctl -u warden-egress-dns.service -o json: dnsmasq's line, as journald attributes it."""
    micros = json.loads(record("x", when=when))["__REALTIME_TIMESTAMP"]
    return json.dumps({"__REALTIME_TIMESTAMP": micros, "_BOOT_ID": "b0", "MESSAGE": message, "_SYSTEMD_UNIT": unit, "_COMM": "dnsmasq",
                       "_EXE": "/usr/sbin/dnsmasq", "_UID": "108", "_PID": pid, "_TRANSPORT": "syslog", "SYSLOG_IDENTIFIER": "dnsmasq"})


RESOLVER = [
    resolver("3 127.0.0.1/40000 query[A] www.example.org from 127.0.0.1", "2026-12-02T10:00:00Z"),   # about no learned address: left on the host
    resolver("3 127.0.0.1/40000 reply www.example.org is 192.0.2.80", "2026-12-02T10:00:00Z"),
    # another unit's process that calls itself dnsmasq: never read
    resolver("9 127.0.0.1/40001 query[A] evil.example.net from 127.0.0.1", "2026-12-02T10:00:01Z", unit="evil.service"),
    resolver("9 127.0.0.1/40001 reply evil.example.net is 203.0.113.90", "2026-12-02T10:00:01Z", unit="evil.service"),
]


def run(tmp_path, check: bool = False, fail: bool = False, resolver_records: list | None = None) -> tuple[subprocess.CompletedProcess, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "journalctl"
    (tmp_path / "journalctl-args").unlink(missing_ok=True)
    fake.write_text("#!/bin/sh\n" f"echo \"$@\" >> {tmp_path}/journalctl-args\n"
                    + ("echo 'No journal files were found.' >&2; exit 1\n" if fail else
                       f"if [ \"$1\" = -u ]; then cat {tmp_path}/resolver.log; else cat {tmp_path}/kernel.log; fi\n"))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "kernel.log").write_text("\n".join(LINES) + "\n")
    (tmp_path / "resolver.log").write_text("\n".join(RESOLVER if resolver_records is None else resolver_records) + "\n")
    inventory = {"all": {
        "vars": {
            "egress_trusted_prefixes": ["198.51.100.0/25", "2001:db8:10::/120"],
            "egress_upstreams": {"internal_resolvers": ["198.51.100.12"], "internal_proxies": ["198.51.100.13"], "smtp_relays": ["203.0.113.25"]},
            "egress_mode": "audit",
        },
        "hosts": {
            "ws1": {"egress_role": "client", "egress_addresses": ["198.51.100.14", "2001:db8:10::14"], "ansible_connection": "local",
                    "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "mail1": {"egress_role": "mail_server", "egress_addresses": ["198.51.100.11"], "ansible_connection": "ssh",
                      "ansible_host": "127.0.0.1", "ansible_port": 1},
        },
    }}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "learn.yml").write_text(yaml.safe_dump([{
        "name": "Learn", "hosts": "all", "gather_facts": False,
        "roles": [{"role": "warden.egress.learn", "learn_egress_since": "-7d", "learn_egress_output_dir": str(tmp_path / "out"),
                   "learn_egress_become": False}],
    }]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0",
               PATH=f"{bindir}:{os.environ['PATH']}", ANSIBLE_HOST_KEY_CHECKING="False")
    argv = ["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "learn.yml")] + (["--check"] if check else [])
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    return result, result.stdout + result.stderr


def test_learn_role_writes_report_suggestion_and_whatif(tmp_path):
    result, output = run(tmp_path)
    assert result.returncode == 0, output[-4000:]
    assert [line.split() for line in (tmp_path / "journalctl-args").read_text().splitlines()] == [
        ["-k", "-q", "--no-pager", "-o", "json", "--output-fields=MESSAGE,_TRANSPORT,SYSLOG_FACILITY,SYSLOG_IDENTIFIER,PRIORITY,"
         "_SOURCE_MONOTONIC_TIMESTAMP", "--since", "-7d"],
        ["-u", "warden-egress-dns.service", "-q", "--no-pager", "-o", "json",
         "--output-fields=MESSAGE,_SYSTEMD_UNIT,_COMM,_EXE,_UID,_PID,_TRANSPORT,SYSLOG_IDENTIFIER", "--since", "-7d"]]
    out = tmp_path / "out"
    report = (out / "report.md").read_text()
    assert "Enforcing today would deny 3 of the 3 flows seen; with the suggestion, 1. 1 flows could not be replayed" in report
    assert "mail1 (unreachable" in report
    assert "Lines read: 7: 4 of ours, 1 not ours, 1 not written by the kernel, 1 malformed or cut short." in report
    assert "| ws1 (on ws1) | client | 203.0.113.7 | tcp/6667 | 1 | IRC" in report
    assert "* 198.51.100.11 → 203.0.113.67 https (on ws1): ws1 has no edge policy" in report
    assert "| tcp/8443 | 203.0.113.90 | 1 (ws1) | ws1 | 1 |" in report
    # the other unit's record came back (it names a learned address) and was not read; the record about no learned address stayed
    assert "Resolver records read: 2: 0 queries, 0 answers with an address, 0 CNAME steps, 2 not written by the unit's dnsmasq" in report
    assert "2 records about no learned destination were left on the hosts." in report and "evil.example.net" not in (out / "suggestion.yml").read_text()
    suggestion = yaml.safe_load((out / "suggestion.yml").read_text())
    assert suggestion["egress_upstreams"] == {"learned_client_tcp_8443": ["2001:db8:5100::90/128", "203.0.113.90/32"]}
    for dst in ("203.0.113.7", "203.0.113.66", "203.0.113.67"):
        assert dst not in (out / "suggestion.yml").read_text()
    learned = json.loads((out / "learned.json").read_text())
    assert learned["hosts"]["mail1"]["failed"].startswith("unreachable")
    whatif = (out / "whatif.md").read_text()
    assert "| ws1 | host | 198.51.100.14 → 203.0.113.90 tcp/8443 | denied (audit: logged, let through)" in whatif
    assert "Enforcing today would deny 3 of the 3 flows seen; with the suggestion, 1." in output
    assert sum(int(n) for n in re.findall(r"\w+\s+: ok=\d+\s+changed=(\d+)", output)) == 1, output[-4000:]
    # The same records again: every file holds the same text, none is written, nothing changed.
    stamps = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    result, output = run(tmp_path)
    assert result.returncode == 0, output[-4000:]
    assert sum(int(n) for n in re.findall(r"\w+\s+: ok=\d+\s+changed=(\d+)", output)) == 0, output[-4000:]
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == stamps


def test_learn_role_in_check_mode_writes_nothing(tmp_path):
    result, output = run(tmp_path, check=True)
    assert result.returncode == 0, output[-4000:]
    assert not (tmp_path / "out").exists()
    # the tasks that write the results are skipped, not shown changed for files they do not write
    assert re.findall(r"(\w+)\s+: ok=\d+\s+changed=(\d+)", output) == [("mail1", "0"), ("ws1", "0")], output[-4000:]
    assert "Enforcing today would deny 3 of the 3 flows seen; with the suggestion, 1." in output


def test_learn_role_fails_when_no_hosts_log_could_be_read(tmp_path):
    """Every host unreachable or its journal unreadable: the play fails, naming each host and
    why, on the console; the report says so too."""
    result, output = run(tmp_path, fail=True)
    assert result.returncode != 0, output[-4000:]
    assert "warden.egress.learn read no host's kernel log, so nothing was learned: mail1 (unreachable" in output
    assert "ws1 (rc 1: No journal files were found.)" in output
    assert "No host's log could be read: nothing was learned." in (tmp_path / "out" / "report.md").read_text()


def test_learn_role_suggests_the_name_the_hosts_resolver_answered(tmp_path):
    """ws1's own resolver answered app.example.com (through a CNAME) with 203.0.113.90 a second
    before ws1's flow to it: the suggestion names app.example.com, the name asked, where it
    would have named the address; the report says whose resolver answered it."""
    named = [
        resolver("5 127.0.0.1/40002 query[A] app.example.com from 127.0.0.1", "2026-12-02T10:00:01Z"),
        resolver("5 127.0.0.1/40002 forwarded app.example.com to 203.0.113.53", "2026-12-02T10:00:01Z"),
        resolver("5 127.0.0.1/40002 reply app.example.com is <CNAME>", "2026-12-02T10:00:01Z"),
        resolver("5 127.0.0.1/40002 reply app.cdn.example.net is 203.0.113.90", "2026-12-02T10:00:01Z"),
        *RESOLVER,
    ]
    result, output = run(tmp_path, resolver_records=named)
    assert result.returncode == 0, output[-4000:]
    out = tmp_path / "out"
    suggestion = yaml.safe_load((out / "suggestion.yml").read_text())
    assert suggestion["egress_upstreams"] == {"learned_client_tcp_8443": ["dns:app.example.com", "2001:db8:5100::90/128"]}
    assert "#   learned_client_tcp_8443: 198.51.100.14 -> 203.0.113.90 tcp/8443 (app.example.com: ws1's resolver, 1 answer" in (
        out / "suggestion.yml").read_text()
    report = (out / "report.md").read_text()
    assert "| tcp/8443 | 203.0.113.90 = dns:app.example.com | 1 (ws1) | ws1 | 1 |" in report
    assert ("| ws1 (on ws1) | 203.0.113.90 | tcp/8443 | dns:app.example.com | ws1's resolver, 1 answer 2026-12-02T10:00:01Z, "
            "via CNAME to app.cdn.example.net | learned_client_tcp_8443 |") in report
    assert "Resolver records read: 5: 1 query, 1 answer with an address, 1 CNAME step, 2 not written by the unit's dnsmasq" in report
    learned = json.loads((out / "learned.json").read_text())
    named = {f["dst"]: f.get("dns_name") for f in learned["flows"] if f["dport"] == 8443}
    assert named == {"203.0.113.90": "app.example.com", "2001:db8:5100::90": None}
    assert "Enforcing today would deny 3 of the 3 flows seen; with the suggestion, 1." in output
