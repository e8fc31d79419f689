"""The edge policy as stateless device ACLs, held against the oracle after an offline round
trip through each vendor's own resource module: state rendered, then state parsed, then
first-match evaluation of what parsed returned, per platform and address family. Each
module caveat met on the way has a test that shows it and shows how it is handled."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import ipaddress
import itertools
import json
import os
import random
import subprocess
import tempfile
import xml.dom.minidom

import pytest
from netns import TOP
from sample import EDGE, compile_for, edge_ir

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate as oracle
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import NAMES, AddressGroup, aces, bindings
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.acl_check import disagreements, sample_flows
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import device_config, read_parsed
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import ios_device_form, ios_object_group_lines, ios_render
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.junos import junos_inet6_form, junos_load, junos_running_config

# One worker runs this module's tests (make unit: --dist loadgroup): each platform's round trip is
# run once, and no worker waits for another to finish one (roundtrip below).
pytestmark = pytest.mark.xdist_group("test_render_acl")

NETWORK = os.path.join(TOP, "tests", "unit", "network")
PLATFORMS = ("ios", "eos", "junos")
CASES = {
    "default": {},
    "routes": {"routes": True},
    "no-limit": {"conn_limit": False},
}


def ir_for(name, **overrides):
    return edge_ir(edge={**EDGE, **CASES[name]}, **overrides)


def roundtrip(platform: str, render=None, parse=None, bind=None, parse_bind=None) -> dict:
    """One run of roundtrip.yml. Under pytest-xdist the workers of one test run share the
    result of a run on exactly the same input (the first worker to ask runs the playbook, the
    others wait for it and read what it wrote), instead of each running it again; nothing is
    kept from one test run to the next."""
    cases = {"render": render or {}, "parse": parse or {}, "bind": bind or {}, "parse_bind": parse_bind or {}}
    run_dir = os.environ.get("WARDEN_EGRESS_SHARED_TMP")  # tests/unit/conftest.py, under pytest-xdist
    if not run_dir:
        return _roundtrip(platform, cases)
    shared = os.path.join(run_dir, "roundtrip")
    os.makedirs(shared, exist_ok=True)
    key = hashlib.sha256(json.dumps([platform, cases], sort_keys=True).encode()).hexdigest()
    path = os.path.join(shared, f"{key}.json")
    with open(path + ".lock", "a", encoding="utf-8") as lock, contextlib.ExitStack() as held:
        fcntl.flock(lock, fcntl.LOCK_EX)
        held.callback(fcntl.flock, lock, fcntl.LOCK_UN)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        out = _roundtrip(platform, cases)
        with open(path + ".part", "w", encoding="utf-8") as handle:
            json.dump(out, handle)
        os.replace(path + ".part", path)
        return out


def _roundtrip(platform: str, cases: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cases_file, out_file = os.path.join(tmp, "cases.json"), os.path.join(tmp, "out.json")
        with open(cases_file, "w", encoding="utf-8") as handle:
            json.dump(cases, handle)
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_DEPRECATION_WARNINGS": "false",
               "ANSIBLE_PYTHON_INTERPRETER": "auto_silent"}
        result = subprocess.run(
            ["ansible-playbook", "-i", os.path.join(NETWORK, "inventory.yml"), os.path.join(NETWORK, "roundtrip.yml"),
             "--limit", platform, "-e", f"cases_file={cases_file}", "-e", f"out_file={out_file}"],
            capture_output=True, text=True, env=env, check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:]
        with open(out_file, encoding="utf-8") as handle:
            return json.load(handle)


def device_text(platform: str, rendered) -> str:
    """The module's rendering in the form the device shows it, which is what parsed reads."""
    if platform == "ios":
        return "\n".join(ios_device_form(rendered))
    if platform == "eos":
        return "\n".join(rendered)
    return junos_running_config(rendered)


