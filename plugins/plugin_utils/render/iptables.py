# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy IR -> iptables/ip6tables-restore files and an ipset file (private to the collection).

The collection owns the filter-table chains named ``TABLE-*`` (``warden_egress-output``,
``-forward``, ``-deny``, ``-alert``, ``-ratelimit``) and the ipsets its rules reference. A
hook chain is entered by one jump at the top of the built-in chain (OUTPUT or FORWARD).
An allowed packet RETURNs to the built-in chain, so the administrator's own rules after the
jump still apply, just as a second nftables table would still see the packet; a denied one
is sent (goto) to a verdict chain that logs and drops it.

Set names carry a generation (a hash of the whole rendering): a new policy loads into new
sets, the rules switch to them in one iptables-restore transaction, and the old sets are
destroyed afterwards, so no packet ever meets new sets with old rules. The halves of a set
that holds DNS names (render.dns) are the exception: the local resolver fills them, so they
keep one name (``wd-<set>-<half>.<4|6>``) and their members across loads; the ipset file only
creates them, always with the same definition.

The files returned are in boot form: loaded with ``ipset -exist restore`` and then
``iptables-restore --noflush`` on an empty table, they create the chains and insert the
jumps. The apply module turns them into a transaction against what is already loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.catalogue import ICMP_TYPES
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import RATE_SECONDS, TABLE_RE
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import FAMILIES
from ansible_collections.warden.egress.plugins.plugin_utils.model.spans import network
from ansible_collections.warden.egress.plugins.plugin_utils.render.common import (
    CAPABLE,
    LINUX_IFNAME,
    LOG_BURST,
    VERDICT_CHAINS,
    alert_burst,
    alert_class,
    alert_timeout,
    check_rules,
    clip,
    describe,
    merge_sets,
    owners,
    policies,
    quote,
)
from ansible_collections.warden.egress.plugins.plugin_utils.render.audit import (
    AUDIT_ENTRIES,
    AUDIT_ONCE,
    AUDIT_PREFIX_EXTRA,
    AUDIT_TAGS,
    audit_once,
    audit_prefix,
    audit_tag,
)
from ansible_collections.warden.egress.plugins.plugin_utils.render.dns import HALVES, resolver_files

HOOKS = {"output": "OUTPUT", "forward": "FORWARD"}
SUFFIX = {"ipv4": "4", "ipv6": "6"}
IPSET_FAMILY = {"ipv4": "inet", "ipv6": "inet6"}
ANY_NET = {"ipv4": "0.0.0.0/0", "ipv6": "::/0"}
GEN_PLACEHOLDER = "@GEN@"
GEN_LEN = 6
# Limits of the kernel's name fields.
CHAIN_MAX = 28
IPSET_MAX = 31
LOG_PREFIX_MAX = 29
HASHLIMIT_NAME_MAX = 15
MULTIPORT_MAX = 15
# What iptables cannot express, and what the kernel's limits leave to the inventory
# (``render.platforms`` checks them for the compile): the table name, with the longest
# chain suffix ('-ratelimit', '-audithost'); the log prefix, with the longest word
# (' ratelimit: '), or in audit mode with the longest tag (' audit[host]: '); a log rate the
# limit match takes; a per-source burst hashlimit holds (at most a day's worth of its rate).
CAPABILITIES = {**CAPABLE, "name": "iptables", "dns_names": True, "meter": "hashlimit", "interface": LINUX_IFNAME}
LIMITS = {
    "table": CHAIN_MAX - max(len(f"-{name}") for name in (*HOOKS, *VERDICT_CHAINS, *(f"audit{tag}" for tag in AUDIT_TAGS))),
    "log_prefix": LOG_PREFIX_MAX - max(len(f" {word}: ") for word in (*VERDICT_CHAINS, "audit")),
    "audit_log_prefix": LOG_PREFIX_MAX - AUDIT_PREFIX_EXTRA,
    "log_line": LOG_PREFIX_MAX,
    "rate_per_second": 10000,
    "burst_seconds": RATE_SECONDS["day"],
}
JUMP_COMMENT = "warden.egress"
IPT_PROTO = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "ipv6-icmp"}
# Audit mode: the flows already logged, in an ipset that forgets each one after AUDIT_ONCE.
# hash:ip,port,ip keys on source, protocol and port (ICMP: type and code; other protocols:
# the protocol alone) and destination. Its members change with traffic: the apply module
# compares only its definition (a set with a timeout is the kernel's to fill).
AUDIT_SET_TYPE = "hash:ip,port,ip"
AUDIT_SET_MATCH = "src,dst,dst"
# The halves of a name set: one definition whatever the policy (``ipset -exist create`` keeps
# a set it finds only when the definition is the same), room for what a resolver adds.
DNS_SET_PREFIX = "wd-"
DNS_SET_TYPE = "hash:ip"
DNS_SET_MAXELEM = 65536


