"""Digits that are not ASCII ('²', '٣') pass str.isdigit() but are no port, user id or
protocol number: each is refused with the variable named, never a traceback."""

from __future__ import annotations

import pytest

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.explain import parse_flow
from ansible_collections.warden.egress.plugins.plugin_utils.learn.collect import parse_line


@pytest.mark.parametrize("port", ["²", "٣٣"])
def test_explain_refuses_a_port_in_other_digits(port):
    with pytest.raises(PolicyError, match="port"):
        parse_flow({"src": "198.51.100.11", "dst": "203.0.113.5", "port": port})


def test_a_log_line_with_other_digits_is_malformed_not_a_traceback():
    line = "warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.9 LEN=60 PROTO=TCP SPT=40000 DPT=8²43"
    result = parse_line(line)
    assert result[0] == "malformed", result


LINE = "warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.9 LEN=60 PROTO={proto} SPT=40000 {rest}"


@pytest.mark.parametrize(("proto", "rest"), [
    ("٦", "DPT=443 WINDOW=1 URGP=0"),       # a protocol number in other digits
    ("+6", "DPT=443 WINDOW=1 URGP=0"),      # with a sign
    ("ICMP", "TYPE=٨ CODE=0"),              # an ICMP type in other digits
    ("TCP", "DPT=+443 WINDOW=1 URGP=0"),
    ("TCP", "DPT=4٤3 WINDOW=1 URGP=0"),
], ids=["proto", "proto-sign", "icmp-type", "port-sign", "port-mixed"])
def test_the_numbers_of_a_log_line_are_ascii_digits_or_the_line_is_malformed(proto, rest):
    kind, why = parse_line(LINE.format(proto=proto, rest=rest))
    assert kind == "malformed", why


@pytest.mark.parametrize("owner", ["UID=١٠٠٠ GID=١٠٠٠", "UID=-1 GID=+1"])
def test_an_owner_in_other_digits_is_no_owner(owner):
    kind, record = parse_line(LINE.format(proto="TCP", rest=f"DPT=443 WINDOW=1 URGP=0 {owner}"))
    assert kind == "flow" and (record["uid"], record["gid"]) == (None, None)
