"""The three apply modules, each in a place of its own: nftables and iptables in a network
namespace, pf against the lab's pfctl stand-in (lab/files/fake-pfctl.py). Shared by the apply
tests (robustness, confirmed apply); the ``box`` fixture is in conftest.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

from netns import TOP, sh
from sample import compile_for

from ansible_collections.warden.egress.plugins.plugin_utils.render import iptables as render_iptables

from ansible_collections.warden.egress.plugins.plugin_utils.render import nftables as render_nftables

from ansible_collections.warden.egress.plugins.plugin_utils.render import pf as render_pf

MODULES = ("nft_apply", "iptables_apply", "pf_apply")
IPT_FILES = ("warden_egress.ipset", "warden_egress.rules.v4", "warden_egress.rules.v6")


class Box:
    """One backend in a place of its own, with its boot files under ``tmp/etc`` and its state
    under ``tmp/state``."""

    def __init__(self, module: str, tmp: str) -> None:
        self.module, self.tmp = module, tmp
        self.etc, self.state = os.path.join(tmp, "etc"), os.path.join(tmp, "state")
        self.bin = os.path.join(tmp, "bin")
        os.makedirs(self.bin)
        self.env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        self.ns = None
        self.pair = None

    def args(self, host: str) -> dict:
        policy = compile_for(host)
        if self.module == "nft_apply":
            return {"content": render_nftables.render(policy)}
        if self.module == "iptables_apply":
            files = render_iptables.render(policy)
            return {key: files[key] for key in ("ipset", "ipv4", "ipv6")}
        return {"content": render_pf.render(policy)}

    def boot_args(self, etc: str | None = None) -> dict:
        etc = etc or self.etc
        if self.module == "iptables_apply":
            return {"directory": etc}
        return {"path": os.path.join(etc, "warden_egress.nft" if self.module == "nft_apply" else "warden_egress")}

    def boot_files(self, etc: str | None = None) -> list[str]:
        etc = etc or self.etc
        if self.module == "iptables_apply":
            return [os.path.join(etc, name) for name in IPT_FILES]
        return [self.boot_args(etc)["path"]]

    def kernel(self) -> str:
        """Everything loaded, without counters."""
        if self.module == "nft_apply":
            return sh("nft", "-s", "list", "ruleset", ns=self.ns).stdout
        if self.module == "iptables_apply":
            saved = [line.split(" [", 1)[0] for tool in ("iptables-save", "ip6tables-save")
                     for line in sh(tool, "-t", "filter", ns=self.ns).stdout.splitlines() if not line.startswith("#")]
            # initval is the hash seed a set gets when it is created, not part of what it holds
            return "\n".join(saved) + "\n" + re.sub(r" initval 0x[0-9a-f]+", "", sh("ipset", "save", ns=self.ns).stdout)
        store = os.path.join(self.tmp, "pf", "anchors")
        return "".join(f"## {name}\n{read(os.path.join(store, name))}" for name in sorted(os.listdir(store))) if os.path.isdir(store) else ""

    def real(self, tool: str) -> str:
        """The tool the module would find without this box's own bin directory first."""
        return shutil.which(tool, path=os.environ["PATH"]) if self.module != "pf_apply" else os.path.join(self.tmp, "pfbin", "pfctl")

    def start(self, args: dict, check: bool = False, wrap: list | None = None, umask: int | None = None, **extra) -> subprocess.Popen:
        """Start the module as Ansible runs it (a process reading its arguments file), inside
        ``wrap`` (a command prefix) and under ``umask`` when given."""
        args = {**self.boot_args(), "state_dir": self.state, **args, **extra}
        handle, path = tempfile.mkstemp(dir=self.tmp, suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}, out)
        command = (wrap or []) + (["ip", "netns", "exec", self.ns] if self.ns else [])
        command += [sys.executable, os.path.join(TOP, "plugins", "modules", f"{self.module}.py"), path]
        env = {**self.env, "PYTHONPATH": os.path.join(TOP, ".build", "collections")}
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)

    def run(self, args: dict, check: bool = False, wrap: list | None = None, umask: int | None = None, **extra) -> dict:
        """Run the module to its end (see ``start()``); its result."""
        process = self.start(args, check=check, wrap=wrap, umask=umask, **extra)
        stdout, stderr = process.communicate()
        try:
            return json.loads(stdout)
        except ValueError:
            raise AssertionError(f"no module result (rc {process.returncode}): {stdout!r} {stderr[-2000:]!r}") from None


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def write_script(path: str, body: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"#!/bin/sh\n{body}\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)


def snapshot(box: Box) -> tuple:
    """The kernel, the boot files and the record: what must not change when a run fails."""
    names = sorted(os.listdir(box.state)) if os.path.isdir(box.state) else []
    records = {name: read(os.path.join(box.state, name)) for name in names if name.endswith(".json")}
    return box.kernel(), [read(path) for path in box.boot_files()], records