@functools.cache
def trip_for(platform: str) -> dict:
    """For one platform: each case rendered, its device form parsed back, plus the forms the
    caveat tests need."""
    configs = {name: device_config(ir_for(name), platform) for name in CASES}
    groups = {name: ios_object_group_lines(ios_render(ir_for(name))["object_groups"]) for name in CASES} if platform == "ios" else {}
    extra = {}
    if platform == "junos":
        # The module's range form, beside the 'LOW-HIGH' form the renderer uses.
        ranged = json.loads(json.dumps(configs["default"]))
        for afi in ranged:
            for ace in afi["acls"][0]["aces"]:
                eq = ((ace.get("destination") or {}).get("port_protocol") or {}).get("eq", "")
                if "-" in eq:
                    low, high = eq.split("-")
                    ace["destination"]["port_protocol"] = {"range": {"start": int(low), "end": int(high)}}
        extra["range-form"] = ranged
    if platform == "ios":
        extra["flat"] = device_config(ir_for("default"), "ios", object_groups=False)
        extra["v6-remark"] = [{"afi": "ipv6", "acls": [{"name": "X", "aces": [
            {"sequence": 10, "remarks": ["origin"], "grant": "deny", "protocol": "ipv6", "source": {"any": True}, "destination": {"any": True}}]}]}]
    if platform == "eos":
        extra["log-false"] = [{"afi": "ipv4", "acls": [{"name": "X", "aces": [
            {"sequence": 10, "grant": "permit", "protocol": "tcp", "source": {"any": True}, "destination": {"any": True}, "log": False}]}]}]
    first = roundtrip(platform, render={**configs, **extra}, bind={"default": bindings(ir_for("default"))})
    rendered = first["rendered"]
    texts = {name: device_text(platform, rendered[name]) for name in CASES}
    if platform == "ios":
        texts["raw-default"] = "\n".join(rendered["default"])
        texts["flat"] = device_text(platform, rendered["flat"])
    if platform == "junos":
        texts["raw-default"] = rendered["default"]
        texts["inet6-device-form"] = junos_running_config(junos_inet6_form(rendered["default"]))
    parsed = roundtrip(platform, parse=texts)["parsed"]
    return {"platform": platform, "configs": configs, "rendered": rendered, "parsed": parsed, "bound": first["bound"]["default"], "groups": groups}


def read(trip: dict, name: str) -> dict:
    """The case's parsed ACLs as entries; on IOS, the object groups its rendering named."""
    groups = trip["groups"].get(name.replace("raw-", ""))
    return read_parsed(trip["parsed"][name], trip["platform"], groups)


@pytest.fixture(params=PLATFORMS)
def trip(request):
    return trip_for(request.param)


# ----------------------------------------------------------------------------- what is rendered

def test_sequence_numbers_are_spaced_and_every_entry_names_its_origin():
    config = device_config(edge_ir(), "ios")
    for afi in config:
        sequences = [ace["sequence"] for ace in afi["acls"][0]["aces"]]
        assert sequences == list(range(10, 10 * len(sequences) + 1, 10))
    v4 = config[0]["acls"][0]["aces"]
    entries = aces(edge_ir(), grouped=True)["ipv4"]
    assert v4[0]["remarks"] and all(("remarks" in ace) == (e["remark"] != p["remark"]) for ace, e, p in zip(v4[1:], entries[1:], entries))
    last = config[0]["acls"][0]["aces"][-1]
    assert last["grant"] == "deny" and last["log"] == {"set": True} and last["source"] == {"any": True}


def test_eos_remarks_head_each_block_and_leave_room_around_every_entry():
    for afi in device_config(edge_ir(), "eos"):
        entries = afi["acls"][0]["aces"]
        rules = [ace for ace in entries if "grant" in ace]
        assert [ace["sequence"] for ace in rules] == list(range(10, 10 * len(rules) + 1, 10))
        remarks = [ace for ace in entries if "remark" in ace]
        assert remarks and all(ace["sequence"] % 10 == 5 for ace in remarks)
        assert len({ace["remark"] for ace in remarks}) == len(remarks) or len(remarks) <= len(rules)
        assert rules[-1]["grant"] == "deny" and rules[-1]["log"] is True


def test_junos_terms_are_named_by_position_and_origin():
    for afi in device_config(edge_ir(), "junos"):
        names = [ace["name"] for ace in afi["acls"][0]["aces"]]
        assert len(set(names)) == len(names) and all(len(n) <= 60 for n in names)
        assert names[-1].endswith("default-deny")
        assert any("role-mail-server" in n for n in names)


def test_permits_only_ever_come_from_trusted_sources():
    trusted = [ipaddress.ip_network(p) for p in EDGE["inside"][0]["prefixes"]]
    for entries in aces(edge_ir()).values():
        for entry in entries:
            if entry["action"] == "permit":
                assert entry["src"] is not None and any(entry["src"].subnet_of(t) for t in trusted if t.version == entry["src"].version)


