# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for warden.egress.explain_flow: judge one flow by every policy on its path, on the controller."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import HAS_NETADDR
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.explain import QUESTION, explain_site, parse_flow
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import inventory_inputs


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(QUESTION)
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if not HAS_NETADDR:
            raise AnsibleActionFail("warden.egress.explain_flow needs the Python package netaddr on the controller")
        args = self._task.args
        try:
            flow = parse_flow(args)
        except PolicyError as exc:
            raise AnsibleActionFail(f"warden.egress.explain: {exc}") from None
        hostvars, groups = task_vars["hostvars"], task_vars["groups"]
        host_vars, addresses = inventory_inputs(hostvars, list(groups.get("all", [])))
        try:
            result.update(explain_site(host_vars, addresses, groups, flow))
        except PolicyError as exc:
            where = f"{exc.label} {exc.host}: " if getattr(exc, "host", None) else ""
            raise AnsibleActionFail(f"warden.egress.explain: {where}{exc}") from None
        result["changed"] = False
        return result
