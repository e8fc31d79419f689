"""How warden.egress scales with the site, and how it compares with Aerleon on the same policies.

One command, run from anywhere (it prepares its own environment in benchmarks/.venv):

    python3 benchmarks/site_scale.py --quick
    python3 benchmarks/site_scale.py --hosts 100,1000,10000 --roles 50 --prefixes 5000 --trusted 10000

For each size it generates a site (benchmarks/sitegen.py) and measures:

1. every host's Policy IR: the site compile (``compile_site``), and ``compile_policy`` called
   once per host, both with the parsed site shared and with a fresh parse per host (what a
   filter costs in a freshly forked Ansible worker; timed on a sample and extrapolated);
2. the edge gateway of the whole site, per platform: compile, then render (nftables,
   iptables+ipset, pf, and the IOS/EOS/Junos ACL data), and Aerleon 1.18 generating the
   equivalent policy for nftables, iptables (speedway), pf (packetfilter) and Cisco IOS;
   the same with N trusted prefixes declared behind the edge (``--trusted``);
3. the site play's compile phase under ansible-playbook with the generated inventory (no host
   is ever contacted): a play running only ``warden.egress.site_compile``, and the first play
   of playbooks/site.yml; wall time and the peak memory of the largest process.

Each measurement runs in a child process under a time limit (``--timeout``); one that does not
finish is reported as such. The benchmark is not a test: nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
VENV = os.path.join(HERE, ".venv")
sys.path.insert(0, HERE)

from aerleon_policies import AERLEON_VERSION  # noqa: E402  (after the path set-up)

QUICK = {"hosts": "100,1000", "roles": 20, "prefixes": 1000, "trusted": "1000", "play_hosts": "100", "timeout": 10.0, "play_timeout": 60.0, "sample": 20,
         "acl": "100x100"}
FULL = {"hosts": "100,1000,10000", "roles": 50, "prefixes": 5000, "trusted": "10000", "play_hosts": None, "timeout": 120.0, "play_timeout": 600.0,
        "sample": 50, "acl": "1000x1000"}
PLATFORMS = ("nftables", "iptables", "pf", "ios", "eos", "junos")
AERLEON_PLATFORMS = ("nftables", "iptables", "pf", "ios")
INTERFACES = {  # (inside, outside) as each platform names them
    "nftables": ("eth0", "eth1"), "iptables": ("eth0", "eth1"), "pf": ("em0", "em1"),
    "ios": ("GigabitEthernet0/0", "GigabitEthernet0/1"), "eos": ("Ethernet1", "Ethernet2"), "junos": ("ge-0/0/0.0", "ge-0/0/1.0"),
}
MIB = 1024.0


# --------------------------------------------------------------------------- environment

def _venv_python() -> str:
    return os.path.join(VENV, "bin", "python")


def _can_import(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False).returncode == 0


def enter_venv(aerleon: bool) -> None:
    """Run in benchmarks/.venv: made on first use with this interpreter (seeing its packages),
    Aerleon installed there (unless ``aerleon`` is false), and netaddr and ansible-core too when
    this interpreter lacks them. Aerleon is never installed where the collection runs."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    python = _venv_python()
    if not os.path.exists(python):
        print(f"creating {VENV} (Aerleon {AERLEON_VERSION} for the comparison)", file=sys.stderr)
        made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", VENV], check=False)
        if made.returncode != 0:
            sys.exit("python3 -m venv failed: on Debian and Ubuntu, install python3-venv")
    wanted = []
    check = f"import importlib.metadata as m; assert m.version('aerleon') == '{AERLEON_VERSION}'"
    if aerleon and subprocess.run([python, "-c", check], capture_output=True, check=False).returncode != 0:
        wanted.append(f"aerleon=={AERLEON_VERSION}")
    if not _can_import(python, "netaddr"):
        wanted.append("netaddr>=0.10")
    if not _can_import(python, "ansible.release"):
        wanted.append("ansible-core>=2.17")
    if wanted:
        print(f"installing into {VENV}: {' '.join(wanted)}", file=sys.stderr)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *wanted], check=True)
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


def collection_link(work: str) -> str:
    """A collections directory holding this checkout as ansible_collections.warden.egress."""
    base = os.path.join(work, "collections")
    link = os.path.join(base, "ansible_collections", "warden", "egress")
    os.makedirs(os.path.dirname(link))
    os.symlink(TOP, link)
    return base