def chain_names(table: str) -> dict:
    """The chains the collection owns for ``table``: hook and verdict chains."""
    if not TABLE_RE.fullmatch(table) or len(table) > LIMITS["table"]:
        raise ValueError(f"egress_table: {table!r} is too long for iptables chain names (at most {LIMITS['table']} characters)")
    return {name: f"{table}-{name}" for name in (*HOOKS, *VERDICT_CHAINS)}


def ipset_name(name: str, family: str, kind: str = "") -> str:
    """``w<generation>-<readable>.<4|6>``; long readable parts keep a hash so names stay
    unique, and the family ending is always kept."""
    readable, ending = f"{kind}{name}", f".{SUFFIX[family]}"
    room = IPSET_MAX - len("w") - GEN_LEN - 1 - len(ending)
    if len(readable) > room:
        digest = hashlib.sha256(readable.encode()).hexdigest()[:6]
        readable = f"{readable[:room - 7]}~{digest}"
    return f"w{GEN_PLACEHOLDER}-{readable}{ending}"


def dns_ipset(name: str, half: str, family: str) -> str:
    """The ipset of one half of a name set (render.dns), for one family:
    ``wd-<readable>-<half>.<4|6>``, a long readable part kept unique by a hash. No generation:
    the resolver's members are kept across loads."""
    ending = f"-{half}.{SUFFIX[family]}"
    room = IPSET_MAX - len(DNS_SET_PREFIX) - len(ending)
    readable = name
    if len(readable) > room:
        readable = f"{name[:room - 7]}~{hashlib.sha256(name.encode()).hexdigest()[:6]}"
    return f"{DNS_SET_PREFIX}{readable}{ending}"


def _ports(ranges: list) -> list[str]:
    """Port ranges as multiport lists of at most 15 ports (a range counts as two)."""
    chunks, current, used = [], [], 0
    for low, high in ranges:
        item, cost = (str(low), 1) if low == high else (f"{low}:{high}", 2)
        if used + cost > MULTIPORT_MAX:
            chunks.append(current)
            current, used = [], 0
        current.append(item)
        used += cost
    chunks.append(current)
    return chunks


def _families(rule: Mapping) -> list[str]:
    if rule["family"] != "any":
        return [rule["family"]]
    if rule["proto"] == "icmp":
        return ["ipv4"]
    if rule["proto"] == "icmpv6":
        return ["ipv6"]
    return list(FAMILIES)


