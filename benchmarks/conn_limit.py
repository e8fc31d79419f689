"""Measure the edge's per-source new-connection limit on both backends.

A gateway network namespace loads the example site's edge policy (nftables meter, or
iptables hashlimit); one inside host opens N new connections to an allowed service at
once, and the script counts how many got out. The baseline, measured in the same run on the
same namespaces, is the same burst with the limit turned off (conn_limit: false), so the
ratio is "share of the burst the limit let through". Run as root from the repository:

    python3 benchmarks/conn_limit.py [--connections 150] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(TOP, "tests", "unit"), os.path.join(TOP, ".build", "collections")]

from netns import BACKENDS, Routed  # noqa: E402  (after the path set-up)
from sample import EDGE, edge_ir  # noqa: E402

LIMITS = [None, {"rate": "10/second", "burst": 20}, {"rate": "50/second", "burst": 100}]
SOURCE = "198.51.100.13"  # proxy1: https to any is allowed


def burst(topology: Routed, count: int) -> tuple[int, float]:
    flows = [{"src": SOURCE, "dst": f"203.0.113.{1 + i % 120}", "port": 443, "proto": "tcp"} for i in range(count)]
    start = time.monotonic()
    results = topology.probe(flows, timeout=0.7, workers=count)
    return sum(r["passed"] for r in results), time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.connections} simultaneous new https connections from {SOURCE}, median of {args.repeat} runs")
    print(f"{'backend':9} {'limit':22} {'got out':>8} {'seconds':>8} {'vs no limit':>12}")
    with Routed(["198.51.100.11", SOURCE], []) as topology:
        for backend in BACKENDS:
            baseline = None
            for limit in LIMITS:
                ir = edge_ir(edge={**EDGE, "conn_limit": limit if limit else False})
                passed, seconds = [], []
                for dummy in range(args.repeat):
                    topology.load(ir, backend)
                    try:
                        got, took = burst(topology, args.connections)
                    finally:
                        topology.unload()
                    passed.append(got)
                    seconds.append(took)
                    time.sleep(1)
                median = statistics.median(passed)
                baseline = baseline or median
                label = f"{limit['rate']} burst {limit['burst']}" if limit else "none (baseline)"
                print(f"{backend:9} {label:22} {median:>8} {statistics.median(seconds):>8.2f} {median / baseline:>12.2f}")


if __name__ == "__main__":
    main()
