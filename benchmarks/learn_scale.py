"""How learning grows with the number of distinct flows: the analysis (reading, suggestion and
replay) and the what-if the learn role runs, then the whole role under ansible-playbook.

    python3 benchmarks/learn_scale.py                       # growth table (10k, 20k, 50k flows), then the role on 4 and 1,000 hosts
    python3 benchmarks/learn_scale.py --flows 10000,20000 --role-hosts 4

Each size is a generated site (``sitegen``: 400 upstream prefixes, up to 20 roles) whose hosts
log two kernel lines for each of their distinct flows (a new destination on 443, 8443 or one
of 50 unnamed ports, as UID 1000): 100,000 lines of 50,000 flows at the largest size. Most
flows go to destinations no upstream holds, so the suggestion adds thousands of addresses and,
on a small site, per-host exceptions: the case that used to make the replay quadratic.

The role runs against an inventory of local-connection hosts (nothing is contacted) with a
``journalctl`` on ``PATH`` that prints the host's generated records. CPU is the play's own
and its children's (``getrusage``), so it includes every host's command task; the analysis'
share is the two ``set_fact`` tasks, shown by ``ansible.posix.profile_tasks``.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
BUILD = os.path.join(TOP, ".build", "collections")
sys.path[:0] = [HERE, BUILD]
LINK = os.path.join(BUILD, "ansible_collections", "warden", "egress")
if not os.path.islink(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(TOP, LINK)

import sitegen  # noqa: E402

TODAY = datetime.date(2026, 12, 2)
NEW = int(ipaddress.ip_address("2001:db8:4000::"))  # outside sitegen's hosts and upstreams


def site_of(hosts: int) -> dict:
    site = sitegen.generate(hosts, max(1, min(20, hosts // 2)), 400)
    site["host_vars"] = {h: dict(site["variables"], egress_role=r, egress_mode="audit") for h, r in site["host_roles"].items()}
    return site


def records(site: dict, flows: int, seed: int = 7) -> dict[str, list[dict]]:
    """Each host's journal records (``journalctl -k -o json``): two lines per distinct flow."""
    rng = random.Random(seed)
    names = sorted(site["host_vars"])
    out: dict[str, list[dict]] = {h: [] for h in names}
    stamp = 1_796_205_600_000_000  # 2026-12-02T10:00:00Z
    for i in range(flows):
        host = names[i % len(names)]
        dst = ipaddress.ip_address(NEW + rng.randrange(1 << 40))
        port = rng.choice([443, 443, 8443, 9000 + rng.randrange(50)])
        for k in range(2):
            message = (f"warden-egress audit[host]: IN= OUT=eth0 SRC={site['addresses'][host][0]} DST={dst} LEN=80 TC=0 HOPLIMIT=64 "
                       f"FLOWLBL=0 PROTO=TCP SPT={40000 + k} DPT={port} WINDOW=64800 RES=0x00 SYN URGP=0 UID=1000 GID=1000")
            out[host].append({"__REALTIME_TIMESTAMP": str(stamp + 2 * i + k), "_BOOT_ID": "0b5e7c1d2a3f4e5d6c7b8a9f0e1d2c3b",
                              "_TRANSPORT": "kernel", "SYSLOG_FACILITY": "0", "SYSLOG_IDENTIFIER": "kernel", "PRIORITY": "4",
                              "_SOURCE_MONOTONIC_TIMESTAMP": str(1_000_000 + 2 * i + k), "MESSAGE": message})
    return out


def analysis(hosts: int, flows: int) -> dict:
    """CPU seconds of the analysis and of the what-if, as the role's two filters compute them."""
    from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import apply_change, learn
    from ansible_collections.warden.egress.plugins.plugin_utils.oracle.whatif import compare

    site = site_of(hosts)
    logs = {h: "\n".join(json.dumps(r) for r in rs) for h, rs in records(site, flows).items()}
    start = time.process_time()
    out = learn(site["host_vars"], site["addresses"], site["groups"], logs, today=TODAY)
    learned = time.process_time()
    side = {"host_vars": site["host_vars"], "addresses": site["addresses"], "groups": site["groups"]}
    proposed = {**side, "host_vars": apply_change(site["host_vars"], out["suggestion"], TODAY, fill_blanks=True)}
    result = compare(side, proposed, out["flows"], today=TODAY)
    done = time.process_time()
    return {"lines": 2 * flows, "flows": len(out["flows"]), "exceptions": len(out["suggestion"].get("egress_exceptions", [])),
            "denied_now": out["replay"]["denied_now"], "denied_suggested": out["replay"]["denied_suggested"],
            "learn": learned - start, "whatif": done - learned, "changed": len(result["changed"])}


FAKE_JOURNALCTL = """#!/usr/bin/env python3
import json, os, sys
host = os.environ.get("LEARN_BENCH_HOST", "")
fmt = sys.argv[sys.argv.index("-o") + 1] if "-o" in sys.argv else "short"
with open(os.path.join(os.environ["LEARN_BENCH_DIR"], host + ".json")) as handle:
    for line in handle:
        record = json.loads(line)
        print(line.rstrip() if fmt.startswith("json") else "2026-12-02T10:00:00+0000 " + host + " kernel: " + record["MESSAGE"])
"""


