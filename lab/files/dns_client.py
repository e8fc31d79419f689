"""A client of names for the lab and the benchmark: ask a resolver, connect at once.

For each round, asks ``--server`` for each ``NAME:TYPE`` of ``--ask`` and opens a TCP
connection to each address of the answer on ``--port`` right away (the first packet leaves
within a millisecond of the answer), then waits ``--pause`` seconds. Then tries each address
of ``--never`` (addresses no answer gave). Prints one JSON object: each answer's addresses
and their TTLs, every address tried, with "reached" (connected, or refused by the far end:
the packet left) or "dropped" (no answer within ``--timeout``), per name and for ``--never``.
"""

from __future__ import annotations

import argparse
import json
import socket
import time

from dnslib import QTYPE, DNSRecord


def connect(address: str, port: int, timeout: float) -> str:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            return "reached"
        except ConnectionRefusedError:
            return "reached"
        except OSError:
            return "dropped"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--ask", required=True, help="NAME:TYPE,NAME:TYPE")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--never", default="")
    args = parser.parse_args()
    out: dict = {"answers": [], "never": {}}
    for round_ in range(args.rounds):
        for item in args.ask.split(","):
            name, qtype = item.rsplit(":", 1)
            started = time.monotonic()
            reply = DNSRecord.parse(DNSRecord.question(name, qtype).send(args.server, 53, timeout=5))
            records = [rr for rr in reply.rr if QTYPE[rr.rtype] in ("A", "AAAA")]
            addresses = [str(rr.rdata) for rr in records]
            results = {address: connect(address, args.port, args.timeout) for address in addresses}
            out["answers"].append({"round": round_, "name": name, "type": qtype, "addresses": addresses, "ttls": [rr.ttl for rr in records],
                                   "results": results, "seconds": round(time.monotonic() - started, 3)})
        if args.pause and round_ + 1 < args.rounds:
            time.sleep(args.pause)
    for address in filter(None, args.never.split(",")):
        out["never"][address] = connect(address, args.port, args.timeout)
    out["reached"] = sum(list(a["results"].values()).count("reached") for a in out["answers"])
    out["dropped"] = sorted({addr for a in out["answers"] for addr, r in a["results"].items() if r != "reached"})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
