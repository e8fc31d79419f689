# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prefixes as sorted integer spans, for containment tests by binary search instead of
pairwise ``subnet_of`` (private to the collection)."""

from __future__ import annotations

import bisect
import ipaddress


def _span(net) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


class Spans:
    """The union of some prefixes, per IP version, as sorted disjoint spans."""

    def __init__(self, nets) -> None:
        self._starts: dict[int, list[int]] = {4: [], 6: []}
        self._ends: dict[int, list[int]] = {4: [], 6: []}
        for version in (4, 6):
            merged: list[list[int]] = []
            for start, end in sorted(_span(n) for n in nets if n.version == version):
                if merged and start <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            self._starts[version] = [m[0] for m in merged]
            self._ends[version] = [m[1] for m in merged]

    def covers(self, net) -> bool:
        """Whether every address of ``net`` lies in the union."""
        start, end = _span(net)
        at = bisect.bisect_right(self._starts[net.version], start) - 1
        return at >= 0 and self._ends[net.version][at] >= end

    def holds(self, address) -> bool:
        """Whether ``address`` lies in the union."""
        value = int(address)
        at = bisect.bisect_right(self._starts[address.version], value) - 1
        return at >= 0 and self._ends[address.version][at] >= value


def members(net, ordered: list, starts: list[int]) -> list:
    """The prefixes of ``ordered`` (sorted by start, with ``starts`` their starts, one IP
    version) that lie within ``net``."""
    start, end = _span(net)
    low, high = bisect.bisect_left(starts, start), bisect.bisect_right(starts, end)
    return [m for m in ordered[low:high] if int(m.broadcast_address) <= end]


def tightest(low: int, high: int, version: int):
    """The smallest prefix that holds the addresses low..high."""
    bits = (32 if version == 4 else 128) - ((low ^ high).bit_length())
    return ipaddress.ip_network((ipaddress.ip_address(low) if version == 4 else ipaddress.IPv6Address(low), bits), strict=False)


class PrefixIndex:
    """Which labelled networks hold an address: one dict look-up per prefix length in use,
    however many networks there are."""

    def __init__(self) -> None:
        self._by_length: dict[tuple[int, int], dict[int, list]] = {}

    def add(self, net, label: object = True) -> None:
        self._by_length.setdefault((net.version, net.prefixlen), {}).setdefault(int(net.network_address), []).append((label, net))

    def lookup(self, address) -> list[tuple]:
        """``(label, network)`` of every network holding ``address``."""
        found = []
        value = int(address)
        for (version, length), table in self._by_length.items():
            if version != address.version:
                continue
            bits = address.max_prefixlen - length
            found.extend(table.get(value >> bits << bits, ()))
        return found
