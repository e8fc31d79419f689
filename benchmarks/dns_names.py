"""Upstreams named by DNS, measured in network namespaces (root; docs/dns.md).

Two namespaces joined by a veth pair: "host" loads the rendered nftables policy and runs the
local dnsmasq from the rendered configuration (as the linux role writes them); "world" runs
lab/files/dns_world.py and answers every address of 203.0.113.0/24 and 2001:db8:5100::/64.

Prints Markdown tables:

1. First connection right after each answer, across rotations (api.example.com: 8 addresses
   of 64 per answer, TTL 1 s, A and AAAA; zero.example.com: TTL 0): connections that passed
   on their first packet, of all tried (target: all).
2. From answer to element: an address is in the set when the client reads the answer; and
   the answer's latency through the resolver that fills the sets against the same dnsmasq
   filling no set (the baseline, in the same run): median and 95th percentile, and the ratio.
3. Scale: a policy with --names names (one upstream per 100 names): the render, ``nft -c``,
   the load, dnsmasq's resident memory after reading its configuration, and a re-apply of the
   unchanged policy by nft_apply's own load path while the name sets hold --elements
   elements (carried in the transaction), against the same re-apply with empty name sets.

Run: ``sudo python3 benchmarks/dns_names.py [--names 10000] [--elements 100000] [--rounds 20]``
(takes about a minute; needs nft, dnsmasq and python3-dnslib or dnslib from PyPI).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, ".build", "collections"), os.path.join(TOP, "lab", "files")]
if not os.path.islink(os.path.join(TOP, ".build", "collections", "ansible_collections", "warden", "egress")):
    subprocess.run(["bash", os.path.join(TOP, ".ci", "collection-link.sh")], check=True)

from ansible_collections.warden.egress.plugins.module_utils._apply_nftables import carried, stable_listing  # noqa: E402
from ansible_collections.warden.egress.plugins.plugin_utils.compile.host import compile_policy  # noqa: E402
from ansible_collections.warden.egress.plugins.plugin_utils.render import nftables  # noqa: E402

HOST, WORLD_GW = "198.51.100.11", "198.51.100.254"


def sh(*args, ns=None, data=None, check=True):
    return subprocess.run((["ip", "netns", "exec", ns] if ns else []) + list(args), input=data, capture_output=True, text=True, check=check)


def policy(names: list[str], per_upstream: int = 100) -> dict:
    upstreams = {"dns_forwarders": ["203.0.113.53"]}
    allow = [{"service": "dns", "to": "dns_forwarders"}]
    for i in range(0, len(names), per_upstream):
        upstreams[f"n{i // per_upstream}"] = [f"dns:{name}" for name in names[i:i + per_upstream]]
        allow.append({"service": "https", "to": f"n{i // per_upstream}"})
    variables = {"egress_trusted_prefixes": ["198.51.100.0/25", "2001:db8:10::/120"], "egress_upstreams": upstreams, "egress_role": "bench",
                 "egress_roles": {"bench": {"allow": allow}}, "egress_dns": {"cache_ttl": 1, "grace": 1}}
    return compile_policy(variables, "bench1", {"bench1": [HOST, "2001:db8:10::11"]}, {})


class Lab:
    def __enter__(self):
        tag = uuid.uuid4().hex[:6]
        self.host, self.world = f"bh{tag}", f"bw{tag}"
        self.procs = []
        for ns in (self.host, self.world):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", ns=ns)
        sh("ip", "link", "add", "eth0", "netns", self.host, "type", "veth", "peer", "name", "eth0", "netns", self.world)
        sh("ip", "addr", "add", f"{HOST}/24", "dev", "eth0", ns=self.host)
        sh("ip", "-6", "addr", "add", "2001:db8:10::11/64", "dev", "eth0", "nodad", ns=self.host)
        sh("ip", "addr", "add", f"{WORLD_GW}/24", "dev", "eth0", ns=self.world)
        sh("ip", "-6", "addr", "add", "2001:db8:10::fe/64", "dev", "eth0", "nodad", ns=self.world)
        for ns in (self.host, self.world):
            sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", WORLD_GW, ns=self.host)
        sh("ip", "-6", "route", "add", "default", "via", "2001:db8:10::fe", ns=self.host)
        sh("ip", "route", "add", "local", "203.0.113.0/24", "dev", "lo", ns=self.world)
        sh("ip", "-6", "route", "add", "local", "2001:db8:5100::/64", "dev", "lo", ns=self.world)
        for gateway in (WORLD_GW, "2001:db8:10::fe"):
            for dummy in range(30):
                if sh("ping", "-c", "1", "-W", "1", gateway, ns=self.host, check=False).returncode == 0:
                    break
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.world, sys.executable, os.path.join(TOP, "lab", "files", "dns_world.py"),
                                            "--address", "203.0.113.53", "--ttl", "1", "--many", "8", "--count", "64"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def dnsmasq(self, conf_text: str, port: int, tmp: str) -> subprocess.Popen:
        conf = os.path.join(tmp, f"dnsmasq-{port}.conf")
        with open(conf, "w", encoding="utf-8") as handle:
            handle.write(conf_text.replace("listen-address=::1\n", "") + f"port={port}\n")
        proc = subprocess.Popen(["ip", "netns", "exec", self.host, "dnsmasq", "--keep-in-foreground", f"--conf-file={conf}", "--pid-file=",
                                 "--log-facility=-"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        for dummy in range(100):
            if sh("python3", "-c", f"import socket; s=socket.socket(); s.settimeout(0.1); s.connect(('127.0.0.1', {port}))",
                  ns=self.host, check=False).returncode == 0:
                break
            time.sleep(0.05)
        return proc

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=10)
        for ns in (self.host, self.world):
            sh("ip", "netns", "del", ns, check=False)


CLIENT = r"""
import json, socket, sys, time
from dnslib import DNSRecord, QTYPE
port, rounds, pause, check_set = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
import subprocess
out = {"tried": 0, "passed": 0, "latency": [], "in_set_at_answer": 0, "checked": 0}
for r in range(rounds):
    for name, qtype in (("api.example.com", "A"), ("api.example.com", "AAAA"), ("zero.example.com", "A")):
        start = time.perf_counter()
        reply = DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", port, timeout=5))
        out["latency"].append(time.perf_counter() - start)
        addresses = [str(rr.rdata) for rr in reply.rr if QTYPE[rr.rtype] in ("A", "AAAA")]
        if check_set and addresses:
            family = "v6" if ":" in addresses[0] else "v4"
            listed = subprocess.run(["nft", "list", "set", "inet", "warden_egress", f"dns_up_n0_a_{family}"], capture_output=True, text=True).stdout
            out["checked"] += len(addresses)
            out["in_set_at_answer"] += sum(a in listed for a in addresses)
        for address in addresses:
            with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
                sock.settimeout(0.5)
                out["tried"] += 1
                try:
                    sock.connect((address, 443)); out["passed"] += 1
                except ConnectionRefusedError:
                    out["passed"] += 1
                except OSError:
                    pass
    time.sleep(pause)