class _Renderer:
    def __init__(self, irs: list) -> None:
        first = irs[0]
        self.table = first["table"]
        self.chains = chain_names(self.table)
        self.audit = first["mode"] == "audit"
        self.once = audit_once(irs)
        # In audit mode each policy's would-be denials go to its own audit chain (-audithost,
        # -auditedge), which logs each flow once; otherwise to the shared deny chain.
        self.deny = {ir["hook"]: f"{self.table}-audit{audit_tag(ir)}" if self.once else self.chains["deny"] for ir in irs}
        self.log = first["log"]
        self.sets = merge_sets(irs)
        # Address sets used by rules, and interface-list sets (hash:net,iface).
        self.ipsets: dict = {family: {} for family in FAMILIES}
        self.iface_sets: dict = {}
        # hashlimit names of the alert classes -> class
        self.meters: dict = {}

    def addr_set(self, name: str, family: str) -> str:
        if name not in self.sets:
            raise ValueError(f"rule references undefined set {name}")
        set_name = ipset_name(name, family)
        self.ipsets[family][set_name] = ("hash:net", self.sets[name][family])
        return set_name

    def destinations(self, name: str | None, family: str) -> list[list[str]]:
        """The destination matches of a rule, one rule each: its set, and for a set that holds
        DNS names the two halves the resolver fills (the listed addresses only if any)."""
        if name is None:
            return [[]]
        if not self.sets.get(name, {}).get("names"):
            return [[f"-m set --match-set {self.addr_set(name, family)} dst"]]
        out = [[f"-m set --match-set {self.addr_set(name, family)} dst"]] if self.sets[name][family] else []
        for half in HALVES:
            set_name = dns_ipset(name, half, family)
            self.ipsets[family][set_name] = (DNS_SET_TYPE, [], "", DNS_SET_MAXELEM)
            out.append([f"-m set --match-set {set_name} dst"])
        return out

    def iface_set(self, names: list, family: str) -> str:
        key = ",".join(sorted(names))
        label = self.iface_sets.setdefault(key, f"if{len(self.iface_sets)}")
        set_name = ipset_name(label, family)
        self.ipsets[family][set_name] = ("hash:net,iface", [f"{ANY_NET[family]},{name}" for name in sorted(names)])
        return set_name

    def _iface(self, flag: str, names: list | None, negate: bool, family: str, direction: str) -> list[str]:
        if names is None:
            return []
        for name in names:
            quote(name)
        if len(names) == 1:
            return [f"{'! ' if negate else ''}{flag} {names[0]}"]
        return [f"-m set {'! ' if negate else ''}--match-set {self.iface_set(names, family)} {direction}"]

    def rule_lines(self, ir: Mapping, rule: Mapping, chain: str) -> dict:
        out: dict = {family: [] for family in FAMILIES}
        for family in _families(rule):
            parts = []
            parts += self._iface("-i", rule.get("iif"), False, family, "src,src")
            parts += self._iface("-i", rule.get("iif_not"), True, family, "src,src")
            parts += self._iface("-o", rule["oif"], False, family, "dst,dst")
            parts += self._iface("-o", rule.get("oif_not"), True, family, "dst,dst")
            proto = rule["proto"]
            if proto is not None:
                parts.append(f"-p {IPT_PROTO[proto]}")
            if rule.get("l4proto") is not None:
                parts.append(f"-p {int(rule['l4proto'])}")
            variants = [[]]
            if proto in ("tcp", "udp") and rule["dports"] is not None:
                chunks = _ports(rule["dports"])
                if len(chunks) == 1 and len(chunks[0]) == 1 and ":" not in chunks[0][0]:
                    variants = [[f"-m {proto} --dport {chunks[0][0]}"]]
                else:
                    variants = [[f"-m multiport --dports {','.join(chunk)}"] for chunk in chunks]
            if proto in ("tcp", "udp") and rule.get("sports") is not None:
                chunks = _ports(rule["sports"])
                if len(chunks) == 1 and len(chunks[0]) == 1 and ":" not in chunks[0][0]:
                    variants = [[*v, f"-m {proto} --sport {chunks[0][0]}"] for v in variants]
                else:
                    variants = [[*v, f"-m multiport --sports {','.join(chunk)}"] for v in variants for chunk in chunks]
            if rule.get("midstream"):
                if proto != "tcp":
                    raise ValueError(f"refusing to render a midstream match for {proto!r}: it is a tcp packet without SYN")
                variants = [[*v, "-m tcp --tcp-flags SYN,ACK ACK"] for v in variants]
            if proto in ("icmp", "icmpv6") and rule["icmp_types"] is not None:
                flag = "-m icmp --icmp-type" if proto == "icmp" else "-m icmp6 --icmpv6-type"
                variants = [[f"{flag} {ICMP_TYPES[family][name]}"] for name in rule["icmp_types"]]
            after = []
            if rule["hoplimit"] is not None:
                after.append(f"-m hl --hl-eq {int(rule['hoplimit'])}")
            conntrack = []
            if rule["ct_state"] is not None:
                conntrack.append("--ctstate " + ",".join(state.upper() for state in rule["ct_state"]))
            if rule.get("ct_direction") is not None:
                if rule["ct_direction"] not in ("original", "reply"):
                    raise ValueError(f"refusing to render unknown ct_direction {rule['ct_direction']!r}")
                conntrack.append(f"--ctdir {rule['ct_direction'].upper()}")
            if conntrack:
                after.append("-m conntrack " + " ".join(conntrack))
            if rule.get("ct_orig_dports") is not None:
                # One rule per range: --ctorigdstport takes one port or LOW:HIGH.
                variants = [[*v, f"-m conntrack --ctorigdstport {low if low == high else f'{low}:{high}'}"]
                            for v in variants for low, high in rule["ct_orig_dports"]]
            if rule.get("ct_orig_saddr_in") is not None:
                # The connection's original source is where its replies go (no NAT on the host).
                after.append(f"-m set --match-set {self.addr_set(rule['ct_orig_saddr_in'], family)} dst")
            for kind, flag in (("users", "--uid-owner"), ("groups", "--gid-owner")):
                found = owners(ir, rule, kind)
                if found is not None:
                    variants = [[*v, f"-m owner {flag} {value}"] for v in variants for value in found]
            if rule.get("saddr_in") is not None:
                after.append(f"-m set --match-set {self.addr_set(rule['saddr_in'], family)} src")
            if rule["saddr_not_in"] is not None:
                after.append(f"-m set ! --match-set {self.addr_set(rule['saddr_not_in'], family)} src")
            dests = self.destinations(rule["daddr_in"], family)
            tail = []
            if rule.get("meter") is not None:
                meter = rule["meter"]
                tail.append(
                    f"-m hashlimit --hashlimit-above {meter['rate']} --hashlimit-burst {int(meter['burst'])}"
                    f" --hashlimit-mode srcip --hashlimit-name w{GEN_PLACEHOLDER}{SUFFIX[family]}"
                )
            tail.append(f"-m comment --comment {quote(clip(rule['comment']))}")
            if rule["action"] == "accept":
                tail.append("-j RETURN")
            elif rule["action"] == "ratelimit" and self.audit:
                tail.append(f"-j {self.chains['ratelimit']}")  # audit: log the burst, RETURN, then judge the flow as any other
            else:
                tail.append(f"-g {self.deny[ir['hook']] if rule['action'] == 'deny' else self.chains[rule['action']]}")
            log = self.alert_log(rule, family) if rule["action"] == "alert" and self.log["denied"] else None
            for variant in variants:
                for dest in dests:
                    if log is not None:
                        out[family].append(" ".join([f"-A {chain}", *parts, *variant, *after, *dest, *log]))
                    out[family].append(" ".join([f"-A {chain}", *parts, *variant, *after, *dest, *tail]))
        return out

    def alert_meter(self, rule: Mapping, family: str) -> str:
        """The hashlimit name of an alert class (at most 15 characters, with the generation
        so that a new policy starts new meters with its own rate)."""
        name = alert_class(rule)
        meter = f"w{GEN_PLACEHOLDER}{SUFFIX[family]}{name}"[: HASHLIMIT_NAME_MAX - GEN_LEN + len(GEN_PLACEHOLDER)]
        if self.meters.setdefault(meter, name) != name:
            raise ValueError(f"alert classes {self.meters[meter]!r} and {name!r} would share the hashlimit name {meter!r}")
        return meter

    def alert_log(self, rule: Mapping, family: str) -> list[str]:
        """What logs an alert, in the hook chain just before the rule that denies it: its own
        meter per class, keyed on the source address, so that one noisy source or class
        cannot use up the lines of another."""
        return [
            f"-m hashlimit --hashlimit-upto {self.log['rate']} --hashlimit-burst {alert_burst(self.log)} --hashlimit-mode srcip"
            f" --hashlimit-name {self.alert_meter(rule, family)} --hashlimit-htable-expire {alert_timeout(self.log) * 1000}",
            f"-m comment --comment {quote(clip(rule['comment']))}",
            f"-j LOG --log-prefix {quote(self.log_prefix('alert'))}",
        ]

    def log_prefix(self, word: str) -> str:
        prefix = f"{self.log['prefix']} {word}: "
        if len(prefix) > LIMITS["log_line"]:
            raise ValueError(f"egress_log.prefix: {self.log['prefix']!r} is too long for iptables (log prefix {prefix!r} exceeds {LIMITS['log_line']})")
        return prefix

    def audit_chain(self, ir: Mapping, family: str) -> list[str]:
        """Audit mode: log the first packet of each would-be-denied flow of one policy, with
        the policy's tag (and, on the host's own output path, the local user id), then not
        again for AUDIT_ONCE: the flow goes into an ipset whose entries expire. Every packet
        returns: audit mode only logs (a full set adds nothing, so the flow is logged again)."""
        tag = audit_tag(ir)
        chain = self.deny[ir["hook"]]
        name = ipset_name(tag, family, kind="audit~")  # no address set name holds a ~ before letters
        if self.ipsets[family].get(name, (AUDIT_SET_TYPE,))[0] != AUDIT_SET_TYPE:
            raise ValueError(f"the audit set {name} would share its name with an address set")
        self.ipsets[family][name] = (AUDIT_SET_TYPE, [], f" timeout {AUDIT_ONCE}", None)
        log = f"-j LOG --log-prefix \"{audit_prefix(self.log, tag, LIMITS['log_line'])}\"" + (" --log-uid" if tag == "host" else "")
        unseen = f"-m set ! --match-set {name} {AUDIT_SET_MATCH}"
        return [
            f"-A {chain} {unseen} -m comment --comment \"audit: first packet of a flow\" {log}",
            f"-A {chain} {unseen} -m comment --comment \"audit: remember the flow\" -j SET --add-set {name} {AUDIT_SET_MATCH}",
            f"-A {chain} -m comment --comment \"audit mode: log only\" -j RETURN",
        ]

    def verdict_chain(self, name: str) -> list[str]:
        """Log (under one limit) and drop, or return in audit mode. Alerts are logged before
        they get here, per class and source (``alert_log``)."""
        chain = self.chains[name]
        lines = []
        if self.log["denied"] and name != "alert":
            prefix = self.log_prefix("audit" if self.audit and name == "deny" else name)
            lines.append(
                f"-A {chain} -m limit --limit {self.log['rate']} --limit-burst {LOG_BURST} -m comment --comment {quote('log ' + name)}"
                f" -j LOG --log-prefix {quote(prefix)}"
            )
        if self.audit:
            lines.append(f"-A {chain} -m comment --comment \"audit mode: log only\" -j RETURN")
        else:
            lines.append(f"-A {chain} -m comment --comment {quote(name)} -j DROP")
        return lines


