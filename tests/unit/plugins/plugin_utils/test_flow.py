"""model.flow: the one Flow (every field checked at one door, named with its value when bad;
``port`` only where a person types the flow) and the one reader of a number written as text."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import Flow
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import read_number

FLOW = {"src": "198.51.100.11", "dst": "203.0.113.25", "dport": 25}


@pytest.mark.parametrize(("value", "low", "high", "number"), [
    (25, 1, 65535, 25),
    ("25", 1, 65535, 25),
    ("0", 0, None, 0),
    ("00443", 1, 65535, 443),
    ("4294967294", 0, 4294967294, 4294967294),
    ("1764669601000000", 0, None, 1764669601000000),
], ids=["int", "text", "zero", "leading-zeros", "highest-id", "journal-time"])
def test_read_number_reads_ascii_digits_and_ints(value, low, high, number):
    assert read_number(value, low, high) == number


@pytest.mark.parametrize("value", [
    "²", "٣٣", "８０", "4²", "-1", "+1", " 1", "1 ", "1\n", "1.0", "1e3", "0x10", "1_000", "", True, False, 1.0, None, [1], "9" * 40,
], ids=["superscript", "arabic-indic", "fullwidth", "mixed", "minus", "plus", "space-before", "space-after", "newline", "decimal", "exponent",
        "hex", "underscore", "empty", "true", "false", "float", "none", "list", "too-long"])
def test_read_number_refuses_anything_but_plain_digits(value):
    assert read_number(value) is None


@pytest.mark.parametrize(("value", "low", "high"), [(0, 1, 65535), ("65536", 1, 65535), (-1, 0, None), ("256", 0, 255)])
def test_read_number_refuses_a_number_out_of_range(value, low, high):
    assert read_number(value, low, high) is None


def test_a_flow_reads_numbers_and_addresses_once_and_gives_plain_data_back():
    flow = Flow.from_mapping({"src": "2001:DB8:10::11", "dst": "2001:db8:5100::25", "dport": "25", "user": "107", "group": "mail"})
    assert (flow.src, flow.dport, flow.user, flow.group) == (ipaddress.ip_address("2001:db8:10::11"), 25, 107, "mail")
    assert flow.family == "ipv6"
    assert flow.to_dict() == {"src": "2001:db8:10::11", "dst": "2001:db8:5100::25", "proto": "tcp", "dport": 25, "user": 107, "group": "mail"}
    assert Flow.from_mapping(flow.to_dict()) == flow
    assert Flow.from_mapping(flow) is flow


def test_defaults_are_left_out_of_the_plain_data():
    assert Flow.from_mapping({**FLOW, "direction": "outbound", "midstream": False}).to_dict() == {**FLOW, "proto": "tcp"}
    icmp = Flow.from_mapping({"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "icmp", "dport": 7})
    assert icmp.to_dict() == {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "icmp"}  # a port is no part of an echo request


@pytest.mark.parametrize(("flow", "path", "value"), [
    ("tcp/25", "flow", "tcp/25"),
    ({**FLOW, "colour": "red"}, "flow.colour", "red"),
    ({"dst": "203.0.113.25", "dport": 25}, "flow.src", None),
    ({**FLOW, "src": "198.51.100.0/24"}, "flow.src", "198.51.100.0/24"),
    ({**FLOW, "dst": "2001:db8::1"}, "flow.dst", "2001:db8::1"),
    ({**FLOW, "proto": "sctp"}, "flow.proto", "sctp"),
    ({**FLOW, "proto": 256}, "flow.proto", 256),
    ({**FLOW, "proto": True}, "flow.proto", True),
    ({**FLOW, "dport": 0}, "flow.dport", 0),
    ({**FLOW, "dport": "²5"}, "flow.dport", "²5"),
    ({**FLOW, "dport": "-25"}, "flow.dport", "-25"),
    ({**FLOW, "dport": " 25"}, "flow.dport", " 25"),
    ({"src": "198.51.100.11", "dst": "203.0.113.25"}, "flow.dport", None),
    ({**FLOW, "direction": "sideways"}, "flow.direction", "sideways"),
    ({**FLOW, "ct_state": "fresh"}, "flow.ct_state", "fresh"),
    ({**FLOW, "direction": "inbound", "ct_state": "new"}, "flow.ct_state", "new"),
    ({**FLOW, "direction": "inbound", "sport": 70000}, "flow.sport", 70000),
    ({**FLOW, "sport": 40000}, "flow.sport", 40000),
    ({**FLOW, "midstream": "yes", "sport": 22}, "flow.midstream", "yes"),
    ({**FLOW, "midstream": True}, "flow.sport", None),
    ({**FLOW, "midstream": True, "proto": "udp", "sport": 22}, "flow.midstream", True),
    ({**FLOW, "iif": "eth 0"}, "flow.iif", "eth 0"),
    ({**FLOW, "oif": 0}, "flow.oif", 0),
    ({**FLOW, "user": "post fix"}, "flow.user", "post fix"),
    ({**FLOW, "user": "٣٣"}, "flow.user", "٣٣"),
    ({**FLOW, "user": True}, "flow.user", True),
    ({**FLOW, "group": 4294967295}, "flow.group", 4294967295),
    ({**FLOW, "icmp_type": ""}, "flow.icmp_type", ""),
    ({**FLOW, "hoplimit": "x"}, "flow.hoplimit", "x"),
    ({**FLOW, "hoplimit": 256}, "flow.hoplimit", 256),
], ids=lambda case: case if isinstance(case, str) else None)
def test_a_bad_field_is_refused_by_its_name_and_value(flow, path, value):
    with pytest.raises(PolicyError) as err:
        Flow.from_mapping(flow)
    assert (err.value.path, err.value.value) == (path, value)


def test_port_is_dport_only_where_a_person_types_the_flow():
    typed = {"src": "198.51.100.11", "dst": "203.0.113.25", "port": "25"}
    with pytest.raises(PolicyError) as err:
        Flow.from_mapping(typed)
    assert err.value.path == "flow.port" and "is not a known flow key" in str(err.value)
    assert Flow.from_mapping(typed, aliases=True) == Flow.from_mapping({**FLOW, "dport": 25})
    with pytest.raises(PolicyError) as err:
        Flow.from_mapping({**typed, "port": "https"}, "egress_verify_flows[2]", aliases=True)
    assert (err.value.path, err.value.value) == ("egress_verify_flows[2].port", "https")  # named as it was written
    with pytest.raises(PolicyError) as err:
        Flow.from_mapping({**typed, "dport": 25}, aliases=True)
    assert err.value.path == "flow.dport" and "is another name for port" in str(err.value)


def test_a_flow_without_a_path_names_the_bare_field():
    with pytest.raises(PolicyError) as err:
        Flow.from_mapping({"src": "198.51.100.11", "dst": "203.0.113.25", "port": 70000}, path="", aliases=True)
    assert str(err.value) == "port: 70000 is not a port (1-65535)"


def test_but_checks_the_changed_flow_again():
    flow = Flow.from_mapping(FLOW)
    assert flow.but(direction="inbound").direction == "inbound"
    with pytest.raises(PolicyError, match="flow.oif"):
        flow.but(oif="not an interface")
