# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the one lifecycle of the apply modules, behind a driver per backend.

``run()`` is the whole of nft_apply's, iptables_apply's and pf_apply's ``main()``. A run:

1. checks the arguments, then the rules, before anything is locked (``Driver.refuse()``);
2. takes the apply lock (``_apply_lock``); with ``confirm: true`` confirms the waiting load and
   exits, otherwise waits until no load waits for confirmation (``_apply_confirm``);
3. reads what is loaded (``Driver.read()``) and the record of what was applied (``_apply_state``);
   with ``state: absent`` removes it all (``Driver.remove()``) and exits;
4. plans; stops there in check mode or when neither the ruleset nor a boot file differs;
5. stages the boot files that differ (``_apply_files``); when only they differ, renames them
   into place and exits;
6. saves what a rollback needs (``Driver.save()``), loads (``Driver.load()``), then either arms
   the rollback (``confirm_timeout``: the record and the boot files wait for the confirmation)
   or writes the record and renames the boot files into place, loading the previous rules
   again (``Driver.roll_back()``) should that fail.

A ``Driver`` says what differs between the backends: its own options (the rules, the name of
what it owns, where the boot files go), how it reads, checks, loads and puts back a ruleset,
and what "nothing loaded" looks like. Its defaults suit a backend with one rules file
(``content``) and one boot file (``path``).
"""

from __future__ import annotations

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.warden.egress.plugins.module_utils import _apply_confirm as confirming
from ansible_collections.warden.egress.plugins.module_utils import _apply_files as files
from ansible_collections.warden.egress.plugins.module_utils import _apply_lock as lock
from ansible_collections.warden.egress.plugins.module_utils import _apply_state as state

# The options every apply module has, after its own.
OPTIONS = {
    "state_dir": {"type": "path", "default": "/var/lib/warden_egress"},
    "lock_timeout": {"type": "int", "default": 120},
    "confirm_timeout": {"type": "int", "default": 0},
    "confirm": {"type": "bool", "default": False},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}


class Driver:
    """What one backend does differently. Subclasses set the class attributes, and fill in
    ``__init__()`` and the methods that raise NotImplementedError."""

    # The options that carry the rules (a load needs all of them), and the message when one is missing.
    RULES: tuple = ("content",)
    MISSING = ""
    # The option that names what the module owns, the names it takes, and what another name is not.
    NAME: tuple = ("", "", "")

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        # Set by the subclass: the owner name of its files in the state directory, what it
        # owns in words (messages, the rollback's note), the name in the diff's headers, and
        # the result keys that say what it manages.
        self.owner = self.label = self.title = ""
        self.names: dict = {}

    def check_name(self) -> str | None:
        """The problem with the name of what the module owns, or None."""
        option, pattern, what = self.NAME
        if not re.fullmatch(pattern, self.params[option]):
            return f"{option}: {self.params[option]!r} is not {what}"
        return None

    def find_tools(self) -> None:
        """Find the commands the backend runs (``get_bin_path(..., required=True)``)."""
        raise NotImplementedError

    # What is loaded
    def read(self, result: dict) -> str | None:
        """What is loaded now, as the record keeps it (None: nothing is)."""
        raise NotImplementedError

    def unload(self, result: dict) -> None:
        """``state: absent``: take the ruleset out of the kernel (it is there); fail the run if
        that fails."""
        raise NotImplementedError

    def remove(self, result: dict, record: dict | None, now: str | None, record_path: str) -> None:
        """``state: absent``: the ruleset, the boot file and the record go; exits."""
        state.remove_all(self.module, result, record, now, record_path, self.params["path"], lambda: self.unload(result))

    # What is wanted
    def content(self) -> str:
        """The text whose hash the record keeps."""
        return self.params["content"]

    def boot_files(self) -> list:
        """``[(path, text, mode), ...]``: the boot files this load writes."""
        path = self.params["path"]
        return [(path, self.params["content"], 0o644)] if path else []

    def refuse(self) -> str | None:
        """Why the rules given may not be loaded (the whole message), or None. Runs before the
        lock is taken, so it must not depend on what is loaded."""
        problem = self.check(self.params["content"])
        if problem:
            return f"content: refusing to load: {problem}"
        return self.test(self.params["content"])

    def check(self, content: str) -> str | None:
        """What is wrong with ``content`` on the face of it, or None."""
        raise NotImplementedError

    def test(self, content: str) -> str | None:
        """What the backend's own tool says against ``content`` (the whole message), or None."""
        raise NotImplementedError

    # The load
    def save(self, waits: bool, record: dict | None) -> str | None:
        """Before the load: keep what the rollback and ``roll_back()`` need to put back. When
        ``waits`` (a rollback will be armed), also say why that could not be loaded again (the
        whole message), else None."""
        raise NotImplementedError

    def load(self, result: dict) -> str:
        """Load the rules; on failure fail the run, with what was done about it. Returns what
        is loaded now, as ``read()`` does."""
        raise NotImplementedError

    def rollback_plan(self) -> dict:
        """What the armed rollback puts back (``_apply_rollback``'s ``restore`` part of a plan)."""
        raise NotImplementedError

    def roll_back(self) -> str:
        """Load the previous rules again, now; say what was done, in words."""
        raise NotImplementedError

    def record_extra(self) -> dict:
        """What else the record keeps."""
        return {}

    def on_confirm(self) -> dict:
        """What else the plan keeps for the confirmation (``confirmed()`` reads it)."""
        return {}

    def confirmed(self, plan: dict) -> None:
        """After ``confirm: true`` kept a load."""

    def committed(self) -> None:
        """After a load without confirmation was recorded and its boot files renamed into place."""


