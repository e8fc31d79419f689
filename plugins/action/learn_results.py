# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for warden.egress.learn_results: learn from the gathered kernel log records and write
the results on the controller, in one step.

The analysis is the ``learn_analysis`` filter's (``learn.suggest.learn``, here with the hosts'
resolver records too) and the replay the ``learn_whatif`` filter's own function; what this adds
is that their results, which grow with the flows seen, stay plain Python data here: they are
never made Ansible variables, templated, or handed from one task to the next. Only a summary
is returned."""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.warden.egress.plugins.filter.learn_whatif import learn_whatif
from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import inventory_inputs
from ansible_collections.warden.egress.plugins.plugin_utils.learn.report import report_markdown, suggestion_yaml
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import learn
from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError


def headline(report: str) -> str:
    """The report's first bold line: what enforcing would do."""
    return next((line for line in report.splitlines() if line.startswith("**")), "")


def results_files(analysis: dict, whatif: dict | None) -> dict[str, str]:
    """The files written beside each other: name -> text."""
    learned = {key: value for key, value in analysis.items() if key not in ("report", "suggestion_yaml")}
    files = {
        "report.md": analysis["report"],
        "suggestion.yml": analysis["suggestion_yaml"],
        # as Ansible's to_nice_json writes it
        "learned.json": json.dumps(learned, indent=4, sort_keys=True, separators=(",", ": "), ensure_ascii=False),
    }
    if whatif is not None:
        files["whatif.md"] = whatif["markdown"]
    return files


def unread(analysis: dict) -> str | None:
    """Why nothing was learned when no host's log could be read (None when one was)."""
    hosts = analysis["hosts"]
    if any(not state.get("failed") for state in hosts.values()):
        return None
    return ("warden.egress.learn read no host's kernel log, so nothing was learned: "
            + "; ".join(f"{host} ({state['failed']})" for host, state in hosts.items()))


def analyse(hostvars, hosts: list, groups, logs: dict, resolver_logs: dict | None) -> dict:
    """The analysis, with its report and YAML (as ``learn_analysis`` gives them)."""
    host_vars, addresses = inventory_inputs(hostvars, hosts)
    try:
        result = learn(host_vars, addresses, groups, logs, resolver_logs=resolver_logs)
    except PolicyError as exc:
        raise AnsibleActionFail(f"warden.egress.learn_results: {getattr(exc, 'label', 'site')} {getattr(exc, 'host', '')}: {exc}") from None
    result["report"] = report_markdown(result)
    result["suggestion_yaml"] = suggestion_yaml(result)
    return result


def resolver_of(value: object) -> object | None:
    """A host's registered resolver records; None when the task was skipped for it (its
    kernel log was not read, or names are not learned)."""
    if isinstance(value, dict) and value.get("skipped"):
        return None
    return value


def write(directory: str, files: dict[str, str]) -> list[str]:
    """Write each file whose text differs; the names of those written."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    written = []
    for name, text in files.items():
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as handle:
                if handle.read() == text:
                    continue
        except FileNotFoundError:
            pass
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o644)
        written.append(name)
    return written


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("hosts", "records", "resolver_records", "output_dir", "whatif"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec={
            "hosts": {"type": "list", "elements": "str", "required": True},
            "records": {"type": "str", "required": True},
            "resolver_records": {"type": "str"},
            "output_dir": {"type": "path", "required": True},
            "whatif": {"type": "bool", "default": True},
        })
        hostvars, groups = task_vars["hostvars"], task_vars["groups"]
        logs = {host: hostvars[host].get(args["records"], {"failed": "its log was not read"}) for host in args["hosts"]}
        resolver = None
        if args["resolver_records"]:
            given = {host: resolver_of(hostvars[host].get(args["resolver_records"], {"failed": "its resolver log was not read"}))
                     for host in args["hosts"]}
            resolver = {host: value for host, value in given.items() if value is not None}
        analysis = analyse(hostvars, list(groups.get("all", [])), groups, logs, resolver)
        whatif = None
        if args["whatif"]:
            whatif = learn_whatif(hostvars, list(groups.get("all", [])), groups, analysis["suggestion"], analysis["flows"], fill_blanks=True)
        files = results_files(analysis, whatif)
        written = [] if self._task.check_mode else write(args["output_dir"], files)
        result.update(changed=bool(written), written=written, headline=headline(analysis["report"]),
                      output_dir=args["output_dir"], flows=len(analysis["flows"]))
        problem = unread(analysis)
        if problem:
            raise AnsibleActionFail(problem, result=result)
        return result
