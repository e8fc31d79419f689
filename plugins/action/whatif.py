# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for warden.egress.whatif: compare the current inventory with a proposed one, on the controller."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import HAS_NETADDR
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.whatif import annotate, compare, summary, whatif_markdown
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.whatif_inventory import InputError, at_ref, load, source_paths

COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
LEARNED_KEYS = ("reporter", "iif", "src", "dst", "proto", "dport")
# from_vars: each option and the play variable it is read from, as given (never templated)
FROM_VARS = {"proposed": "whatif_proposed", "proposed_ref": "whatif_proposed_ref", "learned": "whatif_learned", "dest": "whatif_dest"}


def _inside(path: str, top: str) -> bool:
    path, top = os.path.realpath(path), os.path.realpath(top)
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def default_dest(current: list[str], cwd: str) -> str | None:
    """``whatif.md`` beside the current inventory, else in ``cwd``; never inside the collection."""
    for base in ([current[0] if os.path.isdir(current[0]) else os.path.dirname(current[0])] if current else []) + [cwd]:
        if not _inside(base, COLLECTION):
            return os.path.join(base, "whatif.md")
    return None


def learned_from(path: object) -> list[dict]:
    """The learned flows of a learn result (the ``learned.json`` the learn role writes)."""
    if not isinstance(path, str) or not path:
        raise InputError(f"learned {path!r}: expected the path of a learn result (learned.json)")
    full = os.path.abspath(os.path.expanduser(path))
    try:
        with open(full, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InputError(f"learned {path!r}: cannot read it as a learn result: {exc}") from None
    flows = data.get("flows") if isinstance(data, dict) else None
    if not isinstance(flows, list) or not all(isinstance(f, dict) and all(k in f for k in LEARNED_KEYS) for f in flows):
        raise InputError(f"learned {path!r}: not a learn result (no list of flows with {', '.join(LEARNED_KEYS)})")
    return flows


def _plain(value: object) -> object:
    """A variable's value as plain data: text stays text (``str()`` drops any tag a template
    engine reads), lists and mappings are copied, nothing is templated."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def args_from_vars(args: Mapping, task_vars: Mapping) -> dict:
    """The task's ``args`` with ``from_vars`` resolved: the options read from the ``whatif_``
    variables as they were given (``-e``, inventory), never templated. A git ref or path is
    text from whoever proposes the change: ``{{ }}`` in it must not run on the controller."""
    out = {k: v for k, v in args.items() if k != "from_vars"}
    if not args.get("from_vars"):
        return out
    given = sorted(k for k in FROM_VARS if out.get(k) is not None)
    if given:
        raise InputError(f"from_vars reads {', '.join(FROM_VARS[k] for k in given)} from the play's variables: "
                         f"do not give {', '.join(given)} as well")
    for option, variable in FROM_VARS.items():
        if task_vars.get(variable) is not None:
            out[option] = _plain(task_vars[variable])
    return out


def compare_inventories(args: Mapping, inventory_sources: list) -> dict:
    """The what-if of the task's ``args`` (``inventory_sources``: the play's, the default current
    inventory): ``{result, dest}``; bad input raises InputError naming the option and value."""
    proposed, ref = args.get("proposed"), args.get("proposed_ref")
    if proposed is not None and ref is not None:
        raise InputError(f"give proposed or proposed_ref, not both (proposed={proposed!r}, proposed_ref={ref!r})")
    if proposed is None and ref is None:
        raise InputError("give the proposed inventory: proposed (its path) or proposed_ref (a git ref of the repository holding this one)")
    raw_current = args.get("current")
    if raw_current is None:
        raw_current = [s for s in inventory_sources if isinstance(s, str) and "," not in s]
    current = source_paths("current inventory", raw_current)
    dest = args.get("dest")
    if dest is None:
        dest = default_dest(current, os.getcwd())
        if dest is None:
            raise InputError(f"dest: the inventory and the current directory are inside the collection ({COLLECTION}): give dest")
    elif not isinstance(dest, str) or not dest:
        raise InputError(f"dest {dest!r}: expected a file path on the controller")
    dest = os.path.abspath(os.path.expanduser(dest))
    if _inside(dest, COLLECTION):
        raise InputError(f"dest {dest!r}: is inside the collection ({COLLECTION}); write the report beside the inventory")
    learned = learned_from(args["learned"]) if args.get("learned") is not None else []
    today = datetime.date.today()
    before = load("current inventory", current)
    if ref is not None:
        with at_ref(ref, current) as paths:
            after = load(f"proposed_ref {ref!r} at", paths)
        compared = f"git ref {ref} (the same inventory paths)"
    else:
        paths = source_paths("proposed", proposed)
        after = load("proposed", paths)
        compared = ", ".join(paths)
    try:
        result = compare(before, after, learned, today=today)
    except PolicyError as exc:
        where = ", ".join(current) if exc.side == "current" else compared
        raise InputError(f"{exc.side} inventory ({where}) does not compile: warden.egress: {exc.label} {exc.host}: {exc}") from None
    result["compared"] = {"current": ", ".join(current), "proposed": compared}
    annotate(result, before["host_vars"], after["host_vars"])
    return {"result": result, "dest": dest}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("current", "proposed", "proposed_ref", "learned", "dest", "from_vars"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if not HAS_NETADDR:
            raise AnsibleActionFail("warden.egress.whatif needs the Python package netaddr on the controller")
        try:
            args = args_from_vars(self._task.args, task_vars or {})
            outcome = compare_inventories(args, task_vars.get("ansible_inventory_sources") or [])
        except InputError as exc:
            raise AnsibleActionFail(f"warden.egress.whatif: {exc}") from None
        markdown = whatif_markdown(outcome["result"])
        if not self._task.check_mode:
            os.makedirs(os.path.dirname(outcome["dest"]) or ".", exist_ok=True)
            with open(outcome["dest"], "w", encoding="utf-8") as handle:
                handle.write(markdown)
        lines = summary(outcome["result"])
        result.update(changed=False, dest=outcome["dest"], flows=outcome["result"]["flows"], differ=len(outcome["result"]["changed"]),
                      changed_flows=outcome["result"]["changed"], policies_added=outcome["result"]["policies_added"],
                      policies_removed=outcome["result"]["policies_removed"], summary=lines, markdown=markdown)
        return result
