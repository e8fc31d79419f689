# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prefixes as integers: read from text (``network``, cached), merged as sorted integer
spans and written back (``merged``, ``text``, ``address_text``), and tested for
containment by binary search instead of pairwise ``subnet_of`` (private to the collection)."""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
import socket

BITS = {4: 32, 6: 128}


# The usual ways of writing a prefix, read without ipaddress's parser; anything else (and a
# prefix with host bits set) goes through ipaddress.ip_network, which these agree with.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(3[0-2]|[12]?[0-9]))?")
_IPV6_RE = re.compile(r"([0-9A-Fa-f:]{2,39})(?:/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?")


@functools.lru_cache(maxsize=65536)
def network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``ipaddress.ip_network(text, strict=True)``, faster for the usual forms (and the same
    text read once: a site repeats its prefixes, and the renderers read the IR's). Host bits
    set raise ValueError either way. The network returned is shared: never change it."""
    match = _IPV4_RE.fullmatch(text)
    if match:
        a, b, c, d, length = match.groups()
        return ipaddress.IPv4Network(((int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d), int(length or 32)))
    match = _IPV6_RE.fullmatch(text)
    if match:
        try:
            packed = socket.inet_pton(socket.AF_INET6, match.group(1))
        except OSError:
            packed = None
        if packed is not None:
            return ipaddress.IPv6Network((int.from_bytes(packed, "big"), int(match.group(2) or 128)))
    return ipaddress.ip_network(text, strict=True)


def _span(net) -> tuple[int, int]:
    start = int(net.network_address)
    return start, start | ((1 << (net.max_prefixlen - net.prefixlen)) - 1)


def _address(version: int, value: int) -> str:
    if version == 4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def address_text(address) -> str:
    """``str(address)`` for an ipaddress address, faster: IPv6 through ``inet_ntop``, which
    writes what ipaddress writes except the dotted forms (``::ffff:0.0.0.0``), left to
    ipaddress."""
    written = _address(address.version, int(address))
    return str(address) if "." in written and address.version == 6 else written


def text(net) -> str:
    """``str(net)`` for an ipaddress network, faster (as ``address_text``)."""
    return f"{address_text(net.network_address)}/{net.prefixlen}"


def merged(nets) -> dict[int, list[str]]:
    """Per IP version, the fewest prefixes that hold exactly the addresses of ``nets`` (any
    that overlap or adjoin are joined), sorted by address, as text: the result of netaddr's
    ``cidr_merge`` (which writes IPv6 as ``inet_ntop`` does, an IPv4-mapped address dotted),
    computed on integers."""
    spans: dict[int, list] = {4: [], 6: []}
    for net in nets:
        spans[net.version].append(_span(net))
    out: dict[int, list[str]] = {4: [], 6: []}
    for version, bits in BITS.items():
        ordered = sorted(spans[version])
        index = 0
        while index < len(ordered):
            low, high = ordered[index]
            index += 1
            while index < len(ordered) and ordered[index][0] <= high + 1:
                high = max(high, ordered[index][1])
                index += 1
            # The largest block aligned at low that ends at or before high, then the rest.
            while low <= high:
                size = min((low & -low).bit_length() - 1 if low else bits, (high - low + 1).bit_length() - 1)
                out[version].append(f"{_address(version, low)}/{bits - size}")
                low += 1 << size
    return out


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