def test_no_permit_goes_to_an_inside_destination_and_such_flows_are_not_compared():
    inside = [ipaddress.ip_network(p) for p in EDGE["inside"][0]["prefixes"]]
    for entries in aces(edge_ir()).values():
        for entry in entries:
            if entry["action"] == "permit" and entry["dst"] is not None:
                assert not any(entry["dst"].subnet_of(net) for net in inside if net.version == entry["dst"].version), entry
    to_resolver = {"src": "198.51.100.14", "dst": "198.51.100.12", "proto": "udp", "dport": 53}
    assert oracle(edge_ir(), {**to_resolver, "iif": "eth0", "oif": "eth1"})["verdict"] == "accept"
    assert disagreements(edge_ir(), {}, [to_resolver]) == []
    destinations = {ipaddress.ip_address(f["dst"]) for f in sample_flows(edge_ir())}
    assert not any(address in net for address in destinations for net in inside if net.version == address.version)


def test_every_service_entry_keeps_its_port():
    for entries in aces(edge_ir()).values():
        for entry in entries:
            if entry["remark"].startswith(("role ", "exception ")):
                assert entry["ports"] is not None, entry


def test_audit_mode_lets_denied_traffic_out_and_logs_it():
    entries = aces(edge_ir(egress_mode="audit"))["ipv4"]
    assert all(e["action"] == "permit" for e in entries)
    assert entries[-1]["log"] and entries[-1]["remark"] == "audit: default deny"


def test_only_a_single_inside_edge_is_rendered():
    edge = {**EDGE, "inside": EDGE["inside"] + [{"interface": "eth2", "prefixes": ["198.51.100.128/26"]}]}
    with pytest.raises(ValueError, match="one inside and one outside interface"):
        aces(edge_ir(edge=edge, egress_trusted_prefixes=["198.51.100.0/24", "2001:db8:10::/120"]))


def test_bindings_put_both_acls_out_on_the_outside_interface(trip):
    text = trip["bound"] if isinstance(trip["bound"], str) else "\n".join(trip["bound"])
    expected = {
        "ios": ["interface eth1", "ip access-group WARDEN-EGRESS-V4 out", "ipv6 traffic-filter WARDEN-EGRESS-V6 out"],
        "eos": ["interface eth1", "ip access-group WARDEN-EGRESS-V4 out", "ipv6 access-group WARDEN-EGRESS-V6 out"],
        "junos": ["<nc:name>eth1</nc:name><nc:unit><nc:name>0</nc:name>", "<nc:inet><nc:filter><nc:output-list>WARDEN-EGRESS-V4</nc:output-list>",
                  "<nc:inet6><nc:filter><nc:output-list>WARDEN-EGRESS-V6</nc:output-list>"],
    }[trip["platform"]]
    for line in expected:
        assert line in text, text
    assert " in" not in text.replace("interface", "") and "<nc:input>" not in text


# ----------------------------------------------------------------------------- module caveats

def test_ios_renders_ipv6_entries_its_own_parser_loses():
    """cisco.ios: rendered IPv6 entries end in 'sequence N', and parsed returns that ACL with
    no entries; the device form (sequence first) keeps them all."""
    trip = trip_for("ios")
    rendered = trip["rendered"]
    v6_lines = rendered["default"][rendered["default"].index(f"ipv6 access-list {NAMES['ipv6']}") + 1:]
    assert v6_lines and all(" sequence " in line for line in v6_lines)
    assert read(trip, "raw-default")[("ipv6", NAMES["ipv6"])] == []
    assert len(read(trip, "default")[("ipv6", NAMES["ipv6"])]) == len(aces(edge_ir(), grouped=True)["ipv6"])
    assert len(read(trip, "flat")[("ipv6", NAMES["ipv6"])]) == len(aces(edge_ir())["ipv6"])


def test_ios_ipv6_remarks_would_be_numbered_as_ipv4_ones_so_none_are_rendered():
    """cisco.ios writes an IPv6 remark as '10 remark ...' (IPv4 numbering; IPv6 ACL mode
    numbers entries with 'sequence'): the renderer gives IPv6 entries no remarks."""
    trip = trip_for("ios")
    assert trip["rendered"]["v6-remark"][1] == "10 remark origin"
    v6 = next(afi for afi in trip["configs"]["default"] if afi["afi"] == "ipv6")
    assert not any("remarks" in ace for ace in v6["acls"][0]["aces"])
    assert not any("remark" in line for line in trip["rendered"]["default"][trip["rendered"]["default"].index(f"ipv6 access-list {NAMES['ipv6']}"):])


def test_eos_writes_log_whenever_the_key_is_present():
    """arista.eos: 'log: false' still renders 'log'; the renderer only ever sets it true."""
    trip = trip_for("eos")
    assert trip["rendered"]["log-false"][-1].endswith(" log")
    for afi in trip["configs"]["default"]:
        assert all(ace.get("log", True) is True for ace in afi["acls"][0]["aces"])


