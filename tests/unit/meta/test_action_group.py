"""meta/runtime.yml's action group: module_defaults for group/warden.egress.apply reach every apply module.

Each module is given a lock_timeout that is not a number only through the group's defaults;
the module refusing it at argument parsing (before it does anything) shows the default
arrived. The play runs in check mode on localhost and nothing is loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

ARGS = {
    "nft_apply": {"state": "absent", "table": "warden_egress_group_test"},
    "iptables_apply": {"state": "absent", "table": "WGT"},
    "pf_apply": {"state": "absent", "anchor": "warden_egress_group_test"},
}


def run_play(tmp_path, module: str, group: str) -> subprocess.CompletedProcess:
    play = [{
        "name": "module_defaults through the action group",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {group: {"lock_timeout": "not-a-number", "state_dir": str(tmp_path / "state")}},
        "tasks": [{"name": f"Run {module} with the group's defaults", f"warden.egress.{module}": ARGS[module], "check_mode": True}],
    }]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"), ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", str(path)],
                          capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))


@pytest.mark.parametrize("module", sorted(ARGS))
def test_group_defaults_reach_the_module(tmp_path, module):
    result = run_play(tmp_path, module, "group/warden.egress.apply")
    # The yaml result format folds long messages and doubles quotes inside them.
    output = " ".join((result.stdout + result.stderr).split()).replace("''", "'")
    assert result.returncode != 0, output
    assert "argument 'lock_timeout'" in output and "convert to int" in output, output
    assert not (tmp_path / "state").exists()


def test_the_group_lists_exactly_the_apply_modules():
    runtime = yaml.safe_load(open(os.path.join(TOP, "meta", "runtime.yml"), encoding="utf-8"))
    assert sorted(runtime["action_groups"]["apply"]) == sorted(ARGS)
    modules = sorted(name[:-3] for name in os.listdir(os.path.join(TOP, "plugins", "modules")) if name.endswith("_apply.py"))
    assert modules == sorted(ARGS)