# --------------------------------------------------------------------------- measuring

def limited(function: Callable[[], dict], timeout: float) -> dict:
    """``function()`` in a forked child, given ``timeout`` seconds; its result dict, or
    ``{"status": "timeout"}`` / ``{"status": "error", "error": ...}``."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        try:
            result = function()
            result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB
            send.send({"status": "ok", **result})
        except Exception as exc:  # reported, not raised: the parent goes on with the next measurement
            send.send({"status": "error", "error": f"{type(exc).__name__}: {exc}"[:400]})

    process = context.Process(target=child)
    process.start()
    result = receive.recv() if receive.poll(timeout) else {"status": "timeout"}
    if process.is_alive():
        process.kill()
    process.join()
    return result


def count_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() not in ("", "!", "#"))


def device_lines(config: list) -> int:
    """Configuration lines of a vendor ``*_acls`` config as its ``rendered`` state writes them:
    one per ACL header, one per entry and one per remark (Junos: one per term, and one per
    address a term lists beyond its first on each side, as ``set`` lines would be)."""
    lines = 0
    for family in config:
        for acl in family.get("acls", []):
            lines += 1
            for ace in acl.get("aces", []):
                lines += len(ace.get("remarks", [])) + (0 if set(ace) <= {"remarks", "sequence"} else 1)
                for side in ("source", "destination"):
                    address = (ace.get(side) or {}).get("address")
                    lines += len(address) - 1 if isinstance(address, list) else 0
        for key, value in family.items():
            if key not in ("afi", "acls"):
                lines += len(value) if isinstance(value, (list, dict)) else 1
    return lines


class Warden:
    """The collection's compile and renderers, imported from this checkout."""

    def __init__(self, collections: str) -> None:
        sys.path.insert(0, collections)
        from ansible_collections.warden.egress.plugins.plugin_utils.compile import host as compiler
        from ansible_collections.warden.egress.plugins.plugin_utils.compile import edge
        from ansible_collections.warden.egress.plugins.plugin_utils.render.acl import devices as render_acl
        from ansible_collections.warden.egress.plugins.plugin_utils.render.acl import ios as render_ios
        from ansible_collections.warden.egress.plugins.plugin_utils.render import iptables as render_iptables
        from ansible_collections.warden.egress.plugins.plugin_utils.render import nftables as render_nftables
        from ansible_collections.warden.egress.plugins.plugin_utils.render import pf as render_pf
        from ansible_collections.warden.egress.plugins.plugin_utils.compile import site as site_compile
        self.render_ios = render_ios
        self.compiler, self.edge, self.site_compile = compiler, edge, site_compile
        self.render_acl, self.render_iptables, self.render_nftables, self.render_pf = render_acl, render_iptables, render_nftables, render_pf

    def host_vars(self, site: dict) -> dict:
        return {host: {**site["variables"], "egress_role": role} for host, role in site["host_roles"].items()}

    def site_compile_all(self, site: dict) -> dict:
        host_vars = self.host_vars(site)
        started = time.perf_counter()
        count = sum(len(irs) for dummy, irs in self.site_compile.compile_site(host_vars, site["addresses"], site["groups"]))
        return {"seconds": time.perf_counter() - started, "irs": count}

    def per_host(self, site: dict, fresh_each: bool, limit: int | None = None) -> dict:
        host_vars = self.host_vars(site)
        hosts = list(host_vars)[:limit] if limit else list(host_vars)
        started = time.perf_counter()
        plans = None
        for host in hosts:
            if not fresh_each and plans is None:
                plans = self.site_compile.SiteCompile(host_vars, site["addresses"], site["groups"]).plans_of(host)
            self.compiler.compile_policy(host_vars[host], host, site["addresses"], site["groups"], plans=plans)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "per_host_ms": 1000 * seconds / max(len(hosts), 1), "hosts": len(hosts)}

    def edge_ir(self, site: dict, platform: str) -> dict:
        inside, outside = INTERFACES[platform]
        edge = {**site["edge"], "inside": [{**site["edge"]["inside"][0], "interface": inside}], "outside": outside}
        variables = {**site["variables"], "egress_edge": edge, "egress_platform": platform}
        return self.edge.compile_edge(variables, "gw", site["addresses"], site["groups"], site["host_roles"])

    def render(self, ir: dict, platform: str) -> int:
        """Render ``ir``; returns the output's line count."""
        if platform == "nftables":
            return count_lines(self.render_nftables.render(ir))
        if platform == "iptables":
            out = self.render_iptables.render(ir)
            return sum(count_lines(out[key]) for key in ("ipset", "ipv4", "ipv6"))
        if platform == "pf":
            return count_lines(self.render_pf.render(ir))
        if platform == "ios":
            rendered = self.render_ios.ios_render(ir)
            return device_lines(rendered["acls"]) + len(self.render_ios.ios_object_group_lines(rendered["object_groups"]))
        return device_lines(self.render_acl.device_config(ir, platform))

    def edge_run(self, site: dict, platform: str) -> dict:
        started = time.perf_counter()
        ir = self.edge_ir(site, platform)
        compiled = time.perf_counter()
        lines = self.render(ir, platform)
        return {"compile": compiled - started, "render": time.perf_counter() - compiled, "seconds": time.perf_counter() - started,
                "lines": lines, "rules": len(ir["rules"])}

    def aerleon_run(self, site: dict, platform: str) -> dict:
        import aerleon_policies
        policy, definitions, skipped = aerleon_policies.translate(self.edge_ir(site, platform), platform)
        seconds, output = aerleon_policies.generate(policy, definitions)
        return {"seconds": seconds, "lines": sum(aerleon_policies.line_count(text) for text in output.values()),
                "terms": len(policy["filters"][0]["terms"]), "skipped": skipped}