def test_eos_protocol_4_is_refused():
    ir = edge_ir()
    rule = next(r for r in ir["rules"] if r.get("l4proto") is not None)
    rule["l4proto"] = 4
    with pytest.raises(ValueError, match="IP protocol 4"):
        device_config(ir, "eos")


def test_junos_parsed_reads_only_the_device_form():
    """junipernetworks.junos: parsed reads a device's <configuration> with each address as a
    <name>; given the module's own rendered XML it returns nothing."""
    trip = trip_for("junos")
    assert trip["parsed"]["raw-default"] == []
    assert read_parsed(trip["parsed"]["default"], "junos")[("ipv4", NAMES["ipv4"])]


def test_junos_range_form_renders_an_empty_port_match():
    """junipernetworks.junos: port_protocol.range renders <destination-port/> (any port); the
    renderer writes ranges as eq 'LOW-HIGH', which renders and parses back as the range."""
    trip = trip_for("junos")
    assert "<nc:destination-port/>" in trip["rendered"]["range-form"]
    assert "<nc:destination-port/>" not in trip["rendered"]["default"]
    ranges = [e["ports"] for e in read_parsed(trip["parsed"]["default"], "junos")[("ipv4", NAMES["ipv4"])] if e["ports"] and e["ports"][0] != e["ports"][1]]
    assert ranges, "the example site has port ranges (traceroute)"


def test_junos_inet6_filters_use_next_header():
    """junipernetworks.junos writes 'protocol' in inet6 filters, which Junos refuses there;
    the form the role loads has 'next-header' in inet6 and leaves inet alone. parsed does not
    read next-header back, so the oracle check reads the module's own form."""
    trip = trip_for("junos")
    rendered = trip["rendered"]["default"]
    fixed = junos_inet6_form(rendered)
    inet6 = fixed[fixed.index("<nc:inet6>"):fixed.index("</nc:inet6>")]
    inet = fixed[fixed.index("<nc:inet>"):fixed.index("</nc:inet>")]
    assert "<nc:protocol>" not in inet6 and inet6.count("<nc:next-header>") == rendered[rendered.index("<nc:inet6>"):].count("<nc:protocol>") > 0
    assert inet == rendered[rendered.index("<nc:inet>"):rendered.index("</nc:inet>")]
    lost = read_parsed(trip["parsed"]["inet6-device-form"], "junos")[("ipv6", NAMES["ipv6"])]
    assert lost and all(entry["proto"] is None for entry in lost)
    load = junos_load(rendered)
    assert load.startswith('<configuration><firewall><family><inet><filter replace="replace"><name>WARDEN-EGRESS-V4</name>')
    loaded_inet6 = load[load.index("<inet6>"):load.index("</inet6>")]
    assert loaded_inet6.startswith('<inet6><filter replace="replace"><name>WARDEN-EGRESS-V6</name>')
    assert "<protocol>" not in loaded_inet6 and loaded_inet6.count("<next-header>") == inet6.count("<nc:next-header>") and "nc:" not in load
    assert load[load.index("<inet>"):load.index("</inet>")] == inet.replace("nc:", "").replace("<filter>", '<filter replace="replace">', 1)
    xml.dom.minidom.parseString(load)


def test_junos_has_no_replies_term_and_no_log():
    """junipernetworks.junos has no TCP flag match and no log action: the replies entry is
    left out (not widened to all TCP) and the final term only discards."""
    config = device_config(edge_ir(), "junos")
    for afi in config:
        names = [ace["name"] for ace in afi["acls"][0]["aces"]]
        assert not any("replies" in n for n in names)
    assert len(config[0]["acls"][0]["aces"]) == len(aces(edge_ir(), grouped=True)["ipv4"]) - 1


# ----------------------------------------------------------------------------- against the oracle

DESTINATIONS = ["203.0.113.25", "203.0.113.53", "203.0.113.80", "203.0.113.200", "198.51.100.12", "10.1.2.3", "224.0.0.5",
                "2001:db8:5100::25", "2001:db8:5100::53", "2001:db8:5100::80", "2001:db8:10::12", "fd00::1", "ff02::5"]
SOURCES = ["198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.14", "198.51.100.15", "198.51.100.70", "198.51.100.200",
           "2001:db8:10::11", "2001:db8:10::13", "2001:db8:10::44", "2001:db8:10::1:200"]
PORTS = [22, 25, 53, 80, 179, 443, 520, 521, 3128, 6667, 31337, 33434, 33534]