def role(hosts: int, flows: int, keep: bool = False) -> dict:
    """The learn role under ansible-playbook: wall and CPU seconds, and the analysis tasks' times."""
    import yaml

    site = site_of(hosts)
    work = tempfile.mkdtemp(prefix="learn-bench-")
    try:
        logs = os.path.join(work, "logs")
        bindir = os.path.join(work, "bin")
        os.makedirs(logs)
        os.makedirs(bindir)
        for host, rs in records(site, flows).items():
            with open(os.path.join(logs, f"{host}.json"), "w", encoding="utf-8") as handle:
                handle.writelines(json.dumps(r) + "\n" for r in rs)
        with open(os.path.join(bindir, "journalctl"), "w", encoding="utf-8") as handle:
            handle.write(FAKE_JOURNALCTL)
        os.chmod(os.path.join(bindir, "journalctl"), 0o755)
        for host in site["host_roles"]:
            wrapper = os.path.join(bindir, f"python-{host}")
            with open(wrapper, "w", encoding="utf-8") as handle:
                handle.write(f"#!/bin/sh\nLEARN_BENCH_HOST={host} exec {sys.executable} \"$@\"\n")
            os.chmod(wrapper, 0o755)
        inventory = {"all": {"vars": {**site["variables"], "egress_mode": "audit", "ansible_connection": "local"},
                             "hosts": {h: {"egress_role": r, "egress_addresses": site["addresses"][h],
                                           # the module's interpreter names the host to the fake journalctl
                                           "ansible_python_interpreter": os.path.join(bindir, f"python-{h}")}
                                       for h, r in site["host_roles"].items()},
                             "children": {g: {"hosts": {h: {} for h in members}} for g, members in site["groups"].items()}}}
        with open(os.path.join(work, "hosts.yml"), "w", encoding="utf-8") as handle:
            yaml.safe_dump(inventory, handle)
        with open(os.path.join(work, "learn.yml"), "w", encoding="utf-8") as handle:
            yaml.safe_dump([{"name": "Learn", "hosts": "all", "gather_facts": False,
                             "roles": [{"role": "warden.egress.learn", "learn_egress_since": "-7d", "learn_egress_become": False,
                                        "learn_egress_output_dir": os.path.join(work, "learned")}]}], handle)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=BUILD, LEARN_BENCH_DIR=logs,
                   PATH=f"{bindir}:{os.environ['PATH']}", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
                   PROFILE_TASKS_SORT_ORDER="descending", PROFILE_TASKS_TASK_OUTPUT_LIMIT="6", ANSIBLE_FORKS="8", ANSIBLE_NOCOLOR="1")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        run = subprocess.run(["ansible-playbook", "-i", "hosts.yml", "learn.yml"], cwd=work, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        tasks = [line.strip() for line in run.stdout.splitlines() if line.startswith("warden.egress.learn : ") and "---" in line]
        report = os.path.join(work, "learned", "report.md")
        verdict = next((line for line in open(report, encoding="utf-8") if line.startswith("**")), "").strip() if os.path.exists(report) else ""
        return {"rc": run.returncode, "wall": wall, "cpu": cpu, "tasks": tasks, "verdict": verdict,
                "tail": "" if run.returncode == 0 else run.stdout[-3000:] + run.stderr[-2000:]}
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", default="10000,20000,50000", help="distinct flows per size (two lines each)")
    parser.add_argument("--hosts", type=int, default=4, help="hosts of the growth table's site")
    parser.add_argument("--role-hosts", default="4,1000", help="site sizes for the role under ansible-playbook (empty: skip)")
    parser.add_argument("--role-flows", type=int, default=50000)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print(f"\n## Analysis and what-if, {args.hosts} hosts (CPU seconds)\n")
    print("| lines | distinct flows | suggested exceptions | denied now / with suggestion | analysis | what-if | total | growth |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|")
    previous = None
    for flows in [int(n) for n in args.flows.split(",") if n]:
        r = analysis(args.hosts, flows)
        total = r["learn"] + r["whatif"]
        growth = "" if previous is None else f"{total / previous[1]:.2f} for {flows / previous[0]:.1f}x flows"
        print(f"| {r['lines']:,} | {r['flows']:,} | {r['exceptions']:,} | {r['denied_now']:,} / {r['denied_suggested']:,} | "
              f"{r['learn']:.1f} | {r['whatif']:.1f} | {total:.1f} | {growth} |", flush=True)
        previous = (flows, total)
    for hosts in [int(n) for n in args.role_hosts.split(",") if n]:
        print(f"\n## The learn role, {hosts} hosts, {2 * args.role_flows:,} lines of {args.role_flows:,} flows\n", flush=True)
        r = role(hosts, args.role_flows)
        print(f"exit {r['rc']}, wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s (the play and every host's command task)")
        print(f"report: {r['verdict']}")
        for line in r["tasks"]:
            print(f"    {line}")
        if r["tail"]:
            print(r["tail"])
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
