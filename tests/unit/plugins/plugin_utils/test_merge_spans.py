"""inputs.merge on integer spans (spans.merged) against netaddr's cidr_merge, which it
replaced: the same prefixes, in the same order, written the same way, for generated sets of
prefixes of both families (overlapping, adjoining, nested, /0, IPv4-mapped IPv6); and
inputs.parse_network, which reads the usual forms without ipaddress's parser, against
ipaddress.ip_network."""

from __future__ import annotations

import ipaddress
import re

import netaddr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import merge, parse_network
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import text


def network(version: int, value: int, length: int):
    bits = 32 if version == 4 else 128
    kind = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return kind((value >> (bits - length) << (bits - length), length))


def near(version: int):
    """Prefixes packed into a small region, so that they overlap and adjoin often."""
    bits = 32 if version == 4 else 128
    base = {4: 0xC6336400, 6: 0x20010DB8 << 96}[version]
    return st.builds(lambda offset, length: network(version, base + offset, length),
                     st.integers(0, 4095), st.integers(bits - 14, bits))


def anywhere(version: int):
    bits = 32 if version == 4 else 128
    return st.builds(lambda value, length: network(version, value, length), st.integers(0, (1 << bits) - 1), st.integers(0, bits))


MAPPED = [ipaddress.ip_network(text) for text in (
    "::ffff:0:0/96", "::ffff:198.51.100.0/120", "::/96", "::1.2.3.4/128", "::/0", "0.0.0.0/0", "64:ff9b::/96", "2001:db8::/127", "2001:db8::2/127")]


def reference(nets: list) -> dict:
    return {family: [str(n) for n in netaddr.cidr_merge([str(n) for n in nets if n.version == version])]
            for family, version in (("ipv4", 4), ("ipv6", 6))}


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(near(4), near(6), anywhere(4), anywhere(6), st.sampled_from(MAPPED)), max_size=40))
def test_merge_is_cidr_merge(nets):
    assert merge(nets) == reference(nets)


@pytest.mark.parametrize("texts, expected", [
    (["198.51.100.0/25", "198.51.100.128/25"], {"ipv4": ["198.51.100.0/24"], "ipv6": []}),
    (["198.51.100.1/32", "198.51.100.2/31", "198.51.100.4/32"], {"ipv4": ["198.51.100.1/32", "198.51.100.2/31", "198.51.100.4/32"], "ipv6": []}),
    (["::ffff:198.51.100.0/120", "2001:db8::/33", "2001:db8:8000::/33"], {"ipv4": [], "ipv6": ["::ffff:198.51.100.0/120", "2001:db8::/32"]}),
    (["0.0.0.0/1", "128.0.0.0/1", "::/0", "2001:db8::/32"], {"ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]}),
])
def test_merge_examples(texts, expected):
    assert merge([ipaddress.ip_network(t) for t in texts]) == expected


# parse_network reads the usual forms itself: whatever it makes of a text, ipaddress makes
# the same (or both refuse it).

def ipaddress_reads(text: str):
    """What parse_network read before: the text stripped, through ipaddress."""
    if not text or len(text) > 64:
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        return None


def parse_reads(text: str):
    try:
        return parse_network(text, "p")
    except PolicyError:
        return None


def written(value) -> st.SearchStrategy:
    """Texts near valid ones: a prefix as ipaddress writes it (compressed or exploded, upper
    case), with a length or not, then maybe changed in one character."""
    return st.builds(lambda net, form, length, cut, char: mutate(form(net), length, cut, char),
                     value, st.sampled_from([lambda n: str(n.network_address), lambda n: n.network_address.exploded,
                                             lambda n: str(n.network_address).upper()]),
                     st.one_of(st.none(), st.integers(0, 130), st.sampled_from(["024", "", "x", "/8"])),
                     st.integers(0, 45), st.sampled_from(list("0123456789abcdefABCDEF:./% ")) | st.none())


def mutate(address: str, length, cut: int, char) -> str:
    text = address if length is None else f"{address}/{length}"
    if char is not None and cut < len(text):
        text = text[:cut] + char + text[cut + 1:]
    return text


@settings(max_examples=1500, deadline=None)
@given(st.one_of(written(st.one_of(near(4), near(6), anywhere(4), anywhere(6), st.sampled_from(MAPPED))),
                 st.text(alphabet="0123456789abcdefABCDEF:./", max_size=45)))
def test_parse_network_reads_as_ipaddress(text):
    assert parse_reads(text) == ipaddress_reads(text)
    if parse_reads(text) is not None:
        assert type(parse_reads(text)) is type(ipaddress_reads(text))


@pytest.mark.parametrize("text", ["198.51.100.0/24", "198.51.100.7", "0.0.0.0/0", "2001:db8::/32", "::/0", "::1", "2001:DB8::/32",
                                  "2001:0db8:0000:0000:0000:0000:0000:0000/32"])
def test_parse_network_usual_forms(text):
    parsed = parse_network(text, "p")
    assert parsed == ipaddress.ip_network(text)
    assert type(parsed) is type(ipaddress.ip_network(text))


@pytest.mark.parametrize("text, problem", [("198.51.100.1/24", "has host bits set (did you mean 198.51.100.0/24?)"),
                                           ("2001:db8::1/32", "has host bits set (did you mean 2001:db8::/32?)"),
                                           ("198.51.100.256", "is not an IP address or prefix"), ("1::2::3", "is not an IP address or prefix"),
                                           ("198.051.100.0/24", "is not an IP address or prefix")])
def test_parse_network_refuses(text, problem):
    with pytest.raises(PolicyError, match=re.escape(problem)):
        parse_network(text, "egress_upstreams.x[0]")


@settings(max_examples=1000, deadline=None)
@given(st.one_of(near(4), near(6), anywhere(4), anywhere(6), st.sampled_from(MAPPED)))
def test_text_is_str(net):
    assert text(net) == str(net)
