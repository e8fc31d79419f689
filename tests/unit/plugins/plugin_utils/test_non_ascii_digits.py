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
