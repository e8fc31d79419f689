"""The site play's compile phase on two site shapes: the generated site of site_scale.py and the
shape of a large user's site (sitegen.large_site).

One command, run from anywhere with the interpreter that has ansible-core and netaddr:

    python3 benchmarks/site_shape.py --hosts 1000,10000 --forks 5,20

For each shape and host count it generates the site, compiles it with the collection's Python
API (every host and the edge gateway ``gw``; a value the compiler refuses stops the benchmark
there, before anything is timed under ansible-playbook), then runs playbooks/site.yml with
``--tags egress_compile`` (its first play alone) on the site written as an inventory
(site_scale.write_inventory; no host is contacted) with each number of forks, and reports:
its wall time; the CPU time of the process tree (user + system, from ``getrusage`` of the
children); the peak, over samples of /proc every ``--interval`` seconds, of the summed
resident memory (VmRSS) of every process of the run, and of their summed proportional set
size (Pss, /proc/PID/smaps_rollup: a page shared by several processes counted once); and the
size of the directory the compile writes (``du -sb``).

The benchmark is not a test: nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import os
import platform as host_platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from site_scale import TOP, MIB, Warden, collection_link, limited, progress, run_playbook, show, sizes, table, write_inventory  # noqa: E402
from sitegen import generate, large_site  # noqa: E402

SHAPES = {
    "existing": ("site_scale.py's site: 50 roles, 5,000 upstream prefixes, one IPv6 address per host",
                 lambda hosts, seed: generate(hosts, 50, 5000, seed)),
    "large": (("a large site: 200 group: upstreams, 300 segments, 2,000 exceptions (100 expired), "
               "IPv6 on half the hosts, 50 roles, 5,000 upstream prefixes"),
              lambda hosts, seed: large_site(hosts, seed=seed)),
}


# --------------------------------------------------------------------------- the Python API

def api_compile(warden: Warden, site: dict) -> dict:
    """Every host's and the gateway's IRs through compile_site, as the play's action gets them
    (the site's variables on every host); the compile's time, not the consumer's."""
    host_vars = warden.host_vars(site)
    host_vars["gw"] = {**site["variables"], "egress_edge": site["edge"]}
    targets = irs = expired = warnings = 0
    started = time.perf_counter()
    for dummy, policies in warden.site_compile.compile_site(host_vars, site["addresses"], site["groups"]):
        targets += 1
        irs += len(policies)
        for ir in policies:
            warnings += len(ir["warnings"])
            expired += sum(1 for warning in ir["warnings"] if " expired on " in warning)
    return {"seconds": time.perf_counter() - started, "targets": targets, "irs": irs, "warnings": warnings, "expired_warnings": expired}


# --------------------------------------------------------------------------- memory of the run

def _parent(pid: str) -> int | None:
    """The parent of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _kib(path: str, key: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class Sampler(threading.Thread):
    """Samples, every ``interval`` seconds, the processes of the run this process started: the
    descendants of run_playbook's wrapper (by parent, since Ansible's workers start sessions of
    their own). The wrapper itself (a Python that only waits) is left out."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval, self.me = interval, os.getpid()
        self.done = threading.Event()
        self.rss_peak = self.pss_peak = self.largest = 0
        self.processes = self.samples = 0
        self.pss_readable = True

    def sample(self) -> None:
        children: dict[int, list[int]] = {}
        for pid in os.listdir("/proc"):
            parent = _parent(pid) if pid.isdigit() else None
            if parent is not None:
                children.setdefault(parent, []).append(int(pid))
        members, pending = [], list(children.get(self.me, []))  # the wrapper, not counted
        while pending:
            found = children.get(pending.pop(), [])
            members += found
            pending += found
        rss = pss = 0
        for pid in members:
            resident = _kib(f"/proc/{pid}/status", "VmRSS:") or 0
            rss += resident
            self.largest = max(self.largest, resident)
            proportional = _kib(f"/proc/{pid}/smaps_rollup", "Pss:")
            if proportional is None and resident:
                self.pss_readable = False
            pss += proportional or 0
        if members:
            self.samples += 1
        self.rss_peak, self.pss_peak = max(self.rss_peak, rss), max(self.pss_peak, pss)
        self.processes = max(self.processes, len(members))

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.sample()


def du(path: str) -> tuple[int, int]:
    """Bytes (``du -sb``) and files under ``path``."""
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout
    files = sum(len(names) for dummy, dummy2, names in os.walk(path))
    return int(out.split()[0]), files


