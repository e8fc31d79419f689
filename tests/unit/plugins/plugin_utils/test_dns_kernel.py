"""Upstreams named by DNS, in the kernel: a host namespace loads the rendered policy and runs
the local dnsmasq from the rendered configuration; the world namespace runs the lab's
"Internet" DNS server (lab/files/dns_world.py) and answers every address of 203.0.113.0/24
and 2001:db8:5100::/64. A client in the host resolves through 127.0.0.1 and connects at
once to what it was given: real answers, real sets, real packets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from netns import TOP, Pair, run_module, sh
from sample import compile_for

from ansible_collections.warden.egress.plugins.plugin_utils.render import iptables as render_iptables
from ansible_collections.warden.egress.plugins.plugin_utils.render import nftables as render_nftables

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces); make setup installs dnsmasq")

UPSTREAMS = {
    "apis": ["dns:api.example.com", "dns:zero.example.com", "dns:*.cdn.example.net", "dns:hint.example.com",
             "dns:alias.example.com"],
    "dns_forwarders": ["203.0.113.53", "2001:db8:5100::53"],
    "smtp_relays": ["203.0.113.25"],
}
ROLES = {"named": {"allow": [{"service": "https", "to": "apis"}, {"service": "dns", "to": "dns_forwarders"}]}}
# The client (the lab's): resolve NAME (TYPE) through the local resolver, connect to each address at once.
CLIENT = os.path.join(TOP, "lab", "files", "dns_client.py")


class Site:
    """A host namespace with a policy and its dnsmasq; a world with the DNS server."""

    def __init__(self, pair: Pair, backend: str, tmp: str, dns: dict) -> None:
        self.pair, self.backend, self.tmp = pair, backend, tmp
        self.ir = compile_for("mail1", egress_upstreams=UPSTREAMS, egress_roles=ROLES, egress_role="named", egress_platform=backend,
                              egress_dns=dns)
        for gateway in ("198.51.100.254", "2001:db8:10::fe"):  # the link up and the neighbours known before the policy is loaded
            for dummy in range(30):
                if sh("ping", "-c", "1", "-W", "1", gateway, ns=pair.host, check=False).returncode == 0:
                    break
        pair.load(self.ir, backend)
        files = (render_nftables if backend == "nftables" else render_iptables).dnsmasq(self.ir, ["203.0.113.53"])
        self.flush = files["flush"]
        conf = os.path.join(tmp, "dnsmasq.conf")
        with open(conf, "w", encoding="utf-8") as handle:
            handle.write(files["conf"])
        self.world_log = os.path.join(tmp, "world.log")
        self.procs: list = []
        try:
            self._start(pair, conf)
        except BaseException:
            self.close()
            raise

    def _start(self, pair: Pair, conf: str) -> None:
        self.procs = [
            subprocess.Popen(["ip", "netns", "exec", pair.world, sys.executable, os.path.join(TOP, "lab", "files", "dns_world.py"),
                              "--address", "203.0.113.53", "--ttl", "2", "--many", "8", "--count", "64", "--log", self.world_log]),
            subprocess.Popen(["ip", "netns", "exec", pair.host, "dnsmasq", "--keep-in-foreground", f"--conf-file={conf}",
                              "--pid-file=", "--log-facility=-"], stderr=subprocess.DEVNULL),
        ]
        for dummy in range(50):
            if self.ask([["smtp.nowhere.example.org", "A"]], check=False) is not None:
                break
            time.sleep(0.1)
        # Both families' paths warm (a listed address, allowed without names): the first IPv6
        # packets of a fresh namespace pair can take a second to get through.
        for dummy in range(30):
            if pair.probe([{"src": "2001:db8:10::11", "dst": "2001:db8:5100::53", "proto": "tcp", "port": 53}])[0]["passed"]:
                break

    def ask(self, queries: list, check: bool = True, never: str = ""):
        """The client's answers (with ``never``: its whole report, ``never`` included)."""
        out = sh("env", f"PYTHONPATH={os.pathsep.join(sys.path)}", sys.executable, CLIENT, "--server", "127.0.0.1", "--timeout", "0.5",
                 "--ask", ",".join(f"{name}:{qtype}" for name, qtype in queries), "--never", never, ns=self.pair.host, check=check)
        if out.returncode != 0:
            return None
        report = json.loads(out.stdout)
        return report if never else report["answers"]

    def empty(self, half: str) -> None:
        """What the timer does: empty one half."""
        if self.backend == "nftables":
            sh("nft", "-f", "-", ns=self.pair.host, data=self.flush[half])
        else:
            sh("ipset", "restore", ns=self.pair.host, data=self.flush[half])

    def members(self) -> set[str]:
        found = set()
        for half in ("a", "b"):
            for family in ("ipv4", "ipv6"):
                if self.backend == "iptables":
                    text = sh("ipset", "save", render_iptables.dns_ipset("up_apis", half, family), ns=self.pair.host).stdout
                    found.update(line.split()[2] for line in text.splitlines() if line.startswith("add "))
                    continue
                name = render_nftables.dns_set("up_apis", half, family)
                text = sh("nft", "-j", "list", "set", "inet", "warden_egress", name, ns=self.pair.host).stdout
                for item in json.loads(text)["nftables"]:
                    found.update(str(e) for e in item.get("set", {}).get("elem", []))
        return found

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=5)


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def site(request, tmp_path_factory):
    with Pair() as pair:
        one = Site(pair, request.param, str(tmp_path_factory.mktemp("dns")), {"cache_ttl": 2, "grace": 1})
        try:
            yield one
        finally:
            one.close()