def flows(count, seed):
    rng = random.Random(seed)
    every = []
    for src, dst, proto in itertools.product(SOURCES, DESTINATIONS, ["tcp", "udp", "icmp", 89]):
        if ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version:
            continue
        for port in PORTS if proto in ("tcp", "udp") else [None]:
            every.append({"src": src, "dst": dst, "proto": proto, "dport": port})
    return rng.sample(every, count)


def allowed(ir, sample):
    return [f for f in sample if oracle(ir, {**{k: v for k, v in f.items() if v is not None}, "iif": "eth0", "oif": "eth1"})["verdict"] == "accept"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_parsed_acl_agrees_with_the_oracle(trip, name):
    """What the vendor module parses back from its own rendering decides each new flow as
    the edge policy does: hand-picked flows and flows drawn from the policy, both families,
    TCP, UDP, ICMP and OSPF."""
    acls = read(trip, name)
    ir = ir_for(name)
    assert set(acls) == {("ipv4", NAMES["ipv4"]), ("ipv6", NAMES["ipv6"])}
    sample = flows(1500, seed=5)
    assert not disagreements(ir, acls, sample)
    assert not disagreements(ir, acls, sample_flows(ir, 2000))
    permitted = allowed(ir, sample)
    assert len([f for f in permitted if ":" in f["src"]]) >= 10 and len([f for f in permitted if ":" not in f["src"]]) >= 10


def members(match) -> list:
    """The prefixes an entry's address match holds (one, or an address group's)."""
    return list(match) if isinstance(match, AddressGroup) else [match]


def test_the_comparison_can_fail(trip):
    acls = read(trip, "default")
    cut = ipaddress.ip_network("203.0.113.128/25")
    acls[("ipv4", NAMES["ipv4"])] = [e for e in acls[("ipv4", NAMES["ipv4"])]
                                     if not (e["dst"] is not None and any(net.overlaps(cut) for net in members(e["dst"])))]
    assert disagreements(edge_ir(), acls, flows(1500, seed=5))
    assert disagreements(edge_ir(), {}, sample_flows(edge_ir()))


def test_the_policy_sample_covers_both_verdicts_and_families():
    ir = edge_ir()
    sample = sample_flows(ir, 3000)
    verdicts = {(":" in f["src"], oracle(ir, {**{k: v for k, v in f.items() if v is not None}, "iif": "eth0", "oif": "eth1"})["verdict"])
                for f in sample}
    assert verdicts == {(False, "accept"), (False, "drop"), (True, "accept"), (True, "drop")}
    assert sample_flows(edge_ir(), 50) == sample_flows(edge_ir(), 50)


# ----------------------------------------------------------------------------- inventory checks

def test_device_interface_names_are_accepted_and_bad_ones_named():
    edge = {**EDGE, "inside": [{"interface": "GigabitEthernet0/0/0", "prefixes": EDGE["inside"][0]["prefixes"]}], "outside": "GigabitEthernet0/0/1"}
    ir = edge_ir(edge=edge, egress_platform="ios")
    assert bindings(ir)[0]["name"] == "GigabitEthernet0/0/1"
    with pytest.raises(PolicyError, match=r"egress_edge.outside.*'Gi 0/1'.*egress_platform ios"):
        edge_ir(edge={**edge, "outside": "Gi 0/1"}, egress_platform="ios")
    with pytest.raises(PolicyError, match=r"egress_edge.outside.*GigabitEthernet0/0/1"):
        edge_ir(edge=edge)  # the same name is no Linux interface


def test_a_device_edge_has_one_inside_and_one_outside_interface():
    two_inside = {**EDGE, "inside": EDGE["inside"] + [{"interface": "eth2", "prefixes": ["198.51.100.128/26"]}]}
    with pytest.raises(PolicyError, match=r"egress_edge.inside.*\['eth0', 'eth2'\].*must be one interface for egress_platform eos"):
        edge_ir(edge=two_inside, egress_platform="eos", egress_trusted_prefixes=["198.51.100.0/24", "2001:db8:10::/120"])
    with pytest.raises(PolicyError, match=r"egress_edge.outside.*must be one interface for egress_platform junos"):
        edge_ir(edge={**EDGE, "outside": ["eth1", "eth2"]}, egress_platform="junos")


def test_a_device_warns_that_the_connection_limit_is_not_enforced():
    assert any("conn_limit is not enforced by a junos ACL" in w for w in edge_ir(egress_platform="junos")["warnings"])
    assert not any("conn_limit" in w for w in ir_for("no-limit", egress_platform="junos")["warnings"])


def test_a_device_has_no_host_policy():
    with pytest.raises(PolicyError, match=r"egress_role.*'mail_server'.*egress_platform ios enforces only a site edge"):
        compile_for("mail1", egress_platform="ios")