def play(site: dict, directory: str, collections: str, forks: int, timeout: float, interval: float) -> dict:
    """playbooks/site.yml --tags egress_compile on ``site`` written in ``directory``."""
    inventory = os.path.join(directory, "inventory")
    if not os.path.isdir(inventory):
        write_inventory(site, directory)
    out = os.path.join(directory, "out")
    shutil.rmtree(out, ignore_errors=True)
    sampler = Sampler(interval)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.start()
    try:
        result = run_playbook(os.path.join(TOP, "playbooks", "site.yml"), inventory, directory, collections, timeout,
                              {"egress_site_compile_dir": out}, forks=forks, options=("--tags", "egress_compile"))
    finally:
        sampler.done.set()
        sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.update(cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), rss_sum_mib=sampler.rss_peak / MIB,
                  pss_sum_mib=sampler.pss_peak / MIB if sampler.pss_readable else None, largest_mib=sampler.largest / MIB,
                  processes=sampler.processes, samples=sampler.samples, limit=timeout)
    if result["status"] == "ok":
        runs = [name for name in os.listdir(out) if name.startswith("site-")] if os.path.isdir(out) else []
        if len(runs) != 1:
            result.update(status="error", error=f"expected one site-* directory in {out}, found {runs}")
        else:
            result["dir_bytes"], result["dir_files"] = du(os.path.join(out, runs[0]))
    shutil.rmtree(out, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- main

def machine() -> str:
    from ansible.release import __version__ as ansible
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    described = subprocess.run(["git", "-C", TOP, "describe", "--always", "--dirty"], capture_output=True, text=True, check=False)
    return (f"nproc {os.cpu_count()}, {memory:.1f} GiB memory, {host_platform.system()} {host_platform.release()}, "
            f"Python {host_platform.python_version()}, ansible-core {ansible}; collection at {described.stdout.strip() or 'unknown'}")


def arguments(argv: list | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=sizes, default=sizes("1000"), help="host counts, comma-separated (default 1000)")
    parser.add_argument("--forks", type=sizes, default=sizes("5,20"), help="ansible-playbook forks, comma-separated (default 5,20)")
    parser.add_argument("--shapes", default="existing,large", help=f"comma-separated, of: {', '.join(SHAPES)} (default both)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed to each Python API compile (default 600)")
    parser.add_argument("--play-timeout", type=float, default=900.0, help="seconds allowed to each ansible-playbook run (default 900)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between memory samples (default 0.5)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (inventories)")
    args = parser.parse_args(argv)
    args.shapes = [name.strip() for name in args.shapes.split(",") if name.strip()]
    unknown = [name for name in args.shapes if name not in SHAPES]
    if unknown or not args.shapes:
        parser.error(f"--shapes: not a shape: {', '.join(unknown) or '(none)'}")
    return args


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} MiB"


def main(argv: list | None = None) -> int:
    args = arguments(argv)
    work = tempfile.mkdtemp(prefix="warden-shape-")
    collections = collection_link(work)
    warden = Warden(collections)
    report = [f"Machine: {machine()}", "Command: python3 benchmarks/site_shape.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "At the start: load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())]
    progress(report[0])
    api_rows, play_rows, problems, gave_up = [], [], [], set()
    started = time.perf_counter()
    try:
        for count in args.hosts:
            for shape in args.shapes:
                site = SHAPES[shape][1](count, args.seed)
                compiled = limited(partial(api_compile, warden, site), args.timeout)
                compiled["limit"] = args.timeout
                progress(f"{shape} {count}: Python API compile: {show(compiled)}")
                if compiled["status"] != "ok":
                    problems.append(f"{shape} {count}: the Python API compile: {compiled.get('error', compiled['status'])}")
                    api_rows.append([shape, f"{count:,}", show(compiled), "-", "-", "-"])
                    continue  # not valid for the compiler, or too slow: no play on it
                warned = f"{compiled['warnings']:,} ({compiled['expired_warnings']:,} of expired exceptions)"
                api_rows.append([shape, f"{count:,}", show(compiled), f"{compiled['targets']:,}", warned, mib(compiled["rss_mib"])])
                directory = tempfile.mkdtemp(prefix=f"{shape}-{count}-", dir=work)
                for forks in args.forks:
                    if (shape, forks) in gave_up:
                        result = {"status": "not run"}
                    else:
                        result = play(site, directory, collections, forks, args.play_timeout, args.interval)
                    if result["status"] == "timeout":
                        gave_up.add((shape, forks))
                    if result["status"] == "error":
                        problems.append(f"{shape} {count} forks {forks}: {result['error']}")
                    progress(f"{shape} {count} forks {forks}: {show(result)}, cpu {result.get('cpu', 0):.1f} s, "
                             f"RSS sum {mib(result.get('rss_sum_mib'))}, Pss sum {mib(result.get('pss_sum_mib'))}")
                    ok = result["status"] == "ok"
                    play_rows.append([shape, f"{count:,}", forks, show(result), show(result, "cpu") if ok else "-",
                                      mib(result["rss_sum_mib"]) if ok else "-", mib(result["pss_sum_mib"]) if ok else "-",
                                      mib(result["largest_mib"]) if ok else "-", result.get("processes", "-") if ok else "-",
                                      f"{result['dir_bytes'] / 2 ** 20:,.1f} MiB ({result['dir_files']:,} files)" if ok else "-"])
                if not args.keep:
                    shutil.rmtree(directory, ignore_errors=True)
    finally:
        if args.keep:
            progress(f"working directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.append("\nShapes:\n" + "\n".join(f"- {name}: {SHAPES[name][0]}" for name in args.shapes))
    report.append(table("The Python API: compile_site over every host and the gateway",
                        ["shape", "hosts", "wall", "targets", "warnings", "peak RSS"], api_rows))
    report.append(table("playbooks/site.yml --tags egress_compile under ansible-playbook",
                        ["shape", "hosts", "forks", "wall", "CPU (user+sys)", "peak of summed RSS", "peak of summed Pss",
                         "largest process", "processes", "compile directory"], play_rows))
    report.append(f"\nTotal benchmark time: {time.perf_counter() - started:.0f} s; at the end: load average "
                  + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    if problems:
        report.append("\nErrors:\n" + "\n".join(f"- {problem}" for problem in problems))
    print("\n".join(report))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