def test_every_address_given_is_allowed_before_the_first_packet(site):
    """Rotating answers, many addresses each, A and AAAA: every address a client was just
    given is reachable on its first connection, across rotations."""
    seen = set()
    for dummy in range(4):
        for answer in site.ask([["api.example.com", "A"], ["api.example.com", "AAAA"]]):
            assert len(answer["addresses"]) == 8, answer
            assert set(answer["results"].values()) == {"reached"}, answer
            seen.update(answer["addresses"])
        time.sleep(2.2)  # past the TTL: the next answer is the next rotation
    assert len(seen) == 64, sorted(seen)  # 4 rotations of 8, A and AAAA


def test_an_address_never_given_for_a_name_stays_denied(site):
    report = site.ask([["api.example.com", "A"]], never="203.0.113.99")
    assert report["answers"][0]["addresses"] and report["never"] == {"203.0.113.99": "dropped"}, report
    assert "203.0.113.99" not in site.members()


def test_ttl_zero_cname_chain_and_wildcard(site):
    """TTL 0 (never cached, every answer fills the set); a CNAME chain whose last name the
    wildcard *.cdn.example.net covers; the apex of a wildcard is not covered."""
    for dummy in range(3):
        (zero,) = site.ask([["zero.example.com", "A"]])
        assert zero["ttls"] == [0] and set(zero["results"].values()) == {"reached"}, zero
    (chain,) = site.ask([["www.example.com", "A"]])
    assert chain["addresses"] == ["203.0.113.77"], chain
    verdict = chain["results"]["203.0.113.77"]
    with open(site.world_log, encoding="utf-8") as handle:
        assert any(json.loads(line)["name"] == "www.example.com" for line in handle)
    # dnsmasq matches the name asked (www.example.com), not the chain's last name: an address
    # reached through a CNAME is allowed only when the name asked is covered (docs/dns.md).
    assert verdict == "dropped", chain
    (alias,) = site.ask([["alias.example.com", "A"]])
    assert alias["results"] == {"203.0.113.78": "reached"}, alias


def test_https_hints_are_not_followed(site):
    """An HTTPS record's address hint is not put in the set: only A and AAAA answers are, so
    a client that connects to a hint without asking for A is denied (fails closed)."""
    site.ask([["hint.example.com", "HTTPS"]])
    assert "203.0.113.88" not in site.members()
    (answer,) = site.ask([["hint.example.com", "A"]])
    assert answer["results"] == {"203.0.113.89": "reached"}


def test_an_answer_survives_one_emptying_and_not_two(site):
    """The two halves: after one half is emptied an address just answered is still allowed;
    after both are, it is not, until it is answered again (a cache miss here: the local
    cache holds an answer for at most cache_ttl, which is shorter than the lifetime)."""
    (answer,) = site.ask([["zero.example.com", "A"]])
    address = answer["addresses"][0]
    site.empty("a")
    assert address in site.members()
    site.empty("b")
    assert address not in site.members()
    (again,) = site.ask([["zero.example.com", "A"]])
    assert set(again["results"].values()) == {"reached"}, again