print(json.dumps(out))
"""


def client(lab: Lab, port: int, rounds: int, pause: float, check_set: bool) -> dict:
    env_path = os.pathsep.join(p for p in sys.path if p)
    out = sh("env", f"PYTHONPATH={env_path}", sys.executable, "-c", CLIENT, str(port), str(rounds), str(pause), "1" if check_set else "0",
             ns=lab.host)
    return json.loads(out.stdout)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def rss_kib(pid: int) -> int:
    """The resident memory of ``pid`` (``ip netns exec`` runs dnsmasq in its own place)."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--names", type=int, default=10000)
    parser.add_argument("--elements", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (network namespaces)")
    names = ["api.example.com", "zero.example.com"] + [f"n{i}.bulk.example.com" for i in range(max(0, args.names - 2))]
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        small = policy(names[:2])
        sh("nft", "-f", "-", ns=lab.host, data=nftables.render(small))
        files = nftables.dnsmasq(small, ["203.0.113.53"])
        lab.dnsmasq(files["conf"], 53, tmp)
        baseline_conf = "\n".join(line for line in files["conf"].splitlines() if not line.startswith("nftset=")) + "\n"
        lab.dnsmasq(baseline_conf, 5353, tmp)
        filling = client(lab, 53, args.rounds, 1.1, check_set=True)
        baseline = client(lab, 5353, args.rounds, 1.1, check_set=False)
        print("## First connection right after each answer\n")
        print("| answers | addresses tried | passed on the first packet | in the set when the client read the answer |")
        print("| ---: | ---: | ---: | ---: |")
        print(f"| {args.rounds * 3} | {filling['tried']} | {filling['passed']} ({filling['passed'] / max(1, filling['tried']):.1%}) | "
              f"{filling['in_set_at_answer']} of {filling['checked']} |\n")
        print("## Answer latency through the local resolver (ms)\n")
        print("| resolver | median | p95 |")
        print("| --- | ---: | ---: |")
        for label, run in (("dnsmasq filling the name sets", filling), ("the same dnsmasq filling no set (baseline)", baseline)):
            print(f"| {label} | {statistics.median(run['latency']) * 1000:.2f} | {pct(run['latency'], 0.95) * 1000:.2f} |")
        ratio = statistics.median(filling["latency"]) / statistics.median(baseline["latency"])
        print(f"\nMedian ratio, filling / baseline: {ratio:.2f}\n")

        # Scale: many names, many live elements.
        def compile_and_render() -> tuple[dict, str]:
            one = policy(names)
            return one, nftables.render(one)

        render_s, (ir, text) = timed(compile_and_render)
        path = os.path.join(tmp, "big.nft")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        check_s, dummy = timed(lambda: sh("nft", "-c", "-f", path, ns=lab.host))
        load_s, dummy = timed(lambda: sh("nft", "-f", path, ns=lab.host))
        big = nftables.dnsmasq(ir, ["203.0.113.53"])
        proc = lab.dnsmasq(big["conf"], 5354, tmp)
        rss = rss_kib(proc.pid)

        def reapply() -> float:
            before = sh("nft", "-s", "list", "table", "inet", "warden_egress", ns=lab.host).stdout
            start = time.perf_counter()
            extra = carried(before, text, "inet", "warden_egress")
            sh("nft", "-f", "-", ns=lab.host, data=text + extra)
            stable_listing(sh("nft", "-s", "list", "table", "inet", "warden_egress", ns=lab.host).stdout)
            return time.perf_counter() - start

        empty_s = reapply()
        sets = sorted({f"dns_up_n{i}_{h}_v4" for i in range((len(names) + 99) // 100) for h in "ab"})
        hosts = ipaddress.ip_network("10.0.0.0/8").hosts()
        batch = []
        for i in range(args.elements):
            batch.append((sets[i % len(sets)], str(next(hosts))))
        by_set: dict = {}
        for name, address in batch:
            by_set.setdefault(name, []).append(address)
        fill = "".join(f"add element inet warden_egress {name} {{ {', '.join(members)} }}\n" for name, members in by_set.items())
        sh("nft", "-f", "-", ns=lab.host, data=fill)
        full_s = reapply()
        listed = json.loads(sh("nft", "-j", "list", "sets", "table", "inet", "warden_egress", ns=lab.host).stdout)["nftables"]
        kept = sum(len(item["set"].get("elem", [])) for item in listed if "set" in item)
        print(f"## {len(names):,} names in {len(sets) // 2:,} upstreams\n")
        print("| step | result |")
        print("| --- | ---: |")
        print(f"| compile and render | {render_s:.2f} s ({len(text.splitlines()):,} lines) |")
        print(f"| nft -c | {check_s:.2f} s |")
        print(f"| first load | {load_s:.2f} s |")
        print(f"| dnsmasq resident memory with every name | {rss / 1024:.1f} MiB |")
        print(f"| re-apply, name sets empty (baseline) | {empty_s:.2f} s |")
        print(f"| re-apply, {args.elements:,} resolver elements carried | {full_s:.2f} s (ratio {full_s / empty_s:.2f}) |")
        print(f"| elements still in the name sets after it | {kept:,} |")
        if filling["passed"] != filling["tried"] or kept < args.elements:
            sys.exit("a first connection failed or the re-apply lost elements")


if __name__ == "__main__":
    main()
