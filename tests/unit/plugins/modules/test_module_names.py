"""The apply modules check the name they own (table, chain prefix, anchor) as a whole: a name
with a trailing newline is refused before anything is read or loaded (Python's '$' matches
before a final newline)."""

from __future__ import annotations

import os

import pytest
from netns import run_module

CASES = [
    ("nft_apply", "table", {"content": "table inet x {\n}\n", "path": "rules"}),
    ("iptables_apply", "table", {"ipset": "", "ipv4": "*filter\nCOMMIT\n", "ipv6": "*filter\nCOMMIT\n", "directory": "rules"}),
    ("pf_apply", "anchor", {"content": "block out all\n", "path": "rules"}),
]


def arguments(tmp_path, args: dict, key: str, name: str) -> dict:
    where = {k: os.path.join(str(tmp_path), v) for k, v in args.items() if k in ("path", "directory")}
    return {**args, **where, key: name, "state_dir": os.path.join(str(tmp_path), "state")}


@pytest.mark.parametrize(("module", "key", "args"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("name", ["warden_egress\n", "warden_egress\nx", " warden_egress"])
def test_a_name_with_a_newline_or_space_is_refused(tmp_path, module, key, args, name):
    result = run_module(module, str(tmp_path), arguments(tmp_path, args, key, name), check=True)
    assert result.get("failed"), result
    assert result["msg"].startswith(f"{key}: {name!r} is not a"), result["msg"]
    assert not os.path.exists(os.path.join(str(tmp_path), "state"))


@pytest.mark.parametrize(("module", "key", "args"), CASES, ids=[c[0] for c in CASES])
def test_control_the_plain_name_gets_past_the_name_check(tmp_path, module, key, args):
    result = run_module(module, str(tmp_path), arguments(tmp_path, args, key, "warden_egress"), check=True)
    assert not result.get("msg", "").startswith(f"{key}: "), result