def test_a_reapply_keeps_what_the_resolver_added_and_never_counts_it_as_drift(tmp_path):
    """nft_apply: the resolver's members survive an unchanged policy (no change reported,
    members not drift) and a changed one (carried in the load's transaction); a name set the
    new policy no longer has is gone with its members."""
    def apply(**overrides) -> dict:
        ir = compile_for("mail1", **{"egress_upstreams": UPSTREAMS, "egress_roles": ROLES, "egress_role": "named", **overrides})
        result = run_module("nft_apply", str(tmp_path), {"content": render_nftables.render(ir), "path": str(tmp_path / "egress.nft"),
                                                         "state_dir": str(tmp_path / "state")}, ns=pair.host)
        assert not result.get("failed"), result
        return result

    def members(name: str) -> list:
        text = sh("nft", "-j", "list", "set", "inet", "warden_egress", name, ns=pair.host, check=False).stdout
        return sorted(str(e) for item in json.loads(text or '{"nftables": []}')["nftables"] for e in item.get("set", {}).get("elem", []))

    with Pair() as pair:
        assert apply()["changed"]
        sh("nft", "add element inet warden_egress dns_up_apis_a_v4 { 203.0.113.101, 203.0.113.102 }", ns=pair.host)
        sh("nft", "add element inet warden_egress dns_up_apis_b_v6 { 2001:db8:5100::101 }", ns=pair.host)
        again = apply()
        assert not again["changed"], again
        assert members("dns_up_apis_a_v4") == ["203.0.113.101", "203.0.113.102"]
        changed = apply(egress_exceptions=[{"hosts": ["mail1"], "service": "smtp", "to": ["203.0.113.26"], "reason": "r", "owner": "o",
                                            "expires": "2099-12-31"}])
        assert changed["changed"] and changed["ruleset_changed"], changed
        assert members("dns_up_apis_a_v4") == ["203.0.113.101", "203.0.113.102"]
        assert members("dns_up_apis_b_v6") == ["2001:db8:5100::101"]
        ROLES_WITHOUT = {"named": {"allow": [{"service": "dns", "to": "dns_forwarders"}]}}
        assert apply(egress_roles=ROLES_WITHOUT)["changed"]
        assert members("dns_up_apis_a_v4") == []


def test_an_iptables_reapply_keeps_the_resolver_sets_and_their_members(tmp_path):
    """iptables_apply: the halves keep their names and what the resolver added across an
    unchanged policy (no change, members not drift), a changed one (the generation sets are
    new, the halves are not flushed) and a confirmed load that is rolled back; a policy
    without the names destroys them."""
    def apply(confirm_timeout: int = 0, **overrides) -> dict:
        ir = compile_for("mail1", **{"egress_upstreams": UPSTREAMS, "egress_roles": ROLES, "egress_role": "named",
                                     "egress_platform": "iptables", **overrides})
        files = render_iptables.render(ir)
        result = run_module("iptables_apply", str(tmp_path), {"ipset": files["ipset"], "ipv4": files["ipv4"], "ipv6": files["ipv6"],
                                                              "directory": str(tmp_path / "etc"), "state_dir": str(tmp_path / "state"),
                                                              "confirm_timeout": confirm_timeout}, ns=pair.host)
        assert not result.get("failed"), result
        return result

    def members(half: str, family: str) -> list:
        name = render_iptables.dns_ipset("up_apis", half, family)
        text = sh("ipset", "save", name, ns=pair.host, check=False).stdout
        return sorted(line.split()[2] for line in text.splitlines() if line.startswith("add "))

    with Pair() as pair:
        assert apply()["changed"]
        sh("ipset", "add", render_iptables.dns_ipset("up_apis", "a", "ipv4"), "203.0.113.101", ns=pair.host)
        sh("ipset", "add", render_iptables.dns_ipset("up_apis", "b", "ipv6"), "2001:db8:5100::101", ns=pair.host)
        again = apply()
        assert not again["changed"], again
        exception = [{"hosts": ["mail1"], "service": "smtp", "to": ["203.0.113.26"], "reason": "r", "owner": "o", "expires": "2099-12-31"}]
        changed = apply(egress_exceptions=exception)
        assert changed["changed"] and changed["ruleset_changed"], changed
        assert members("a", "ipv4") == ["203.0.113.101"] and members("b", "ipv6") == ["2001:db8:5100::101"]
        # A load waiting for confirmation that the host rolls back: the halves keep what the
        # resolver added meanwhile, and the rules point at them again.
        pending = apply(confirm_timeout=2)
        assert pending["pending_confirmation"], pending
        sh("ipset", "add", render_iptables.dns_ipset("up_apis", "a", "ipv4"), "203.0.113.102", ns=pair.host)
        time.sleep(3.5)  # past the window: the host has put the previous rules back
        assert "-p tcp -m tcp --dport 25" in sh("iptables-save", ns=pair.host).stdout  # the exception's rule is back
        assert members("a", "ipv4") == ["203.0.113.101", "203.0.113.102"]
        assert render_iptables.dns_ipset("up_apis", "a", "ipv4") in sh("iptables-save", ns=pair.host).stdout
        ROLES_WITHOUT = {"named": {"allow": [{"service": "dns", "to": "dns_forwarders"}]}}
        gone = apply(egress_roles=ROLES_WITHOUT, egress_exceptions=exception)
        assert gone["changed"], gone
        left = sh("ipset", "list", "-n", ns=pair.host).stdout.split()
        assert left and not [name for name in left if name.startswith("wd-")], left
