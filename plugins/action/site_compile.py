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

from ansible_collections.warden.egress.plugins.plugin_utils.compiler import HAS_NETADDR
from ansible_collections.warden.egress.plugins.plugin_utils.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.inventory import POLICY_VARIABLES, host_addresses
from ansible_collections.warden.egress.plugins.plugin_utils.site_compile import Progress, compile_site, targets

READ = POLICY_VARIABLES + ("egress_addresses", "ansible_host")
STALE_SECONDS = 86400

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
        variables = self._read(hostvars, hosts)
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
        result.update(changed=False, dir=run_dir, targets=count, policy_warnings=warnings, seconds=round(time.monotonic() - started, 3))
        return result

    def _read(self, hostvars, hosts: list) -> dict:
        """Each host's egress_* variables, read without templating what holds no template
        (templating a 5,000-prefix upstream list once per host is what makes a large site
        slow); values that do hold a template are templated in the host's own context."""
        checked: dict[int, tuple] = {}
        out = {}
        for host in hosts:
            raw = hostvars.raw_get(host)
            values = {}
            for name in READ:
                if name not in raw:
                    continue
                value = raw[name]
                seen = checked.get(id(value))
                if seen is None or seen[0] is not value:
                    seen = checked[id(value)] = (value, self._templar.is_template(value))
                values[name] = hostvars[host][name] if seen[1] else value
            out[host] = values
        return out


def _remove_stale(base: str) -> None:
    """Earlier runs' directories older than a day (a run's own is removed by the next runs)."""
    now = time.time()
    for name in os.listdir(base):
        path = os.path.join(base, name)
        if name.startswith("site-") and os.path.isdir(path) and now - os.path.getmtime(path) > STALE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
