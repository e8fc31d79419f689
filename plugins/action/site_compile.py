# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for warden.egress.site_compile: compile the whole site once, on the controller."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import HAS_NETADDR
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import POLICY_VARIABLES, host_addresses, read_values
from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import Progress, compile_site, targets

READ = POLICY_VARIABLES + ("egress_addresses", "ansible_host")
STALE_SECONDS = 86400
# The apply play of each platform (playbooks/site.yml).
APPLY_PLAYS = {"nftables": "linux", "iptables": "linux", "pf": "pf", "ios": "routers", "eos": "routers", "junos": "routers"}

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dest", "hosts"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        started = time.monotonic()
        if not HAS_NETADDR:
            raise AnsibleActionFail("warden.egress.site_compile needs the Python package netaddr on the controller")
        hostvars, groups = task_vars["hostvars"], task_vars["groups"]
        hosts = self._task.args.get("hosts")
        hosts = list(groups.get("all", [])) if hosts is None else list(hosts)
        dest = self._task.args.get("dest")
        if not isinstance(dest, str) or not dest:
            raise AnsibleActionFail("warden.egress.site_compile: dest must be a controller directory")
        variables, verifying = self._read(hostvars, hosts)
        base = os.path.abspath(os.path.expanduser(dest))
        os.makedirs(base, mode=0o700, exist_ok=True)
        _remove_stale(base)
        run_dir = tempfile.mkdtemp(prefix="site-", dir=base)
        count, warnings = 0, {}
        progress = Progress(len(targets(variables)), display.display)
        progress.begin(time.monotonic() - started)
        try:
            for host, irs in compile_site(variables, host_addresses(variables), groups):
                path = os.path.join(run_dir, f"{host}.json")
                with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(irs, separators=(",", ":")))
                count += 1
                progress.step(count)
                found = [w for ir in irs for w in ir["warnings"]]
                if found:
                    warnings[host] = found
        except PolicyError as exc:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise AnsibleActionFail(f"warden.egress: {exc.label} {exc.host}: {exc}") from None
        plays, canaries = _plays(variables, verifying, task_vars.get("ansible_play_hosts_all") or hosts)
        lines = [f"warden.egress: {host}: {warning}" for host, found in warnings.items() for warning in found]
        result.update(changed=False, dir=run_dir, targets=count, policy_warnings=warnings, warning_lines=lines, plays=plays, canaries=canaries,
                      seconds=round(time.monotonic() - started, 3))
        return result

    def _read(self, hostvars, hosts: list) -> tuple[dict, set]:
        """Each host's egress_* variables, read without templating what holds no template
        (templating a 5,000-prefix upstream list once per host is what makes a large site
        slow); values that do hold a template are templated in the host's own context. And
        the hosts that have egress_verify_flows."""
        checked: dict[int, tuple] = {}
        out, verifying = {}, set()
        for host in hosts:
            raw = hostvars.raw_get(host)
            if "egress_verify_flows" in raw:
                verifying.add(host)
            out[host] = read_values(raw, READ, lambda name, value, host=host: hostvars[host][name], checked)
        return out, verifying


def _plays(variables: dict, verifying: set, play_hosts: list) -> tuple[dict, dict]:
    """The hosts of each play of site.yml, in the play's order: ``linux``, ``pf`` and
    ``routers`` (hosts with egress_role or egress_edge, by egress_platform) and ``verify``
    (hosts with egress_verify_flows); and the canaries of each apply play (its first host
    of each egress_role and platform, gateways with only egress_edge as role ``edge``).
    Lists, not groups: adding 10,000 hosts to a group takes a task per host."""
    plays: dict[str, list] = {"linux": [], "pf": [], "routers": [], "verify": []}
    canaries: dict[str, list] = {"linux": [], "pf": [], "routers": []}
    keys = set()
    for host in play_hosts:
        values = variables.get(host)
        if values is None:
            continue
        if "egress_role" in values or "egress_edge" in values:
            platform = values.get("egress_platform", "nftables")
            play = APPLY_PLAYS.get(platform) if isinstance(platform, str) else None
            if play is not None:
                plays[play].append(host)
                key = (platform, str(values["egress_role"]) if "egress_role" in values else "edge")
                if key not in keys:
                    keys.add(key)
                    canaries[play].append(host)
        if host in verifying:
            plays["verify"].append(host)
    return plays, canaries


def _remove_stale(base: str) -> None:
    """Earlier runs' directories older than a day (a run's own is removed by the next runs)."""
    now = time.time()
    for name in os.listdir(base):
        path = os.path.join(base, name)
        if name.startswith("site-") and os.path.isdir(path) and now - os.path.getmtime(path) > STALE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
