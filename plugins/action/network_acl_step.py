# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for warden.egress.network_acl_step: the network_acl role's controller-side steps
(device form, parse sample, check, pending, bound, read ACLs), each a call into render.acl. Arguments
are validated against the module's DOCUMENTATION; an option of another step is refused."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import yaml
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.warden.egress.plugins.modules.network_acl_step import DOCUMENTATION
from ansible_collections.warden.egress.plugins.plugin_utils.model.inputs import plain
from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import ir_problem
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.apply import bound_out, pending
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.common import NAMES
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.acl_check import disagreements, sample_flows
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.devices import read_parsed
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.eos import eos_bindings, eos_session
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.ios import (
    held_to_text, ios_device_form, ios_load, ios_sample, read_ios, read_ios_object_groups, read_ios_running, read_ios_text,
)
from ansible_collections.warden.egress.plugins.plugin_utils.render.acl.junos import junos_load, junos_running_config

NAME = "warden.egress.network_acl_step"
# The options of each step, and those it cannot go without (besides step).
OPTIONS = {
    "device_form": ("platform", "rendered", "load", "bindings", "object_groups", "session", "timer", "replace"),
    "parse_sample": ("text", "sample_lines"),
    "check": ("platform", "parsed", "policy", "count", "names", "object_group_lines", "text", "sample_lines"),
    "pending": ("platform", "output"),
    "bound": ("gathered", "interface"),
    "read_acls": ("text",),
}
REQUIRED = {"device_form": ["platform", "rendered"], "parse_sample": ["text"], "check": ["platform", "policy"],
            "pending": ["platform", "output"], "bound": ["gathered"], "read_acls": ["text"]}
_KEYS = ("type", "elements", "choices", "default", "required")
ARGUMENT_SPEC = {name: {key: value for key, value in option.items() if key in _KEYS}
                 for name, option in yaml.safe_load(DOCUMENTATION)["options"].items()}
VALIDATOR = ArgumentSpecValidator(ARGUMENT_SPEC, required_if=[("step", step, names) for step, names in REQUIRED.items()])


def device_form(args: Mapping):
    rendered, loading, bindings = args["rendered"], args["load"], args["bindings"]
    if args["platform"] == "ios":
        return ios_load(rendered, bindings, args["object_groups"]) if loading else "\n".join(ios_device_form(list(rendered)))
    if args["platform"] == "eos":
        return eos_session(args["session"], rendered, bindings, args["timer"] or None, [tuple(r) for r in args["replace"] or []]) if loading \
            else "\n".join(rendered)
    return junos_load(rendered, bindings) if loading else junos_running_config(rendered)


def parse_sample(args: Mapping) -> str:
    return ios_sample(str(args["text"]), args["sample_lines"])


def _read_back(parsed: list, platform: str, group_lines, text, sample_lines: int) -> dict:
    """The ACLs to decide the flows on: the vendor's parse, or (IOS, with ``text``) the whole
    text as the collection's reader reads it, once the vendor's parse of the sample is held
    to the same reader's reading of that sample."""
    groups = None if group_lines is None else [str(line) for line in group_lines]
    if text is None:
        return read_parsed(parsed, platform, groups)
    if platform != "ios":
        raise ValueError(f"text is read on ios only, not on {platform}")
    groups = None if groups is None else read_ios_object_groups(groups)
    whole = read_ios_text(str(text), groups)
    held_to_text(read_ios(parsed, groups), read_ios_text(ios_sample(str(text), sample_lines), groups), whole)
    return whole


def check(args: Mapping) -> list:
    # plain data first: the check walks both structures thousands of times, and each item
    # access on Ansible's containers costs more than on Python's own
    parsed, policy = plain(args["parsed"] or []), plain(args["policy"])
    problem = ir_problem(policy)
    if problem:
        raise ValueError(f"policy is not a Policy IR from warden.egress.edge_policy: it {problem}")
    acls = _read_back(parsed, args["platform"], args["object_group_lines"], args["text"], args["sample_lines"])
    names = dict(args["names"] or NAMES)
    missing = [name for family, name in names.items() if not acls.get((family, name))]
    if missing:
        raise ValueError(f"the parsed configuration has no entries in {', '.join(missing)}")
    return disagreements(policy, acls, sample_flows(policy, args["count"]), names)


def waiting(args: Mapping) -> list:
    return pending(args["platform"], args["output"])


def bound(args: Mapping):
    gathered = args["gathered"]
    if isinstance(gathered, str):
        gathered = eos_bindings(gathered)
    if not isinstance(gathered, list) or not all(isinstance(item, dict) for item in gathered):
        raise ValueError(f"gathered is not the gathered list of an *_acl_interfaces module: {str(gathered)[:200]!r}")
    return gathered if args["interface"] is None else bound_out(gathered, args["interface"])


def read_acls(args: Mapping) -> list:
    return read_ios_running(str(args["text"]))


# Each step: what it returns, under which key.
STEPS: dict[str, tuple[str, Callable]] = {
    "device_form": ("form", device_form),
    "parse_sample": ("sample", parse_sample),
    "check": ("disagree", check),
    "pending": ("pending", waiting),
    "bound": ("bound", bound),
    "read_acls": ("gathered", read_acls),
}


def run_step(args: Mapping) -> dict:
    """Validate ``args`` (the task's arguments) and run their step: ``{key: value}``, the key
    the step returns its value under. A bad argument or a refusal of the step raises
    AnsibleActionFail naming the step."""
    step = args.get("step")
    if isinstance(step, str) and step in OPTIONS:
        foreign = sorted(name for name in args if name != "step" and name not in OPTIONS[step])
        if foreign:
            raise AnsibleActionFail(f"{NAME}: step {step} takes no {', '.join(foreign)} (its options: {', '.join(OPTIONS[step])})")
    result = VALIDATOR.validate(dict(args))
    if result.error_messages:
        raise AnsibleActionFail(f"{NAME}: {'; '.join(result.error_messages)}")
    null = [name for name in REQUIRED[step] if result.validated_parameters.get(name) is None]
    if null:
        raise AnsibleActionFail(f"{NAME}: step {step} needs {', '.join(null)}, given as null")
    key, function = STEPS[step]
    try:
        return {key: function(result.validated_parameters)}
    except (KeyError, ValueError, TypeError) as exc:
        raise AnsibleActionFail(f"{NAME}: {step}: {exc}") from None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result.update(run_step(self._task.args), changed=False)
        return result
