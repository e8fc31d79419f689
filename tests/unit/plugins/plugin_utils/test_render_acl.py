"""Edge policy as a stateless Cisco IOS ACL, held against the oracle after an offline round
trip through the vendor's own module: cisco.ios.ios_acls state rendered, then state parsed,
then first-match evaluation of what parsed returned, IPv4 and IPv6."""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import random
import subprocess
import tempfile

import pytest
from netns import TOP
from sample import EDGE, edge_ir

from ansible_collections.warden.egress.plugins.plugin_utils.evaluate import evaluate as oracle
from ansible_collections.warden.egress.plugins.plugin_utils.render_acl import NAMES, aces, decide, ios_config, ios_device_form, read_ios

NETWORK = os.path.join(TOP, "tests", "unit", "network")
CASES = {
    "default": {},
    "routes": {"routes": True},
    "no-limit": {"conn_limit": False},
}


def ir_for(name):
    return edge_ir(edge={**EDGE, **CASES[name]})


def roundtrip(cases: dict, key: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cases_file, out_file = os.path.join(tmp, "cases.json"), os.path.join(tmp, "out.json")
        with open(cases_file, "w", encoding="utf-8") as handle:
            json.dump({"render": {}, "parse": {}, **{key: cases}}, handle)
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_DEPRECATION_WARNINGS": "false",
               "ANSIBLE_PYTHON_INTERPRETER": "auto_silent"}
        result = subprocess.run(
            ["ansible-playbook", "-i", os.path.join(NETWORK, "inventory.yml"), os.path.join(NETWORK, "ios_roundtrip.yml"),
             "-e", f"cases_file={cases_file}", "-e", f"out_file={out_file}"],
            capture_output=True, text=True, env=env, check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:]
        with open(out_file, encoding="utf-8") as handle:
            return json.load(handle)


@pytest.fixture(scope="module")
def ios():
    rendered = roundtrip({name: ios_config(ir_for(name)) for name in CASES}, "render")["rendered"]
    texts = {name: ios_device_form(lines) for name, lines in rendered.items()}
    texts["raw-default"] = rendered["default"]
    parsed = roundtrip(texts, "parse")["parsed"]
    return rendered, parsed


def test_sequence_numbers_are_spaced_and_every_entry_names_its_origin():
    config = ios_config(edge_ir())
    for afi in config:
        sequences = [ace["sequence"] for ace in afi["acls"][0]["aces"]]
        assert sequences == list(range(10, 10 * len(sequences) + 1, 10))
    assert all(ace["remarks"] for ace in config[0]["acls"][0]["aces"])
    last = config[0]["acls"][0]["aces"][-1]
    assert last["grant"] == "deny" and last["log"] == {"set": True} and last["source"] == {"any": True}


def test_permits_only_ever_come_from_trusted_sources():
    trusted = [ipaddress.ip_network(p) for p in EDGE["inside"][0]["prefixes"]]
    for entries in aces(edge_ir()).values():
        for entry in entries:
            if entry["action"] == "permit":
                assert entry["src"] is not None and any(entry["src"].subnet_of(t) for t in trusted if t.version == entry["src"].version)


def test_every_service_entry_keeps_its_port():
    for entries in aces(edge_ir()).values():
        for entry in entries:
            if entry["remark"].startswith(("role ", "exception ")):
                assert entry["ports"] is not None, entry


def test_only_a_single_inside_edge_is_rendered():
    edge = {**EDGE, "inside": EDGE["inside"] + [{"interface": "eth2", "prefixes": ["198.51.100.128/26"]}]}
    with pytest.raises(ValueError, match="one inside and one outside interface"):
        aces(edge_ir(edge=edge, egress_trusted_prefixes=["198.51.100.0/24", "2001:db8:10::/120"]))


def test_the_module_renders_ipv6_entries_its_own_parser_loses(ios):
    """The known cisco.ios caveat, met and handled: rendered IPv6 entries end in 'sequence N',
    and parsed returns that ACL with no entries; the device form keeps them all."""
    rendered, parsed = ios
    v6_lines = rendered["default"][rendered["default"].index(f"ipv6 access-list {NAMES['ipv6']}") + 1:]
    assert v6_lines and all(" sequence " in line for line in v6_lines)
    raw = read_ios(parsed["raw-default"])
    assert raw[("ipv6", NAMES["ipv6"])] == []
    fixed = read_ios(parsed["default"])
    assert len(fixed[("ipv6", NAMES["ipv6"])]) == len(aces(edge_ir())["ipv6"])
    assert all(entry["log"] for entry in fixed[("ipv6", NAMES["ipv6"])] if entry["action"] == "deny")


DESTINATIONS = ["203.0.113.25", "203.0.113.53", "203.0.113.80", "203.0.113.200", "198.51.100.12", "10.1.2.3", "224.0.0.5",
                "2001:db8:5100::25", "2001:db8:5100::53", "2001:db8:5100::80", "2001:db8:10::12", "fd00::1", "ff02::5"]
SOURCES = ["198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.14", "198.51.100.15", "198.51.100.70", "198.51.100.200",
           "2001:db8:10::11", "2001:db8:10::13", "2001:db8:10::44", "2001:db8:10::1:200"]
PORTS = [22, 25, 53, 80, 179, 443, 520, 521, 3128, 6667, 31337]


def flows(count, seed):
    rng = random.Random(seed)
    every = []
    for src, dst, proto in itertools.product(SOURCES, DESTINATIONS, ["tcp", "udp", "icmp", 89]):
        if ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version:
            continue
        for port in PORTS if proto in ("tcp", "udp") else [None]:
            every.append({"src": src, "dst": dst, "proto": proto, "dport": port})
    return rng.sample(every, count)


def disagreements(ir, parsed_acls, sample):
    out = []
    for flow in sample:
        family = "ipv4" if ipaddress.ip_address(flow["src"]).version == 4 else "ipv6"
        packet = {key: value for key, value in flow.items() if value is not None}
        expected = oracle(ir, {**packet, "iif": "eth0", "oif": "eth1"})["verdict"]
        got = decide(parsed_acls[(family, NAMES[family])], flow)
        if (expected == "accept") != (got == "permit"):
            out.append((flow, got))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_parsed_acl_agrees_with_the_oracle(ios, name):
    """What the vendor module parses back from its own rendering decides each new flow as
    the edge policy does (both families; TCP, UDP, ICMP, OSPF)."""
    dummy, parsed = ios
    sample = flows(1500, seed=5)
    assert not disagreements(ir_for(name), read_ios(parsed[name]), sample)
    allowed = [f for f in sample
               if oracle(ir_for(name), {**{k: v for k, v in f.items() if v is not None}, "iif": "eth0", "oif": "eth1"})["verdict"] == "accept"]
    assert len([f for f in allowed if ":" in f["src"]]) >= 10 and len([f for f in allowed if ":" not in f["src"]]) >= 10


def test_the_comparison_can_fail(ios):
    dummy, parsed = ios
    acls = read_ios(parsed["default"])
    acls[("ipv4", NAMES["ipv4"])] = [e for e in acls[("ipv4", NAMES["ipv4"])]
                                     if not (e["dst"] is not None and e["dst"].overlaps(ipaddress.ip_network("203.0.113.128/25")))]
    assert disagreements(edge_ir(), acls, flows(1500, seed=5))
