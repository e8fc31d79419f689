"""Two network namespaces joined by a veth pair: 'host' (loads a ruleset) and 'world'
(answers for every test destination, so an accepted flow is always seen: TCP gets a
reset, UDP an ICMP port-unreachable). Documentation prefixes only; nothing leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_V4 = "198.51.100.11"
HOST_V6 = "2001:db8:10::11"
SPOOF_V4 = "198.51.100.200"
SPOOF_V6 = "2001:db8:10::1:200"
WORLD_LOCAL = ["203.0.113.0/24", "198.51.100.128/26"]
WORLD_LOCAL6 = ["2001:db8:5100::/64"]


def sh(*args: str, ns: str | None = None, check: bool = True, data: str | None = None) -> subprocess.CompletedProcess:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, input=data, capture_output=True, text=True, check=check)


BACKENDS = ("nftables", "iptables")


def run_module(name: str, tmp: str, args: dict, check: bool = False, diff: bool = False,
               ns: str | None = None, env: dict | None = None) -> dict:
    """Run one of the collection's modules as Ansible runs it (a process reading its
    arguments file), inside network namespace ``ns`` when given; returns its result."""
    path = os.path.join(tmp, "args.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check, "_ansible_diff": diff}}, handle)
    command = [sys.executable, os.path.join(TOP, "plugins", "modules", f"{name}.py"), path]
    out = subprocess.run((["ip", "netns", "exec", ns] if ns else []) + command, capture_output=True, text=True, check=False,
                         env={**(env or os.environ), "PYTHONPATH": os.path.join(TOP, ".build", "collections")})
    return json.loads(out.stdout)


def rendered(irs, backend: str, without: str | None = None):
    """The policy rendered for a backend; ``without`` drops every rule whose text holds it
    (to prove that a comparison with the oracle can fail)."""
    from ansible_collections.warden.egress.plugins.plugin_utils.render import iptables as render_iptables
    from ansible_collections.warden.egress.plugins.plugin_utils.render import nftables as render_nftables

    def keep(text: str) -> str:
        return text if without is None else "\n".join(line for line in text.splitlines() if without not in line) + "\n"

    if backend == "nftables":
        return keep(render_nftables.render(irs))
    files = render_iptables.render(irs)
    return {**files, "ipv4": keep(files["ipv4"]), "ipv6": keep(files["ipv6"])}


class _Namespaces:
    """Namespaces made on entry (all removed again if building fails) and removed on exit.
    ``filtering`` names the namespace where a policy is loaded."""

    names: tuple = ()
    filtering = ""

    def load(self, irs, backend: str, without: str | None = None) -> None:
        """Load a policy as the backend's tools would, straight from the renderer."""
        text = rendered(irs, backend, without)
        if backend == "nftables":
            sh("nft", "-f", "-", ns=self.filtering, data=text)
            return
        sh("ipset", "-exist", "restore", ns=self.filtering, data=text["ipset"])
        sh("iptables-restore", "--noflush", ns=self.filtering, data=text["ipv4"])
        sh("ip6tables-restore", "--noflush", ns=self.filtering, data=text["ipv6"])

    def unload(self) -> None:
        """Remove whatever either backend loaded (the namespace is the tests' own)."""
        sh("nft", "delete", "table", "inet", "warden_egress", ns=self.filtering, check=False)
        for tool in ("iptables", "ip6tables"):
            sh(tool, "-F", ns=self.filtering, check=False)
            sh(tool, "-X", ns=self.filtering, check=False)
        sh("ipset", "destroy", ns=self.filtering, check=False)

    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for ns in self.names:
            sh("ip", "netns", "del", ns, check=False)

    def _build(self) -> None:
        raise NotImplementedError


