# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A strict reader and evaluator for the pf rules the collection writes (private).

No BSD box can run here, so rendered rulesets are held to two checks:

* ``parse`` reads an anchor file (or a full pf.conf) with a grammar for exactly the subset
  of pf.conf the renderer may write, and refuses anything else: unknown words, misplaced
  options, tables referenced but not defined, negations inside ``{ }`` lists (pf expands a
  list into one rule per item, so ``{ ! <a>, <b> }`` matches everything), ``flags`` on
  block rules (only SYNs would be blocked), ports without tcp/udp, ICMP types with the wrong
  family, a missing label, a duplicate rule, and an anchor whose last rule is not a
  ``block ... quick`` catch-all of its own.
* ``evaluate`` decides a packet as pf does for these rules: ``match`` rules set tags, the
  last matching filter rule wins unless a ``quick`` rule matches first, tables hold
  prefixes of both families, ``self`` is the box's addresses, and a packet no rule matches
  is passed (pf's default). A forwarded packet is evaluated twice, ``in`` on the interface
  it came in by and ``out`` on the one it leaves by, and passes only if both pass.

Plain Python with no Ansible import: the lab's stand-in for ``pfctl`` runs it on a target.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

ACTIONS = ("pass", "block", "match")
WORD = re.compile(r"[A-Za-z0-9_.:/-]+")
TABLE_REF = re.compile(r"<([A-Za-z_][A-Za-z0-9_~]{0,31})>")
IFNAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,14}")
OPTIONS = {"skip": "on", "block-policy": ("drop", "return")}
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}


class PfSyntaxError(ValueError):
    def __init__(self, number: int, line: str, problem: str) -> None:
        super().__init__(f"line {number}: {problem}: {line.strip()!r}")


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars="{}(),!")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out = []
    for token in lexer:
        # shlex keeps runs of punctuation together; pf reads each one alone.
        if token and all(ch in "{}(),!" for ch in token):
            out.extend(token)
        else:
            out.append(token)
    return out


class _Reader:
    def __init__(self, tokens: list[str], number: int, line: str) -> None:
        self.tokens, self.pos, self.number, self.line = tokens, 0, number, line

    def fail(self, problem: str):
        raise PfSyntaxError(self.number, self.line, problem)

    def peek(self, offset: int = 0) -> str | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, expected: str | tuple | None = None) -> str:
        token = self.peek()
        if token is None:
            self.fail(f"ends early (expected {expected or 'more'})")
        if expected is not None and token not in ((expected,) if isinstance(expected, str) else expected):
            self.fail(f"expected {expected}, found {token!r}")
        self.pos += 1
        return token

    def accept(self, word: str) -> bool:
        if self.peek() == word:
            self.pos += 1
            return True
        return False

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def items(self, one) -> list:
        """``X`` or ``{ X X ... }`` (pf also allows commas between items)."""
        if not self.accept("{"):
            return [one()]
        found = []
        while not self.accept("}"):
            if self.accept(","):
                continue
            if self.peek() == "!":
                self.fail("a negation inside a { } list matches everything once pf expands the list")
            found.append(one())
        if not found:
            self.fail("empty list")
        return found


def _address(reader: _Reader) -> dict:
    negate = reader.accept("!")
    token = reader.take()
    if token in ("any", "self"):
        if negate and token == "any":
            reader.fail("'! any' matches nothing")
        return {"negate": negate, "kind": token}
    match = TABLE_REF.fullmatch(token)
    if match:
        return {"negate": negate, "kind": "table", "table": match.group(1)}
    try:
        return {"negate": negate, "kind": "net", "net": ipaddress.ip_network(token, strict=True)}
    except ValueError:
        reader.fail(f"{token!r} is not an address, a table, any or self")
    return {}


def _port(reader: _Reader) -> tuple[int, int]:
    token = reader.take()
    low, sep, high = token.partition(":")
    try:
        low_n, high_n = int(low), int(high) if sep else int(low)
    except ValueError:
        reader.fail(f"{token!r} is not a port or LOW:HIGH range")
    if not 1 <= low_n <= high_n <= 65535:
        reader.fail(f"{token!r} is not a port range within 1-65535")
    return (low_n, high_n)