def _ipset_file(ipsets: dict, header: list[str]) -> str:
    out = list(header)
    for family in FAMILIES:
        for name, (kind, members, *extra) in sorted(ipsets[family].items()):
            options, fixed = extra or ("", None)
            elements = []
            for member in members:
                # hash:net cannot hold a /0: two halves cover the same addresses.
                if kind == "hash:net" and network(member).prefixlen == 0:
                    elements.extend(str(half) for half in network(member).subnets(1))
                else:
                    elements.append(member)
            maxelem = fixed or max(AUDIT_ENTRIES, len(elements))
            out.append(f"create {name} {kind} family {IPSET_FAMILY[family]}{options} maxelem {maxelem}")
            out.extend(f"add {name} {element}" for element in elements)
    return "\n".join(out) + "\n"


def dnsmasq(policy, servers: list[str] | None = None, resolv_file: str = "") -> dict:
    """The local resolver's files for the policies of one table (render.dns): its dnsmasq
    configuration (``conf``, its ``ipset`` lines naming both families' halves: dnsmasq puts
    an A answer in the inet sets and an AAAA answer in the inet6 ones), the file of each half
    for ``ipset restore`` (``flush``) and ``lifetime``. As ``render.nftables.dnsmasq``."""
    irs = policies(policy, "hook", ("table", "mode", "log"), "table")
    return resolver_files(irs, "ipset", dns_ipset, lambda name, half, family: f"flush {dns_ipset(name, half, family)}", servers, resolv_file)


