"""The network_acl role in render mode under ansible-playbook: playbooks/site.yml limited to
one router of each platform (IOS, EOS, Junos) on a generated site of ROLES roles (one host
each) and PREFIXES upstream prefixes. The whole run counts: the site compile, then the role
rendering through the vendor's resource module, reading its rendering back and checking it
against the policy, and writing the review files. No device is contacted."""

from __future__ import annotations

import os
import shutil
import tempfile

import yaml

# (inside, outside) interface and the connection each platform's role expects
ROUTERS = {
    "ios": ("GigabitEthernet0/0", "GigabitEthernet0/1", "cisco.ios.ios", "ansible.netcommon.network_cli"),
    "eos": ("Ethernet1", "Ethernet2", "arista.eos.eos", "ansible.netcommon.network_cli"),
    "junos": ("ge-0/0/0", "ge-0/0/1", "junipernetworks.junos.junos", "ansible.netcommon.netconf"),
}


def add_routers(inventory: str, edge: dict) -> None:
    """One router per platform in render mode, holding the site's edge, in group ``routers``."""
    path = os.path.join(inventory, "hosts.yml")
    with open(path, encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    routers = {}
    for platform, (inside, outside, network_os, connection) in ROUTERS.items():
        routers[f"edge-{platform}"] = {
            "egress_platform": platform, "ansible_network_os": network_os, "ansible_connection": connection,
            "ansible_host": "198.51.100.250", "network_acl_mode": "render",
            "egress_edge": {**edge, "inside": [{**edge["inside"][0], "interface": inside}], "outside": outside, "conn_limit": False},
        }
    data["all"]["children"]["routers"] = {"hosts": routers}
    with open(path, "w", encoding="utf-8") as handle:
        yaml.dump(data, handle, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), default_flow_style=False)


def rendered_lines(directory: str, platform: str) -> int:
    total = 0
    for name in os.listdir(directory):
        if name.startswith(f"edge-{platform}.acls"):
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                total += sum(1 for line in handle if line.strip())
    return total


def bench_acl_role(args, generate, tools: dict, work: str, collections: str, results: dict) -> str:
    """``tools``: write_inventory, run_playbook, show, table, progress (from site_scale)."""
    rows = []
    for roles, prefixes in args.acl:
        directory = tempfile.mkdtemp(prefix=f"acl-{roles}x{prefixes}-", dir=work)
        site = generate(roles, roles, prefixes, args.seed)
        inventory = tools["write_inventory"](site, directory)
        add_routers(inventory, site["edge"])
        for platform in ROUTERS:
            out = os.path.join(directory, f"acls-{platform}")
            extra = {"egress_site_compile_dir": os.path.join(directory, "out"), "network_acl_render_dir": out}
            playbook = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "playbooks", "site.yml")
            result = tools["run_playbook"](playbook, inventory, directory, collections, args.play_timeout, extra, limit=f"edge-{platform}")
            result["limit"] = args.play_timeout
            if result["status"] == "ok":
                result["lines"] = rendered_lines(out, platform)
            results[f"network_acl {roles}x{prefixes} {platform}"] = result
            tools["progress"](f"network_acl {roles} roles x {prefixes} prefixes, {platform}: {tools['show'](result)}")
            rows.append([f"{roles:,} × {prefixes:,}", platform, tools["show"](result), f"{result['lines']:,}" if "lines" in result else "-",
                         tools["show"](result, "rss_mib", " MiB", 0)])
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return tools["table"]("The network_acl role in render mode (site.yml --limit one router; roles × upstream prefixes, one host per role)",
                          ["roles × prefixes", "platform", "site.yml (wall)", "rendered lines", "peak RSS"], rows)