TCP_FLAGS = "FSRPAUEW"
# What pf takes for a stateful pass rule that names no flags: state only from a SYN.
DEFAULT_FLAGS = ("S", "SA")


def _flags(reader: _Reader) -> tuple[str, str] | None:
    """``flags SET/MASK`` (a packet matches when its flags within MASK are exactly SET) or
    ``flags any`` (an empty mask: every packet)."""
    token = reader.take()
    if token == "any":
        return "", ""
    match = re.fullmatch(f"([{TCP_FLAGS}]*)/([{TCP_FLAGS}]+)", token)
    if not match or not set(match.group(1)) <= set(match.group(2)):
        reader.fail(f"{token!r} is not flags SET/MASK with SET within MASK")
    return match.group(1), match.group(2)


def _owner(reader: _Reader, word: str) -> str:
    """A user or group: a number or a name (pf looks names up when it loads the rules)."""
    token = reader.take()
    if not (token.isascii() and token.isdigit() and int(token) <= 4294967294 or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", token)):
        reader.fail(f"{token!r} is not a {word} name or number")
    return token


def _rule(reader: _Reader) -> dict:
    rule = {"action": reader.take(ACTIONS), "direction": None, "log": False, "quick": False, "on": None,
            "on_negate": False, "af": None, "proto": None, "from": None, "to": None, "ports": None,
            "icmp_types": None, "tagged": None, "tagged_not": None, "tag": None, "state": None, "label": None,
            "user": None, "group": None, "sports": None, "flags": None}
    if reader.peek() in ("in", "out"):
        rule["direction"] = reader.take()
    if reader.accept("log"):
        rule["log"] = True
    if reader.accept("quick"):
        rule["quick"] = True
    if reader.accept("on"):
        rule["on_negate"] = reader.accept("!")
        names = reader.items(reader.take)
        if rule["on_negate"] and len(names) > 1:
            reader.fail("a negated interface list")
        for name in names:
            if not IFNAME.fullmatch(name):
                reader.fail(f"{name!r} is not an interface name")
        rule["on"] = names
    if reader.peek() in ("inet", "inet6"):
        rule["af"] = reader.take()
    if reader.accept("proto"):
        def proto():
            token = reader.take()
            if token in PROTOCOLS:
                return PROTOCOLS[token]
            if token.isascii() and token.isdigit() and 0 <= int(token) <= 255:
                return int(token)
            reader.fail(f"{token!r} is not a protocol")
        rule["proto"] = reader.items(proto)
    if reader.accept("all"):
        rule["from"] = rule["to"] = [{"negate": False, "kind": "any"}]
    else:
        reader.take("from")
        rule["from"] = reader.items(lambda: _address(reader))
        if reader.accept("port"):
            rule["sports"] = reader.items(lambda: _port(reader))
        reader.take("to")
        rule["to"] = reader.items(lambda: _address(reader))
        if reader.accept("port"):
            rule["ports"] = reader.items(lambda: _port(reader))
    while not reader.done():
        word = reader.take()
        if word in ("icmp-type", "icmp6-type"):
            if rule["icmp_types"] is not None:
                reader.fail("ICMP types twice")
            wanted = ("inet", 1) if word == "icmp-type" else ("inet6", 58)
            if rule["af"] != wanted[0] or rule["proto"] != [wanted[1]]:
                reader.fail(f"{word} needs 'af {wanted[0]} proto {'icmp' if wanted[1] == 1 else 'icmp6'}'")
            rule["icmp_types"] = reader.items(lambda: int(reader.take()))
        elif word in ("tagged", "tag") or word == "!" and reader.peek() == "tagged":
            key = word if word != "!" else "tagged_not"
            if word == "!":
                reader.take("tagged")
            name = reader.take()
            if not re.fullmatch(r"[A-Za-z0-9_]{1,63}", name):
                reader.fail(f"{name!r} is not a tag name")
            if key != "tag" and (rule["tagged"] is not None or rule["tagged_not"] is not None):
                reader.fail("one tagged condition per rule")
            rule[key] = name
        elif word in ("user", "group"):
            if rule[word] is not None:
                reader.fail(f"{word} twice")
            rule[word] = reader.items(lambda: _owner(reader, word))
        elif word == "flags":
            if rule["action"] == "block":
                reader.fail("'flags' on a block rule blocks only the packets with those flags (SYNs), not the flow")
            rule["flags"] = _flags(reader)
        elif word == "keep":
            reader.take("state")
            rule["state"] = {}
            if reader.accept("("):
                while not reader.accept(")"):
                    if reader.accept(","):
                        continue
                    option = reader.take(("max-src-conn-rate", "overload", "flush", "global", "sloppy"))
                    if option == "max-src-conn-rate":
                        value = reader.take()
                        if not re.fullmatch(r"[1-9][0-9]*/[1-9][0-9]*", value):
                            reader.fail(f"{value!r} is not N/SECONDS")
                        rule["state"]["max-src-conn-rate"] = value
                    elif option == "overload":
                        table = TABLE_REF.fullmatch(reader.take())
                        if not table:
                            reader.fail("overload needs a <table>")
                        rule["state"]["overload"] = table.group(1)
                    elif option in ("flush", "sloppy"):
                        rule["state"][option] = True
        elif word == "label":
            rule["label"] = reader.take()
        else:
            reader.fail(f"unknown or misplaced word {word!r}")
    if (rule["ports"] is not None or rule["sports"] is not None) and (rule["proto"] is None or not set(rule["proto"]) <= {6, 17}):
        reader.fail("a port needs proto tcp or udp (pf would refuse it)")
    if rule["flags"] is not None and rule["proto"] != [6]:
        reader.fail("flags are for proto tcp")
    if rule["state"] is not None and rule["action"] != "pass":
        reader.fail("keep state on a rule that does not pass")
    if rule["state"] and "max-src-conn-rate" in rule["state"] and rule["proto"] != [6]:
        reader.fail("max-src-conn-rate counts TCP connections only")
    if rule["action"] == "match" and rule["tag"] is None:
        reader.fail("a match rule that sets no tag does nothing here")
    if (rule["user"] or rule["group"]) and (rule["proto"] is None or not set(rule["proto"]) <= {6, 17}):
        reader.fail("user and group need proto tcp or udp (pf would refuse them)")
    return rule


def parse(text: str, anchor_file: bool = True) -> dict:
    """Read an anchor file (``anchor_file``) or a full pf.conf. Returns tables, rules and,
    for a pf.conf, options and anchors. Raises PfSyntaxError."""
    tables: dict = {}
    rules: list = []
    options: list = []
    anchors: list = []
    seen_rule = False
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        tokens = _tokens(line)
        if not tokens:
            continue
        reader = _Reader(tokens, number, line)
        head = tokens[0]
        if head == "table":
            if seen_rule:
                reader.fail("tables come before the rules")
            reader.take()
            name = TABLE_REF.fullmatch(reader.take())
            if not name:
                reader.fail("table name must be <name>")
            if name.group(1) in tables:
                reader.fail(f"table <{name.group(1)}> defined twice")
            reader.take("persist")
            members = []
            if reader.accept("{"):
                while not reader.accept("}"):
                    token = reader.take()
                    try:
                        members.append(ipaddress.ip_network(token, strict=True))
                    except ValueError:
                        reader.fail(f"{token!r} is not a prefix with its host bits clear")
            if not reader.done():
                reader.fail("unexpected words after the table")
            tables[name.group(1)] = members
        elif head == "set":
            if anchor_file:
                reader.fail("options are not allowed in an anchor")
            if seen_rule or anchors:
                reader.fail("options come before anchors and rules")
            reader.take()
            option = reader.take(tuple(OPTIONS))
            if option == "skip":
                reader.take("on")
                value = reader.take()
            else:
                value = reader.take(OPTIONS[option])
            if not reader.done():
                reader.fail("unexpected words after the option")
            options.append((option, value))
        elif head in ("anchor", "load"):
            if anchor_file:
                reader.fail("this file is an anchor's own rules; it must not hook in anchors")
            if head == "load":
                reader.take("load")
                reader.take("anchor")
                name = reader.take()
                reader.take("from")
                path = reader.take()
                if name not in [a["name"] for a in anchors] or not path.startswith("/"):
                    reader.fail("load anchor must follow its anchor rule and name an absolute path")
                anchors[-1]["file"] = path
            else:
                reader.take("anchor")
                name = reader.take()
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", name):
                    reader.fail(f"{name!r} is not an anchor name")
                anchors.append({"name": name, "position": len(rules), "file": None})
            if not reader.done():
                reader.fail("unexpected words after the anchor")
        else:
            rule = _rule(reader)
            rule["number"] = number
            rules.append(rule)
            seen_rule = True
    for rule in rules:
        for address in (rule["from"] or []) + (rule["to"] or []):
            if address["kind"] == "table" and address["table"] not in tables:
                raise PfSyntaxError(rule["number"], lines[rule["number"] - 1], f"table <{address['table']}> is used but not defined")
        if rule["state"] and rule["state"].get("overload") not in (None, *tables):
            raise PfSyntaxError(rule["number"], lines[rule["number"] - 1], "overload table is not defined")
        if rule["label"] is None and anchor_file:
            raise PfSyntaxError(rule["number"], lines[rule["number"] - 1], "every rule names its origin with a label")
    texts = [" ".join(_tokens(lines[rule["number"] - 1])) for rule in rules]
    for index, text_ in enumerate(texts):
        if text_ in texts[:index]:
            raise PfSyntaxError(rules[index]["number"], lines[rules[index]["number"] - 1], "duplicate rule")
    if anchor_file:
        _check_closed([rule for rule in rules if rule["action"] != "match"], lines)
    return {"tables": tables, "rules": rules, "options": options, "anchors": anchors}


def _catch_all(rule: dict) -> bool:
    """A quick rule that decides everything in its scope (interface, tag), for every source
    but possibly the box's own addresses."""
    sources = rule["from"] in ([{"negate": False, "kind": "any"}], [{"negate": True, "kind": "self"}])
    return (rule["quick"] and rule["direction"] == "out" and not rule["on_negate"] and rule["af"] is None
            and rule["proto"] is None and rule["ports"] is None and sources
            and rule["to"] == [{"negate": False, "kind": "any"}])


def _check_closed(filters: list, lines: list) -> None:
    """Every scope (interface, tag) the anchor's rules judge ends in a catch-all of the
    anchor's own, so nothing it judges falls through to pf's default pass."""
    if not filters:
        raise PfSyntaxError(len(lines), lines[-1] if lines else "", "the anchor has no rules")
    for index, rule in enumerate(filters):
        scope_on, scope_tag = rule["on"], rule["tagged"]
        if scope_on == ["lo"] and rule["action"] == "pass":
            continue  # loopback is passed whole, it is its own scope
        closed = any(
            _catch_all(later) and (later["on"] is None or later["on"] == scope_on) and later["tagged"] in (None, scope_tag)
            for later in filters[index:]
        )
        if not closed:
            raise PfSyntaxError(rule["number"], lines[rule["number"] - 1],
                                "the anchor must end what it judges in a 'block out log quick all' of its own (no catch-all after this rule)")


# --------------------------------------------------------------------------- evaluation


def _in_address(spec: dict, address, tables: dict, own: list) -> bool:
    if spec["kind"] == "any":
        found = True
    elif spec["kind"] == "self":
        found = address in own
    elif spec["kind"] == "table":
        found = any(address.version == net.version and address in net for net in tables[spec["table"]])
    else:
        found = address.version == spec["net"].version and address in spec["net"]
    return found != spec["negate"]


def _matches(rule: dict, packet: dict, direction: str, interface: str, tag: str | None, tables: dict, own: list) -> bool:
    if rule["direction"] not in (None, direction):
        return False
    if rule["on"] is not None:
        group = {interface, "lo"} if interface.startswith("lo") else {interface}
        hit = bool(group & set(rule["on"]))
        if hit == rule["on_negate"]:
            return False
    family = "inet" if packet["src"].version == 4 else "inet6"
    if rule["af"] not in (None, family):
        return False
    if rule["proto"] is not None and packet["proto"] not in rule["proto"]:
        return False
    # A list of addresses is one rule per item: any item matching is a match.
    if not any(_in_address(spec, packet["src"], tables, own) for spec in rule["from"]):
        return False
    if not any(_in_address(spec, packet["dst"], tables, own) for spec in rule["to"]):
        return False
    if rule["ports"] is not None and not any(low <= (packet["dport"] or -1) <= high for low, high in rule["ports"]):
        return False
    if rule["sports"] is not None and not any(low <= (packet["sport"] or -1) <= high for low, high in rule["sports"]):
        return False
    if rule["action"] == "pass" and rule["state"] is not None and packet["proto"] == 6:
        # A stateful pass rule creates state only from the packets its flags allow (S/SA
        # unless it says otherwise): any other packet of a connection pf has no state for
        # goes on to the next rule.
        flags = rule["flags"] or DEFAULT_FLAGS
        if set(packet["flags"]) & set(flags[1]) != set(flags[0]):
            return False
    if rule["icmp_types"] is not None and packet["icmp_type"] not in rule["icmp_types"]:
        return False
    if rule["tagged"] is not None and rule["tagged"] != tag:
        return False
    if rule["tagged_not"] is not None and rule["tagged_not"] == tag:
        return False
    for word in ("user", "group"):
        # Only a local socket has an owner; names and numbers are compared as written.
        if rule[word] is not None and str(packet.get(word)) not in rule[word]:
            return False
    return True


def _pass(rules: list, tables: dict, packet: dict, direction: str, interface: str, tag: str | None, own: list) -> tuple[bool, dict | None, str | None]:
    decided = None
    for rule in rules:
        if not _matches(rule, packet, direction, interface, tag, tables, own):
            continue
        if rule["action"] == "match":
            tag = rule["tag"]
            continue
        decided = rule
        if rule["quick"]:
            break
    passed = decided is None or decided["action"] == "pass"
    return passed, decided, tag


PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
ICMP_NUMBERS = {
    4: {"echo-request": 8, "destination-unreachable": 3, "time-exceeded": 11, "parameter-problem": 12},
    6: {"echo-request": 128, "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
        "nd-router-solicit": 133, "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136},
}


def evaluate(ruleset: dict, flow: dict, own: list) -> dict:
    """Decide a new flow: ``flow`` has src, dst, proto (tcp, udp, icmp, icmpv6 or a number),
    dport, icmp_type (a name), oif and, for a forwarded packet, iif; optionally the sending
    socket's ``user`` and ``group``. With ``inbound`` true the flow is a connection opened to
    the box, judged ``in`` on ``iif`` (default eth0) only. ``own`` lists the box's addresses
    (``self``). With ``midstream`` true the flow is the next packet out of a TCP connection
    that pf has no state for (ACK without SYN, from the box's port ``sport``); any other TCP
    flow is a new connection's SYN. Returns {verdict: pass|block, rule: the deciding rule's
    label}."""
    src, dst = ipaddress.ip_address(flow["src"]), ipaddress.ip_address(flow["dst"])
    proto = flow.get("proto", "tcp")
    icmp_type = flow.get("icmp_type", "echo-request") if proto in ("icmp", "icmpv6") else None
    packet = {
        "src": src, "dst": dst, "proto": PROTO_NUMBERS.get(proto, proto), "dport": flow.get("dport"),
        "icmp_type": ICMP_NUMBERS[src.version].get(icmp_type) if icmp_type else None,
        "user": flow.get("user"), "group": flow.get("group"), "sport": flow.get("sport"),
        "flags": ("A" if flow.get("midstream") else "S") if PROTO_NUMBERS.get(proto, proto) == 6 else "",
    }
    own_addresses = [ipaddress.ip_address(a) for a in own]
    rules, tables = ruleset["rules"], ruleset["tables"]
    tag = None
    if flow.get("inbound"):
        passed, rule, dummy = _pass(rules, tables, packet, "in", flow.get("iif") or "eth0", None, own_addresses)
        return {"verdict": "pass" if passed else "block", "rule": rule["label"] if rule else None, "direction": "in"}
    if flow.get("iif") is not None:
        passed, rule, tag = _pass(rules, tables, packet, "in", flow["iif"], None, own_addresses)
        if not passed:
            return {"verdict": "block", "rule": rule["label"], "direction": "in"}
    passed, rule, dummy = _pass(rules, tables, packet, "out", flow["oif"], tag, own_addresses)
    return {"verdict": "pass" if passed else "block", "rule": rule["label"] if rule else None, "direction": "out"}