# --------------------------------------------------------------------------- the site play

PLAY_COMPILE = [{
    "name": "Compile the site once (benchmark)",
    "hosts": "all",
    "gather_facts": False,
    "tasks": [
        {"name": "Site compile", "warden.egress.site_compile": {"dest": "{{ bench_dest }}"}, "run_once": True, "register": "bench_site"},
        {"name": "Report", "ansible.builtin.debug": {"msg": "BENCH {{ bench_site.seconds }} {{ bench_site.targets }}"}, "run_once": True},
    ],
}]


def write_inventory(site: dict, directory: str) -> str:
    """The generated site as an Ansible inventory: group_vars/all holds the site's variables,
    each host its role and addresses; a gateway ``gw`` holds the edge. Every host is reached
    by the local connection, and no play of the benchmark connects to one."""
    import yaml
    inventory = os.path.join(directory, "inventory")
    os.makedirs(os.path.join(inventory, "group_vars"))
    hosts = {host: {"egress_role": role, "egress_addresses": site["addresses"][host]} for host, role in site["host_roles"].items()}
    hosts["gw"] = {"egress_edge": site["edge"]}
    children = {group: {"hosts": {member: None for member in members}} for group, members in site["groups"].items()}
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with open(os.path.join(inventory, "hosts.yml"), "w", encoding="utf-8") as handle:
        yaml.dump({"all": {"hosts": hosts, "children": children}}, handle, Dumper=dumper, default_flow_style=False)
    with open(os.path.join(inventory, "group_vars", "all.yml"), "w", encoding="utf-8") as handle:
        yaml.dump({**site["variables"], "ansible_connection": "local"}, handle, Dumper=dumper, default_flow_style=False)
    return inventory


def write_playbooks(directory: str) -> dict:
    """The compile-only play, and the first play of playbooks/site.yml as it stands."""
    import yaml
    with open(os.path.join(TOP, "playbooks", "site.yml"), encoding="utf-8") as handle:
        validation = yaml.safe_load(handle)[:1]
    paths = {}
    for name, plays in (("compile", PLAY_COMPILE), ("validate", validation)):
        paths[name] = os.path.join(directory, f"{name}.yml")
        with open(paths[name], "w", encoding="utf-8") as handle:
            yaml.safe_dump(plays, handle, sort_keys=False)
    return paths