def render(policy) -> dict:
    """Render one IR, or several with different hooks sharing one table (a gateway's own
    host policy and its edge policy). Returns ``{table, generation, chains, ipset, ipv4,
    ipv6}``: the ipset file and the two restore files (boot form)."""
    irs = policies(policy, "hook", ("table", "mode", "log"), "table")
    check_rules(CAPABILITIES, irs)
    for ir in irs:
        if ir["hook"] not in HOOKS:
            raise ValueError(f"hook {ir['hook']!r} has no iptables built-in chain")
    rend = _Renderer(irs)
    header = [
        f"# warden.egress policy for {irs[0]['target']} ({describe(irs)}; mode: {irs[0]['mode']}) generation {GEN_PLACEHOLDER}",
        "# Generated: edit the inventory, not this file. Loading it replaces only the chains named "
        f"{rend.table}-* and the sets they use.",
    ]
    body: dict = {family: [] for family in FAMILIES}
    used = {rule["action"] for ir in irs for rule in ir["rules"]} | {"deny"}
    if rend.once:
        used.discard("deny")
    audit_chains = [rend.deny[ir["hook"]] for ir in irs] if rend.once else []
    own_chains = [rend.chains[name] for name in VERDICT_CHAINS if name in used] + audit_chains + [rend.chains[ir["hook"]] for ir in irs]
    for family in FAMILIES:
        body[family].extend(f":{chain} - [0:0]" for chain in own_chains)
        for name in VERDICT_CHAINS:
            if name in used:
                body[family].extend(rend.verdict_chain(name))
        for ir in irs if rend.once else []:
            body[family].extend(rend.audit_chain(ir, family))
    for ir in irs:
        chain = rend.chains[ir["hook"]]
        for rule in ir["rules"]:
            lines = rend.rule_lines(ir, rule, chain)
            for family in FAMILIES:
                body[family].extend(lines[family])
        for family in FAMILIES:
            body[family].append(f"-A {chain} -m comment --comment \"default deny\" -g {rend.deny[ir['hook']]}")
            body[family].append(f"-I {HOOKS[ir['hook']]} 1 -m comment --comment \"{JUMP_COMMENT}\" -j {chain}")
    files = {family: "\n".join([*header, "*filter", *body[family], "COMMIT"]) + "\n" for family in FAMILIES}
    files["ipset"] = _ipset_file(rend.ipsets, header)
    generation = hashlib.sha256("".join(files[key] for key in ("ipset", *FAMILIES)).encode()).hexdigest()[:GEN_LEN]
    result = {key: text.replace(GEN_PLACEHOLDER, generation) for key, text in files.items()}
    result.update({"table": rend.table, "generation": generation, "chains": own_chains})
    return result
