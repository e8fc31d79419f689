"""Aerleon's side of benchmarks/site_scale.py: the same edge policy written as an Aerleon
policy, and Aerleon's generator timed on it.

The policy is written from warden's edge IR, so both tools get the same sets and the same
rules in the same order: each IR set becomes an Aerleon network, each port list a service,
each rule a term (accept, deny; an alert rule is a logged deny) and the anti-spoofing rule a
term from any except the trusted prefixes, which is how Aerleon writes it. What Aerleon's
filter targets cannot say is left out, and that only makes Aerleon's job smaller: connection
state (established, invalid, the per-source new-connection limit) and interface matches.

Nothing here imports Aerleon until ``generate`` runs, and site_scale.py runs this only in the
benchmark's own virtual environment (benchmarks/.venv), never as part of the collection.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

AERLEON_VERSION = "1.18.0"

# Aerleon generator and filter headers for the equivalent of each warden platform: both
# address families, forward hook (or the router's ACL), default deny. iptables (speedway)
# takes one family per filter, so it gets two filters with the same terms.
TARGETS: dict[str, list[dict]] = {
    "nftables": [{"nftables": "mixed forward"}],
    "iptables": [{"speedway": "FORWARD DROP inet"}, {"speedway": "FORWARD DROP inet6"}],
    "pf": [{"packetfilter": "warden_egress mixed"}],
    "ios": [{"cisco": "warden-egress mixed"}],
}

ACTIONS = {"accept": "accept", "deny": "deny", "alert": "deny"}
PROTOCOLS = {"tcp", "udp"}
# Protocol numbers Aerleon's generators know by name (EIGRP, 88, is not among them).
PROTOCOL_NAMES = {47: "gre", 50: "esp", 51: "ah", 89: "ospf", 103: "pim", 112: "vrrp", 132: "sctp"}
FAMILIES = {"ipv4": "inet", "ipv6": "inet6"}
SLUG = re.compile(r"[^a-z0-9]+")


def _net_name(set_name: str) -> str:
    return SLUG.sub("_", set_name.lower()).upper()


def _service(proto: str, dports: list) -> tuple[str, list]:
    name = f"{proto.upper()}_" + "_".join(f"{low}" if low == high else f"{low}-{high}" for low, high in dports).replace("-", "to")
    return name, [{"port": str(low) if low == high else f"{low}-{high}", "protocol": proto} for low, high in dports]


def translate(ir: Mapping, platform: str) -> tuple[dict, dict, int]:
    """``(policy, definitions, skipped)``: the Aerleon policy (Generate API form) and the
    network/service definitions for ``ir`` on ``platform``, and how many IR rules had no
    Aerleon equivalent (state and interface-only rules)."""
    networks = {"ANY": {"values": [{"address": "0.0.0.0/0"}, {"address": "::/0"}]}}
    for name, members in ir["sets"].items():
        values = [{"address": prefix} for family in ("ipv4", "ipv6") for prefix in members.get(family, [])]
        networks[_net_name(name)] = {"values": values or [{"address": "192.0.2.255/32"}]}
    services: dict[str, list] = {}
    terms, skipped = [], 0
    for index, rule in enumerate(ir["rules"]):
        action = ACTIONS.get(rule["action"])
        matches_address = rule.get("saddr_in") or rule.get("saddr_not_in") or rule.get("daddr_in")
        matches_protocol = rule.get("proto") or rule.get("l4proto") is not None
        if action is None or rule.get("ct_state") or rule.get("meter") or not (matches_address or matches_protocol):
            skipped += 1
            continue
        if (rule.get("proto") and rule["proto"] not in PROTOCOLS) or (rule.get("l4proto") is not None and rule["l4proto"] not in PROTOCOL_NAMES):
            skipped += 1  # ICMP types (an edge IR has none) and protocols Aerleon cannot name
            continue
        origin = SLUG.sub("-", str(rule.get("origin", "rule")).lower()).strip("-")
        term: dict = {"name": f"t{index:04d}-{origin}"[:24].rstrip("-"), "action": action}
        if rule.get("comment"):
            term["comment"] = rule["comment"]
        if rule["family"] in FAMILIES:
            term["restrict-address-family"] = FAMILIES[rule["family"]]
        if rule.get("saddr_in"):
            term["source-address"] = _net_name(rule["saddr_in"])
        if rule.get("saddr_not_in"):
            term["source-address"] = "ANY"
            term["source-exclude"] = _net_name(rule["saddr_not_in"])
        if rule.get("daddr_in"):
            term["destination-address"] = _net_name(rule["daddr_in"])
        if rule.get("proto"):
            term["protocol"] = rule["proto"]
            if rule.get("dports"):
                name, entries = _service(rule["proto"], rule["dports"])
                services[name] = entries
                term["destination-port"] = name
        elif rule.get("l4proto") is not None:
            term["protocol"] = PROTOCOL_NAMES[rule["l4proto"]]
        if rule["action"] == "alert" or (action == "deny" and ir["log"]["denied"]):
            term["logging"] = "true"
        terms.append(term)
    terms.append({"name": "default-deny", "action": "deny", "logging": "true" if ir["log"]["denied"] else "false"})
    filters = [{"header": {"targets": target, "comment": f"warden.egress benchmark: edge of {ir['target']}"}, "terms": terms}
               for target in TARGETS[platform]]
    return {"filename": f"edge_{platform}", "filters": filters}, {"networks": networks, "services": services}, skipped


def generate(policy: dict, definitions: dict) -> tuple[float, dict]:
    """Run Aerleon's generator (definitions parsed, policy built, output rendered); returns
    ``(seconds, {file name: text})``."""
    from absl import logging as absl_logging
    from aerleon import api
    from aerleon.lib import naming

    absl_logging.set_verbosity(absl_logging.ERROR)
    started = time.perf_counter()
    names = naming.Naming()
    names.ParseDefinitionsObject(definitions, "warden_benchmark")
    output = api.Generate([policy], names)
    return time.perf_counter() - started, dict(output or {})


def line_count(text: str) -> int:
    """Lines that say something: neither blank nor only a comment marker."""
    return sum(1 for line in text.splitlines() if line.strip() not in ("", "!", "#"))
