"""Learning names from a real resolver: mail1's policy in audit mode in a namespace, its local
dnsmasq run from the rendered configuration (which logs its answers), the lab's "Internet" DNS
server (lab/files/dns_world.py) in the world. A client resolves names (one through a CNAME
chain) and connects to what it was given; the kernel's audit lines and dnsmasq's own lines
(its stderr here, as ``log-facility=-`` writes them: the journal is not there in tests) become
the records journald would keep, and learn suggests the names asked. The suggestion is then
loaded in enforce mode with its own resolver: the learned flows get out by name."""

from __future__ import annotations

import datetime
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

import pytest
import yaml
from journal import as_journal, kmsg_records
from netns import TOP, Pair, sh
from sample import ADDRESSES, GROUPS, site

from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy
from ansible_collections.warden.egress.plugins.plugin_utils.learn.report import report_markdown
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import apply_change, learn
from ansible_collections.warden.egress.plugins.plugin_utils.render import nftables

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, the kernel log); make setup installs dnsmasq")

TODAY = datetime.date.today()
VARIABLES = site(egress_upstreams={**site()["egress_upstreams"], "apis": ["dns:zero.example.com"]}, egress_mode="audit",
                 egress_roles={"mail_server": {"allow": [{"service": "https", "to": "apis"}, {"service": "dns", "to": "dns_forwarders"}]}},
                 egress_role="mail_server")
CLIENT = os.path.join(TOP, "lab", "files", "dns_client.py")
# Resolve each name through the local resolver, then, a moment later, connect to each address given.
RESOLVE_THEN_CONNECT = """
import json, socket, sys, time
from dnslib import QTYPE, DNSRecord
port, names, extra = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3].split(",")
given = {}
for name in names:
    reply = DNSRecord.parse(DNSRecord.question(name, "A").send("127.0.0.1", 53, timeout=5))
    given[name] = [str(rr.rdata) for rr in reply.rr if QTYPE[rr.rtype] == "A"]
time.sleep(0.3)
for address in [a for addresses in given.values() for a in addresses] + extra:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        try:
            sock.connect((address, port))
        except OSError:
            pass
print(json.dumps(given))
"""


class Resolver:
    """dnsmasq in the host namespace from ``conf``; each line it logs, stamped as it comes
    (what journald does with a line it receives)."""

    def __init__(self, ns: str, conf: str) -> None:
        self.lines: list[tuple[int, str]] = []
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", f"--conf-file={conf}", "--pid-file=",
                                      "--log-facility=-"], stderr=subprocess.PIPE, text=True)
        self.comm = self.exe = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.time_ns() // 1000, line.rstrip("\n")))
            if self.comm is None:
                # what journald reads from /proc for the process that sent a line (ip netns exec
                # has exec'd dnsmasq in its place by the time it writes)
                with open(f"/proc/{self.proc.pid}/comm", encoding="ascii") as handle:
                    self.comm = handle.read().strip()
                self.exe = os.readlink(f"/proc/{self.proc.pid}/exe")

    def records(self) -> list[str]:
        """The journal records of dnsmasq's lines: journald's syslog reader takes ``dnsmasq[PID]: ``
        as the identifier and process, and attributes the rest to the unit's process."""
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip().replace("-", "")
        out = []
        for micros, line in self.lines:
            match = re.fullmatch(r"dnsmasq\[(\d+)\]: (.*)", line)
            assert match and int(match.group(1)) == self.proc.pid, line
            out.append(json.dumps({"__REALTIME_TIMESTAMP": str(micros), "_BOOT_ID": boot, "MESSAGE": match.group(2), "_PID": match.group(1),
                                   "_UID": "0", "_COMM": self.comm, "_EXE": self.exe, "_SYSTEMD_UNIT": "warden-egress-dns.service",
                                   "_TRANSPORT": "syslog", "SYSLOG_IDENTIFIER": "dnsmasq"}))
        return out

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        self.reader.join(timeout=5)


def start(pair: Pair, ir: dict, tmp_path, tag: str) -> Resolver:
    conf = tmp_path / f"dnsmasq-{tag}.conf"
    conf.write_text(nftables.dnsmasq(ir, ["203.0.113.53"])["conf"])
    resolver = Resolver(pair.host, str(conf))
    for dummy in range(50):
        if sh(sys.executable, CLIENT, "--server", "127.0.0.1", "--timeout", "0.2", "--ask", "zero.example.com:A", ns=pair.host,
              check=False).returncode == 0:
            return resolver
        time.sleep(0.1)
    resolver.close()
    raise AssertionError("the local resolver did not answer")