class Pair(_Namespaces):
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.host, self.world = f"wh{tag}", f"ww{tag}"
        self.names = (self.host, self.world)
        self.filtering = self.host

    def _build(self) -> None:
        for ns in (self.host, self.world):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", "eth0", "netns", self.host, "type", "veth", "peer", "name", "eth0", "netns", self.world)
        h, w = self.host, self.world
        for ns in (h, w):
            sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", ns=ns)
        sh("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0", ns=w)
        sh("ip", "addr", "add", f"{HOST_V4}/24", "dev", "eth0", ns=h)
        sh("ip", "addr", "add", f"{SPOOF_V4}/32", "dev", "eth0", ns=h)
        sh("ip", "-6", "addr", "add", f"{HOST_V6}/64", "dev", "eth0", "nodad", ns=h)
        sh("ip", "-6", "addr", "add", f"{SPOOF_V6}/128", "dev", "eth0", "nodad", "preferred_lft", "0", ns=h)
        sh("ip", "addr", "add", "198.51.100.254/24", "dev", "eth0", ns=w)
        sh("ip", "-6", "addr", "add", "2001:db8:10::fe/64", "dev", "eth0", "nodad", ns=w)
        for ns in (h, w):
            sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", "198.51.100.254", ns=h)
        sh("ip", "-6", "route", "add", "default", "via", "2001:db8:10::fe", ns=h)
        for prefix in WORLD_LOCAL:
            sh("ip", "route", "add", "local", prefix, "dev", "lo", ns=w)
        for prefix in WORLD_LOCAL6:
            sh("ip", "-6", "route", "add", "local", prefix, "dev", "lo", ns=w)

    def nft(self, *args: str, data: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return sh("nft", *args, ns=self.host, data=data, check=check)

    def probe(self, flows: list[dict], timeout: float = 0.5, workers: int = 64, ns: str | None = None) -> list[dict]:
        """Try flows from the host namespace with the collection's probe module code."""
        code = (
            "import json, sys\n"
            "from ansible_collections.warden.egress.plugins.modules.probe import try_flow\n"
            "from concurrent.futures import ThreadPoolExecutor\n"
            "flows = json.load(sys.stdin)\n"
            f"with ThreadPoolExecutor(max_workers={workers}) as pool:\n"
            f"    print(json.dumps(list(pool.map(lambda f: try_flow(f, {timeout}), flows))))\n"
        )
        env_path = os.path.join(TOP, ".build", "collections")
        out = sh("env", f"PYTHONPATH={env_path}", sys.executable, "-c", code, ns=ns or self.host, data=json.dumps(flows))
        return json.loads(out.stdout)


class Routed(_Namespaces):
    """client --(gw eth0: inside)-- gw --(gw eth1: outside)-- world.

    The client owns every source address a test may use (role hosts, a segment host, and
    addresses outside the trusted prefixes), so that whatever the gateway lets out gets its
    answer back. The gateway forwards; the world answers for 203.0.113.0/24 and
    2001:db8:5100::/64. The gateway-world link uses 198.51.100.252/30 and 2001:db8:ffff::/64."""

    def __init__(self, client_v4: list[str], client_v6: list[str]) -> None:
        tag = uuid.uuid4().hex[:6]
        self.client, self.gw, self.world = f"wc{tag}", f"wg{tag}", f"ww{tag}"
        self.names = (self.client, self.gw, self.world)
        self.filtering = self.gw
        self.client_v4, self.client_v6 = client_v4, client_v6

    def _build(self) -> None:
        c, g, w = self.client, self.gw, self.world
        for ns in (c, g, w):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", ns=ns)
        sh("ip", "link", "add", "eth0", "netns", c, "type", "veth", "peer", "name", "eth0", "netns", g)
        sh("ip", "link", "add", "eth1", "netns", g, "type", "veth", "peer", "name", "eth0", "netns", w)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", ns=g)
        sh("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0", ns=w)
        for i, addr in enumerate(self.client_v4):
            sh("ip", "addr", "add", f"{addr}/32", "dev", "eth0", ns=c)
        for addr in self.client_v6:
            sh("ip", "-6", "addr", "add", f"{addr}/128", "dev", "eth0", "nodad", ns=c)
        sh("ip", "addr", "add", "198.51.100.126/32", "dev", "eth0", ns=g)
        sh("ip", "-6", "addr", "add", "2001:db8:10::fe/128", "dev", "eth0", "nodad", ns=g)
        sh("ip", "addr", "add", "198.51.100.253/30", "dev", "eth1", ns=g)
        sh("ip", "-6", "addr", "add", "2001:db8:ffff::1/64", "dev", "eth1", "nodad", ns=g)
        sh("ip", "addr", "add", "198.51.100.254/30", "dev", "eth0", ns=w)
        sh("ip", "-6", "addr", "add", "2001:db8:ffff::2/64", "dev", "eth0", "nodad", ns=w)
        for ns in (c, g, w):
            for dev in ("eth0", "eth1") if ns == g else ("eth0",):
                sh("ip", "link", "set", dev, "up", ns=ns)
        sh("ip", "route", "add", "198.51.100.126/32", "dev", "eth0", ns=c)
        sh("ip", "route", "add", "default", "via", "198.51.100.126", "dev", "eth0", ns=c)
        sh("ip", "-6", "route", "add", "2001:db8:10::fe/128", "dev", "eth0", ns=c)
        sh("ip", "-6", "route", "add", "default", "via", "2001:db8:10::fe", "dev", "eth0", ns=c)
        for addr in self.client_v4:
            sh("ip", "route", "add", f"{addr}/32", "dev", "eth0", ns=g)
        for addr in self.client_v6:
            sh("ip", "-6", "route", "add", f"{addr}/128", "dev", "eth0", ns=g)
        sh("ip", "route", "add", "default", "via", "198.51.100.254", ns=g)
        sh("ip", "-6", "route", "add", "default", "via", "2001:db8:ffff::2", ns=g)
        sh("ip", "route", "add", "198.51.100.0/24", "via", "198.51.100.253", ns=w)
        sh("ip", "-6", "route", "add", "2001:db8:10::/64", "via", "2001:db8:ffff::1", ns=w)
        sh("ip", "route", "add", "local", "203.0.113.0/24", "dev", "lo", ns=w)
        sh("ip", "-6", "route", "add", "local", "2001:db8:5100::/64", "dev", "lo", ns=w)

    def nft(self, *args: str, data: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return sh("nft", *args, ns=self.gw, data=data, check=check)

    def probe(self, flows: list[dict], timeout: float = 0.5, workers: int = 64) -> list[dict]:
        return Pair.probe(self, flows, timeout, workers, ns=self.client)
