"""Why a confirmed apply was not confirmed: the reason the Linux role gives
(roles/linux/tasks/not_confirmed.yml, through warden.egress.unconfirmed_reason) draws a
conclusion only from what settles it. The controller's times are seconds since just before
the load task began; the host's (since_load, rollback_seconds) seconds since the load."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field

import pytest
import yaml
from netns import TOP

from ansible_collections.warden.egress.plugins.module_utils._apply_outcome import unconfirmed_reason


def too_late(since: float, rollback: float) -> dict:
    return {"failed": True, "rolled_back": True, "rollback_seconds": rollback, "since_load": since, "msg": "too late: the host put ..."}


@dataclass
class Case:
    name: str
    observed: dict
    says: str
    never: tuple = field(default=())


CASES = [
    # The first load cuts the SSH connection it was made over: its result arrives with TCP's
    # retransmission after the rollback (20.2 s), 29.7 s after the load task began.
    Case("cut", {"window": 20, "unconfirmed": "", "load_returned": 29.7, "reconnected": 30.5, "asked": 30.6, "answered": 31.2,
                 "confirm": too_late(30.2, 20.2)},
         "the connection the rules were loaded over stopped answering until the host had rolled them back: the load task returned 29.7 s"),
    # sshd's UseDNS with DNS denied: the load returns at once, the new login hangs until after
    # the rollback; raising the window would only delay the same rollback.
    Case("new logins hang", {"window": 20, "unconfirmed": "", "load_returned": 0.8, "reconnected": 24.0, "asked": 24.1, "answered": 24.6,
                             "confirm": too_late(23.8, 20.1)},
         "new connections did not complete under the new rules: the first one, opened 0.8 s after the load began, took 23.2 s, past the 20-second window",
         ("raise linux_egress_confirm_timeout", "stopped answering")),
    # A slow load (21 s as the controller saw it), then a confirmation the host refused: its
    # window had passed. The result came back before the rollback, so nothing was cut.
    Case("slow load", {"window": 20, "unconfirmed": "", "load_returned": 21.0, "reconnected": 22.0, "asked": 22.1, "answered": 22.6,
                       "confirm": too_late(21.3, 21.3)},
         "no confirmation reached the host within the 20-second window (the load task returned 21.0 s after it began",
         ("stopped answering", "cut", "did not complete")),
    # A quick reconnection, then slow probes: here a longer window does help.
    Case("slow probes", {"window": 20, "unconfirmed": "", "load_returned": 0.8, "reconnected": 2.5, "asked": 21.4, "answered": 22.0,
                         "confirm": too_late(21.0, 21.0)},
         "the confirmation came too late, 21.0 s after the load, after the 20-second window, though a new connection had completed 2.5 s"
         " after the load began (raise linux_egress_confirm_timeout)"),
    Case("no new connection", {"window": 20, "unconfirmed": "the controller could not open a new connection to the host: denied",
                               "load_returned": 0.8, "reconnected": 5.0, "confirm": {"skipped": True}},
         "the controller could not open a new connection to the host: denied"),
    Case("confirmation failed", {"window": 20, "unconfirmed": "", "load_returned": 0.8, "reconnected": 2.0, "asked": 2.1, "answered": 2.9,
                                 "confirm": {"failed": True, "msg": "could not stop the rollback (x); not confirmed"}},
         "the confirmation failed: could not stop the rollback (x); not confirmed"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_reason_concludes_only_what_the_times_settle(case: Case):
    why = unconfirmed_reason(case.observed)
    assert why.startswith(case.says) and not why.endswith(".") and "\n" not in why, why
    assert not any(word in why for word in case.never), why


@pytest.mark.parametrize("bad", [{"window": 20, "unconfirmed": "", "confirm": too_late(3.0, 3.0)},
                                 {"window": 20, "unconfirmed": "", "load_returned": "soon", "confirm": too_late(3.0, 3.0)}])
def test_a_missing_or_bad_time_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="load_returned"):
        unconfirmed_reason(bad)


def test_the_role_gives_these_reasons():
    """The role's own expression (not_confirmed.yml), rendered by Ansible for each case."""
    with open(os.path.join(TOP, "roles", "linux", "tasks", "not_confirmed.yml"), encoding="utf-8") as handle:
        tasks = yaml.safe_load(handle)
    facts = next(task["ansible.builtin.set_fact"] for task in tasks if "__linux_egress_why" in task.get("ansible.builtin.set_fact", {}))
    expression = facts["__linux_egress_why"]
    now = time.time()
    plays = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": case.name, "ansible.builtin.debug": {"msg": expression}, "vars": {
            "linux_egress_confirm_timeout": case.observed["window"], "__linux_egress_unconfirmed": case.observed["unconfirmed"],
            "__linux_egress_load_seconds": case.observed["load_returned"], "__linux_egress_reconnect_seconds": case.observed["reconnected"],
            "__linux_egress_confirmed": case.observed["confirm"],
            # 'answered' is now() when the expression is rendered: the load began that long before
            "__linux_egress_loaded_at": now - case.observed.get("answered", 0.0),
            **({"__linux_egress_asked_seconds": case.observed["asked"]} if "asked" in case.observed else {})}}
        for case in CASES]}]
    path = os.path.join(TOP, ".build", "unconfirmed_reason_play.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(plays, handle)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_STDOUT_CALLBACK": "json",
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    done = subprocess.run(["ansible-playbook", "-c", "local", "-i", "localhost,", path], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = {task["task"]["name"]: task["hosts"]["localhost"]["msg"] for task in json.loads(done.stdout)["plays"][0]["tasks"]}
    wrong = {case.name: said[case.name] for case in CASES
             if not said[case.name].startswith(case.says) or any(word in said[case.name] for word in case.never)}
    assert not wrong, json.dumps(wrong, indent=1)