def test_real_resolver_lines_name_the_learned_flows_and_the_names_let_them_out(tmp_path):
    port = random.randrange(20000, 60000)
    with Pair() as pair:
        world = subprocess.Popen(["ip", "netns", "exec", pair.world, sys.executable, os.path.join(TOP, "lab", "files", "dns_world.py"),
                                  "--address", "203.0.113.53", "--ttl", "2", "--many", "2", "--count", "8"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for gateway in ("198.51.100.254",):
                for dummy in range(30):
                    if sh("ping", "-c", "1", "-W", "1", gateway, ns=pair.host, check=False).returncode == 0:
                        break
            audit = compile_policy(VARIABLES, "mail1", ADDRESSES, GROUPS)
            pair.load(audit, "nftables")
            resolver = start(pair, audit, tmp_path, "audit")
            with open("/proc/sys/net/netfilter/nf_log_all_netns", encoding="ascii") as handle:
                before = handle.read().strip()
            try:
                sh("sysctl", "-qw", "net.netfilter.nf_log_all_netns=1")
                try:
                    given = json.loads(sh("env", f"PYTHONPATH={os.pathsep.join(sys.path)}", sys.executable, "-c", RESOLVE_THEN_CONNECT, str(port),
                                          "www.example.com,api.example.com,alias.example.com", "203.0.113.99", ns=pair.host).stdout)
                finally:
                    sh("sysctl", "-qw", f"net.netfilter.nf_log_all_netns={before}")
                time.sleep(0.3)
            finally:
                resolver.close()
            dnsmasq = resolver.records()
            kernel = [as_journal(k) for k in kmsg_records(f"DPT={port} ", wait=2)]

            # dnsmasq's real lines, as the configuration makes it write them
            messages = [json.loads(r)["MESSAGE"] for r in dnsmasq]
            assert any(re.fullmatch(r"\d+ 127\.0\.0\.1/\d+ query\[A\] www\.example\.com from 127\.0\.0\.1", m) for m in messages), messages
            assert any(re.fullmatch(r"\d+ 127\.0\.0\.1/\d+ reply www\.example\.com is <CNAME>", m) for m in messages), messages
            assert any(re.fullmatch(r"\d+ 127\.0\.0\.1/\d+ reply node\.cdn\.example\.net is 203\.0\.113\.77", m) for m in messages), messages
            assert given["www.example.com"] == ["203.0.113.77"] and given["alias.example.com"] == ["203.0.113.78"], given
            assert len(kernel) == 5, kernel  # 203.0.113.77, .78, api's two, and .99 no answer gave

            out = learn({"mail1": VARIABLES}, ADDRESSES, GROUPS, {"mail1": kernel}, today=TODAY, resolver_logs={"mail1": dnsmasq})
            names = {f["dst"]: [n["name"] for n in f.get("dns_names", [])] for f in out["flows"]}
            assert names == {"203.0.113.77": ["www.example.com"], "203.0.113.78": ["alias.example.com"], "203.0.113.99": [],
                             **{address: ["api.example.com"] for address in given["api.example.com"]}}, (names, out["resolver"])
            hosts = out["resolver"]["hosts"]["mail1"]  # the answers: the four above and zero.example.com (asked by start)
            assert hosts["answers"] == 5 and hosts["chain"] == 3 and not any(hosts[k] for k in ("not_resolver", "malformed", "unanchored")), hosts
            upstream = f"learned_mail_server_tcp_{port}"
            assert out["suggestion"]["egress_upstreams"] == {upstream: ["dns:alias.example.com", "dns:api.example.com", "dns:www.example.com",
                                                                        "203.0.113.99/32"]}, out["suggestion"]
            assert out["replay"]["denied_now"] == 5 and out["replay"]["denied_suggested"] == 0, out["replay"]
            assert "via CNAME to node.cdn.example.net" in report_markdown(out)

            # the suggestion, enforced, with its own resolver: the names asked let the flows out
            merged = apply_change({"mail1": VARIABLES}, {**out["suggestion"], "egress_mode": "enforce"}, TODAY)["mail1"]
            enforce = compile_policy(merged, "mail1", ADDRESSES, GROUPS)
            assert yaml.safe_load(yaml.safe_dump(enforce["sets"][f"up_{upstream}"]))["names"] == ["alias.example.com", "api.example.com",
                                                                                                  "www.example.com"]
            pair.unload()
            pair.load(enforce, "nftables")
            resolver = start(pair, enforce, tmp_path, "enforce")
            try:
                report = json.loads(sh("env", f"PYTHONPATH={os.pathsep.join(sys.path)}", sys.executable, CLIENT, "--server", "127.0.0.1",
                                       "--port", str(port), "--timeout", "1", "--ask", "www.example.com:A,api.example.com:A,alias.example.com:A",
                                       "--never", "203.0.113.99,203.0.113.98", ns=pair.host).stdout)
            finally:
                resolver.close()
            assert all(set(a["results"].values()) == {"reached"} for a in report["answers"]), report["answers"]
            assert report["never"] == {"203.0.113.99": "reached", "203.0.113.98": "dropped"}, report["never"]
        finally:
            world.terminate()
            world.wait(timeout=5)