def check_arguments(module: AnsibleModule, driver: Driver) -> bool:
    """Fail the run, with the message alone, on arguments that do not go together; True when
    the run loads rules."""
    params = module.params
    problem = driver.check_name()
    if problem:
        module.fail_json(msg=problem)
    for name in ("lock_timeout", "confirm_timeout"):
        if params[name] < 0:
            module.fail_json(msg=f"{name}: {params[name]} must be 0 or more seconds")
    given = [key for key in driver.RULES if params[key] is not None]
    if params["confirm"] and (given or params["state"] != "present"):
        module.fail_json(msg=f"confirm: true confirms the pending load; give it without {', '.join(driver.RULES)} and without state: absent")
    loads = params["state"] == "present" and not params["confirm"]
    if loads and len(given) < len(driver.RULES):
        module.fail_json(msg=driver.MISSING)
    return loads


def run(driver_class: type, options: dict) -> None:
    """The module: ``options`` are the backend's own (``OPTIONS`` follow), ``driver_class`` a
    ``Driver``. Exits."""
    module = AnsibleModule(argument_spec={**options, **OPTIONS}, supports_check_mode=True)
    params = module.params
    driver = driver_class(module)
    loads = check_arguments(module, driver)
    driver.find_tools()
    result = {"changed": False, **driver.names, "ruleset_changed": False, "file_changed": False, "pending_confirmation": False}
    if loads:
        problem = driver.refuse()
        if problem:
            module.fail_json(msg=problem, **result)

    state_dir = params["state_dir"]
    fd = lock.hold(module, state_dir, params["lock_timeout"], result)
    pending = confirming.Pending(module, state_dir, driver.owner, driver.label)
    if params["confirm"]:
        confirming.confirm(module, pending, result, after=driver.confirmed)
    if not module.check_mode:
        confirming.settle(module, fd, state_dir, params["lock_timeout"], result)
    record_path = os.path.join(state_dir, f"{driver.owner}.json")
    record = state.read_record(record_path)
    now = driver.read(result)
    if params["state"] == "absent":
        driver.remove(result, record, now, record_path)

    content = driver.content()
    boot = driver.boot_files()
    differ = [item for item in boot if state.read_text(item[0]) != item[1]]
    state.plan(module, result, record, content, now, bool(differ), driver.title)
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)
    staged = files.stage_all(module, result, differ)
    if not result["ruleset_changed"]:
        files.finish(module, result, staged)
        module.exit_json(**result)

    waits = params["confirm_timeout"] > 0
    problem = driver.save(waits, record)
    if problem:
        module.fail_json(msg=problem, **files.unchanged(result))
    loaded = driver.load(result)
    if waits:
        on_confirm = {"boot": [{"path": path, "text": text, "mode": mode} for path, text, mode in boot],
                      "record": {"path": record_path, "content": content, "listing": loaded, "extra": driver.record_extra()}}
        pending.arm(params["confirm_timeout"], driver.rollback_plan(), {**on_confirm, **driver.on_confirm()}, result)
        module.exit_json(**result)
    files.finish(module, result, staged, write_record=lambda: state.write_record(record_path, content, loaded, **driver.record_extra()),
                 roll_back=driver.roll_back, undo_record=lambda: state.put_back_record(record_path, record))
    driver.committed()
    module.exit_json(**result)
