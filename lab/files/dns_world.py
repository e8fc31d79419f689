"""An "Internet" DNS server for tests and the lab (documentation prefixes only).

Serves, on UDP port 53 of the address given:

* ``api.example.com``: A and AAAA, rotating: each answer gives the next ``--many`` addresses
  of ``--count`` from 203.0.113.``--first`` (default 104-119; AAAA 2001:db8:5100::4104 and
  so on), TTL ``--ttl``;
* ``zero.example.com``: one A record, rotating through 203.0.113.120-127, TTL 0;
* ``www.example.com``: a CNAME chain, www.example.com -> edge.example.net ->
  node.cdn.example.net, A 203.0.113.77, AAAA 2001:db8:5100::77; ``alias.example.com`` ->
  far.example.org, A 203.0.113.78;
* ``hint.example.com``: an HTTPS record whose ipv4hint is 203.0.113.88, and an A record
  203.0.113.89 (what a client asking only for HTTPS hints never asks for);
* ``n<digits>.bulk.example.com``: A 203.0.113.(digits mod 250 + 1);
* each ``--static NAME=ADDRESS`` (repeatable): that address, A or AAAA by its family, TTL
  ``--ttl``;
* anything else: NXDOMAIN.

Each answer is appended as one JSON line to ``--log`` (name, type, addresses) when given.
Run: ``python3 dns_world.py --address 203.0.113.53 [--ttl 2] [--many 8] [--log FILE]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, RD, A
from dnslib.server import BaseResolver, DNSServer

CHAIN = {"www.example.com": "edge.example.net", "edge.example.net": "node.cdn.example.net", "alias.example.com": "far.example.org"}


class World(BaseResolver):
    def __init__(self, ttl: int, many: int, first: int, count: int, log: str | None, static: dict | None = None) -> None:
        self.ttl, self.many, self.first, self.count, self.log = ttl, many, first, count, log
        self.static = static or {}
        self.turn = itertools.count()
        self.zero = itertools.count()
        self.lock = threading.Lock()

    def _note(self, name: str, qtype: str, addresses: list[str]) -> None:
        if self.log:
            with self.lock, open(self.log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"name": name, "type": qtype, "addresses": addresses}) + "\n")

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        addresses: list[str] = []
        owner = name
        while owner in CHAIN:
            reply.add_answer(RR(owner, QTYPE.CNAME, rdata=CNAME(CHAIN[owner]), ttl=self.ttl))
            owner = CHAIN[owner]
        if name == "api.example.com":
            start = next(self.turn) * self.many
            if qtype in ("A", "AAAA"):
                for i in range(self.many):
                    last = self.first + (start + i) % self.count
                    addresses.append(f"203.0.113.{last}" if qtype == "A" else f"2001:db8:5100::4{last:03d}")
        elif name == "zero.example.com" and qtype == "A":
            addresses.append(f"203.0.113.{120 + next(self.zero) % 8}")
        elif owner == "node.cdn.example.net" and qtype in ("A", "AAAA"):
            addresses.append("203.0.113.77" if qtype == "A" else "2001:db8:5100::77")
        elif owner == "far.example.org" and qtype == "A":
            addresses.append("203.0.113.78")
        elif name == "hint.example.com":
            if qtype == "A":
                addresses.append("203.0.113.89")
            elif qtype == "HTTPS":
                # priority 1, target ".", ipv4hint (key 4) 203.0.113.88
                rdata = bytes([0, 1, 0, 0, 4, 0, 4, 203, 0, 113, 88])
                reply.add_answer(RR(name, QTYPE.HTTPS, rdata=RD(rdata), ttl=self.ttl))
        elif name in self.static:
            addresses.extend(address for address in self.static[name] if (":" in address) == (qtype == "AAAA") and qtype in ("A", "AAAA"))
        elif name.endswith(".bulk.example.com") and name[:-len(".bulk.example.com")][1:].isdigit() and qtype == "A":
            addresses.append(f"203.0.113.{int(name.split('.', maxsplit=1)[0][1:]) % 250 + 1}")
        elif not (name in CHAIN or name in ("api.example.com", "zero.example.com")):
            reply.header.rcode = RCODE.NXDOMAIN
        ttl = 0 if name == "zero.example.com" else self.ttl
        for address in addresses:
            reply.add_answer(RR(owner, request.q.qtype, rdata=A(address) if qtype == "A" else AAAA(address), ttl=ttl))
        self._note(name, qtype, addresses)
        return reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--ttl", type=int, default=2)
    parser.add_argument("--many", type=int, default=8)
    parser.add_argument("--first", type=int, default=104)
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--log")
    parser.add_argument("--static", action="append", default=[], help="NAME=ADDRESS: a fixed answer (repeatable)")
    args = parser.parse_args()
    static: dict = {}
    for item in args.static:
        name, dummy, address = item.partition("=")
        static.setdefault(name.lower().rstrip("."), []).append(address)
    world = World(args.ttl, args.many, args.first, args.count, args.log, static)
    # UDP only: the box's listener holds TCP port 53 on every address (its answers fit in UDP).
    DNSServer(world, address=args.address, port=53).start_thread()
    threading.Event().wait()


if __name__ == "__main__":
    main()