# The peak RSS of the largest process under ansible-playbook (workers included).
RUSAGE_WRAPPER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
                  "sys.stderr.write('BENCH_RSS %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def run_playbook(playbook: str, inventory: str, work: str, collections: str, timeout: float, extra: dict, limit: str | None = None,
                 forks: int = 10, options: tuple = ()) -> dict:
    """Run ``playbook``; ``options`` are more ansible-playbook arguments (``--tags``, ...)."""
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    binary = binary if os.path.exists(binary) else shutil.which("ansible-playbook")
    if binary is None:
        return {"status": "error", "error": "ansible-playbook not found"}
    config = os.path.join(work, "ansible.cfg")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(f"[defaults]\ncollections_path = {collections}\nforks = {forks}\nhost_key_checking = False\n"
                     "retry_files_enabled = False\nstdout_callback = ansible.builtin.default\ninterpreter_python = auto_silent\n")
    env = {**os.environ, "ANSIBLE_CONFIG": config, "ANSIBLE_LOCAL_TEMP": os.path.join(work, "ansible-tmp")}
    command = [sys.executable, "-c", RUSAGE_WRAPPER, binary, "-i", inventory, playbook, "-e", json.dumps(extra)]
    command += (["--limit", limit] if limit else []) + list(options)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"status": "timeout"}
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        return {"status": "error", "error": (out + err)[-600:]}
    rss = re.search(r"BENCH_RSS (\d+)", err)
    action = re.search(r"BENCH ([0-9.]+) (\d+)", out)
    return {"status": "ok", "seconds": seconds, "rss_mib": int(rss.group(1)) / MIB if rss else None,
            "action_seconds": float(action.group(1)) if action else None, "targets": int(action.group(2)) if action else None}


# --------------------------------------------------------------------------- report

def show(result: dict, key: str = "seconds", unit: str = " s", digits: int = 2) -> str:
    if result.get("status") == "timeout":
        return f"did not finish in {result['limit']:.0f} s"
    if result.get("status") == "not run":
        return "not run (did not finish when smaller)"
    if result.get("status") == "error":
        return "error"
    value = result.get(key)
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def table(title: str, header: list, rows: list) -> str:
    lines = [f"\n### {title}\n", "| " + " | ".join(header) + " |", "|" + "|".join("---" for dummy in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(slow: dict, fast: dict) -> str:
    if fast.get("status") == "timeout" and slow.get("status") == "ok":
        return f"< {slow['seconds'] / fast['limit']:.2f}x"
    if fast.get("status") != "ok":
        return "-"
    if slow.get("status") == "timeout":
        return f"> {slow['limit'] / fast['seconds']:.1f}x"
    if slow.get("status") != "ok" or not fast["seconds"]:
        return "-"
    return f"{slow['seconds'] / fast['seconds']:.1f}x"


def lines_ratio(warden: dict, aerleon: dict) -> str:
    if warden.get("status") != "ok" or aerleon.get("status") != "ok" or not aerleon.get("lines"):
        return "-"
    return f"{warden['lines'] / aerleon['lines']:.2f}"


def errors(results: dict) -> list:
    return [f"{label}: {value['error']}" for label, value in results.items() if isinstance(value, dict) and value.get("status") == "error"]


# --------------------------------------------------------------------------- main

def sizes(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive: {text!r}")
    return values


def pairs(text: str) -> list[tuple[int, int]]:
    try:
        values = [tuple(int(n) for n in part.lower().split("x")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ROLESxPREFIXES: {text!r}") from None
    if not values or any(len(v) != 2 or min(v) < 1 for v in values):
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ROLESxPREFIXES: {text!r}")
    return values


def arguments(argv: list | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="Defaults: the full run (" + ", ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in FULL.items() if v is not None) + "); --quick: " + ", ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()))
    parser.add_argument("--quick", action="store_true", help="small sizes, a couple of minutes")
    parser.add_argument("--hosts", type=sizes, help="host counts to measure, comma-separated")
    parser.add_argument("--roles", type=int)
    parser.add_argument("--prefixes", type=int, help="upstream prefixes in the whole site")
    parser.add_argument("--trusted", type=sizes, help="trusted-prefix counts for the wide edge, comma-separated")
    parser.add_argument("--trusted-hosts", type=int, help="hosts of the wide-edge site (default: the smallest --hosts)")
    parser.add_argument("--play-hosts", type=sizes, help="host counts for the ansible-playbook runs (default: --hosts)")
    parser.add_argument("--segments", type=int, default=0)
    parser.add_argument("--exceptions", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, help="hosts compiled with a fresh parse each, to estimate that way's total")
    parser.add_argument("--timeout", type=float, help="seconds allowed to each pure-Python measurement")
    parser.add_argument("--play-timeout", type=float, help="seconds allowed to each ansible-playbook run")
    parser.add_argument("--acl", type=pairs, help="ROLESxPREFIXES sizes for the network_acl role in render mode, comma-separated")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: hosts, edge, trusted, aerleon, play, acl")
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (inventories, playbooks)")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, sizes(value) if key in ("hosts", "trusted", "play_hosts") and value else pairs(value) if key == "acl" else value)
    args.play_hosts = args.play_hosts or args.hosts
    args.trusted_hosts = args.trusted_hosts or min(args.hosts)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    return args


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(label: str, function: Callable[[], dict], timeout: float, results: dict) -> dict:
    result = limited(function, timeout)
    result["limit"] = timeout
    results[label] = result
    progress(f"{label}: {show(result)}")
    return result


def bench_hosts(args, warden: Warden, generate, results: dict) -> str:
    rows, previous = [], None
    for count in args.hosts:
        site = generate(count, args.roles, args.prefixes, args.seed, args.segments, args.exceptions)
        whole = measure(f"hosts {count}: site compile", partial(warden.site_compile_all, site), args.timeout, results)
        shared = measure(f"hosts {count}: compile_policy per host, site parsed once", partial(warden.per_host, site, False), args.timeout, results)
        sample = min(count, args.sample)
        cold = measure(f"hosts {count}: compile_policy per host, fresh parse each ({sample} hosts)",
                       partial(warden.per_host, site, True, sample), args.timeout, results)
        growth = "-"
        if previous and whole.get("status") == "ok" and previous[1].get("status") == "ok":
            growth = f"{whole['seconds'] / previous[1]['seconds']:.1f}x for {count / previous[0]:.0f}x hosts"
        estimate = f"{cold['per_host_ms']:.0f} ms/host, est. {cold['per_host_ms'] * count / 1000:.0f} s" if cold.get("status") == "ok" else show(cold)
        per_host = f"{1000 * whole['seconds'] / count:.2f} ms" if whole.get("status") == "ok" else "-"
        rows.append([f"{count:,}", show(whole), per_host, growth, show(shared), estimate, show(whole, "rss_mib", " MiB", 0)])
        previous = (count, whole)
    return table(f"Every host's IR ({args.roles} roles, {args.prefixes:,} upstream prefixes)",
                 ["hosts", "site compile", "per host", "growth", "compile_policy per host (parse shared)",
                  "compile_policy per host (fresh parse each, as a forked worker)", "peak RSS"], rows)


def bench_edge(args, warden: Warden, label: str, site: dict, results: dict, gave_up: dict) -> str:
    """One edge on every platform, warden and Aerleon. ``gave_up`` carries, from one size to
    the next larger one, what did not finish: it is not run again."""
    rows = []
    for platform in PLATFORMS:
        runs = {}
        for tool, function in (("warden", warden.edge_run), ("aerleon", warden.aerleon_run)):
            if tool == "aerleon" and (platform not in AERLEON_PLATFORMS or "aerleon" in args.skip):
                runs[tool] = {"status": "skipped"}
            elif (tool, platform) in gave_up:
                runs[tool] = {"status": "not run", "smaller": gave_up[(tool, platform)]}
            else:
                runs[tool] = measure(f"{label}: {tool} {platform}", partial(function, site, platform), args.timeout, results)
                if runs[tool]["status"] == "timeout":
                    gave_up[(tool, platform)] = label
        ours, theirs = runs["warden"], runs["aerleon"]
        rows.append([platform, show(ours, "compile"), show(ours, "render"), show(ours),
                     f"{ours['lines']:,}" if ours.get("status") == "ok" else "-",
                     show(theirs) if theirs.get("status") != "skipped" else "n/a", ratio(theirs, ours),
                     f"{theirs['lines']:,}" if theirs.get("status") == "ok" else "-", lines_ratio(ours, theirs)])
    header = ["platform", "warden compile", "render", "compile+render", "lines",
              f"Aerleon {AERLEON_VERSION}", "Aerleon / warden time", "Aerleon lines", "warden / Aerleon lines"]
    return table(f"Edge of the site: {label}", header, rows)


def bench_play(args, generate, work: str, collections: str, results: dict) -> str:
    rows, gave_up = [], set()
    for count in args.play_hosts:
        directory = tempfile.mkdtemp(prefix=f"play-{count}-", dir=work)
        inventory = write_inventory(generate(count, args.roles, args.prefixes, args.seed, args.segments, args.exceptions), directory)
        playbooks = write_playbooks(directory)
        row = [f"{count:,}"]
        for name in ("compile", "validate"):
            extra = {"bench_dest": os.path.join(directory, "out"), "egress_site_compile_dir": os.path.join(directory, "out")}
            if name in gave_up:
                result = {"status": "not run"}
            else:
                result = run_playbook(playbooks[name], inventory, directory, collections, args.play_timeout, extra)
            result["limit"] = args.play_timeout
            if result["status"] == "timeout":
                gave_up.add(name)
            results[f"play {count}: {name}"] = result
            progress(f"play {count}: {name}: {show(result)}")
            row += [show(result), show(result, "rss_mib", " MiB", 0)]
            if name == "compile":
                row.append(show(result, "action_seconds"))
        rows.append(row)
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return table(f"The site play's compile phase under ansible-playbook ({args.roles} roles, {args.prefixes:,} upstream prefixes, forks 10)",
                 ["hosts", "site_compile play (wall)", "its peak RSS", "of which the action", "site.yml first play (wall)", "its peak RSS"], rows)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            found = re.search(r"model name\s*:\s*(.+)", handle.read())
            cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    import platform as host_platform
    ansible = "not installed"
    if importlib.util.find_spec("ansible") is not None:
        from ansible.release import __version__ as ansible
    described = subprocess.run(["git", "-C", TOP, "describe", "--always", "--dirty"], capture_output=True, text=True, check=False)
    commit = described.stdout.strip() if described.returncode == 0 else "unknown (not a git checkout)"
    return (f"{os.cpu_count()} CPUs ({cpu}), {memory:.0f} GiB memory, {host_platform.system()} {host_platform.release()}, "
            f"Python {host_platform.python_version()}, ansible-core {ansible}, Aerleon {AERLEON_VERSION}; collection at {commit}")


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list | None = None) -> int:
    args = arguments(argv)
    enter_venv("aerleon" not in args.skip)
    from sitegen import generate, wide_edge
    work = tempfile.mkdtemp(prefix="warden-bench-")
    collections = collection_link(work)
    warden = Warden(collections)
    if "aerleon" not in args.skip:
        import aerleon_policies  # noqa: F401  (imported before the timed children fork)
        from aerleon import api  # noqa: F401
    results: dict = {"machine": machine(), "arguments": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()}}
    progress(results["machine"])
    report = [f"Machine: {results['machine']}", "Command: python3 benchmarks/site_scale.py " + " ".join(sys.argv[1:]), f"At the start: {load()}"]
    started = time.perf_counter()
    try:
        if "hosts" not in args.skip:
            report.append(bench_hosts(args, warden, generate, results))
        if "edge" not in args.skip:
            gave_up: dict = {}
            for count in args.hosts:
                site = generate(count, args.roles, args.prefixes, args.seed, args.segments, args.exceptions)
                report.append(bench_edge(args, warden, f"{count:,} hosts, {args.roles} roles, {args.prefixes:,} prefixes", site, results, gave_up))
        if "trusted" not in args.skip:
            gave_up = {}
            for count in sorted(args.trusted):
                for scattered in (False, True):
                    site = wide_edge(generate(args.trusted_hosts, args.roles, args.prefixes, args.seed, args.segments, args.exceptions), count,
                                     scattered)
                    report.append(bench_edge(args, warden, f"{count:,} {'scattered' if scattered else 'consecutive'} trusted prefixes "
                                             f"({args.trusted_hosts:,} hosts, {args.roles} roles, {args.prefixes:,} prefixes)", site, results,
                                             gave_up))
        if "play" not in args.skip:
            report.append(bench_play(args, generate, work, collections, results))
        if "acl" not in args.skip:
            from acl_role import bench_acl_role
            tools = {"write_inventory": write_inventory, "run_playbook": run_playbook, "show": show, "table": table, "progress": progress}
            report.append(bench_acl_role(args, generate, tools, work, collections, results))
    finally:
        if args.keep:
            progress(f"working directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.append(f"\nTotal benchmark time: {time.perf_counter() - started:.0f} s; at the end: {load()}")
    problems = errors(results)
    if problems:
        report.append("\nErrors:\n" + "\n".join(f"- {problem}" for problem in problems))
    print("\n".join(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
