"""playbooks/remove.yml on a pf box: site.yml loads the anchor and hooks it into pf.conf,
remove.yml takes the hook out of pf.conf first, then the anchor, its file and its record;
the administrator's own rules stay. No BSD box runs here: the box is a local connection
whose pfctl is the lab's stand-in (lab/files/fake-pfctl.py: the collection's pf grammar,
and a record of what would be loaded), and every path is under the test's directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ADMIN = "set skip on lo\npass out quick proto tcp from any to any port 22 keep state\n"


def pf_stand_in(tmp_path) -> dict:
    """The lab's pfctl stand-in in tmp_path/bin, and the environment that puts it first on
    PATH and has it record what it loads under tmp_path/pf."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(os.path.join(TOP, "lab", "files", "fake-pfctl.py"), bin_dir)
    shutil.copy(os.path.join(TOP, "lab", "files", "pf_grammar.py"), bin_dir)
    (bin_dir / "pfctl").write_text(f'#!/bin/sh\nexec {sys.executable} {bin_dir / "fake-pfctl.py"} "$@"\n')
    (bin_dir / "pfctl").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "WARDEN_FAKE_PF_DIR": str(tmp_path / "pf")}


@pytest.fixture(params=[False, True], ids=["admin-pf-conf", "managed-pf-conf"])
def box(tmp_path, request):
    stand_in = pf_stand_in(tmp_path)
    (tmp_path / "pf.conf").write_text(ADMIN)
    inventory = {"all": {"hosts": {"pfgw": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "egress_platform": "pf", "egress_role": "isolated", "egress_addresses": ["198.51.100.125"],
        "egress_trusted_prefixes": ["198.51.100.0/25"], "egress_site_compile_dir": str(tmp_path / "site"),
        "pf_egress_os": "freebsd", "pf_egress_enable": False, "pf_egress_pf_conf": str(tmp_path / "pf.conf"),
        "pf_egress_anchor_file": str(tmp_path / "anchors" / "warden_egress"), "pf_egress_state_dir": str(tmp_path / "state"),
        "pf_egress_manage_pf_conf": request.param,
    }}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = {**os.environ, **stand_in, "HOME": str(tmp_path),
           "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")}

    def run(playbook: str, *extra: str) -> str:
        result = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), os.path.join(TOP, "playbooks", playbook),
                                 "-e", "egress_become=false", *extra], capture_output=True, text=True, env=env, check=False)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        return output

    return tmp_path, run, request.param


def loaded_anchor(tmp_path) -> str:
    path = tmp_path / "pf" / "anchors" / "warden_egress.conf"
    return path.read_text() if path.exists() else ""


def test_remove_takes_the_anchor_and_its_hook_off_a_pf_box(box):
    tmp_path, run, managed = box
    run("site.yml")
    assert 'anchor "warden_egress"' in (tmp_path / "pf.conf").read_text()
    assert (tmp_path / "anchors" / "warden_egress").exists()
    assert "block" in loaded_anchor(tmp_path)

    written = (tmp_path / "pf.conf").read_text()

    output = run("remove.yml")
    if managed:
        # The pf.conf the role wrote stays, without the two lines that load the anchor.
        assert (tmp_path / "pf.conf").read_text().splitlines() == [
            line for line in written.splitlines() if not re.match(r'(load )?anchor "warden_egress"', line)]
    else:
        assert (tmp_path / "pf.conf").read_text() == ADMIN, "pf.conf is the administrator's again"
    assert loaded_anchor(tmp_path).strip() == ""
    assert not (tmp_path / "anchors" / "warden_egress").exists()
    assert not (tmp_path / "state").exists()
    # pf.conf was loaded again after the hook was taken out, and before the anchor was flushed.
    assert output.index("Load pf.conf again so that the main ruleset no longer jumps to the anchor") < output.index(
        "Flush the anchor and remove its file and record")

    output = run("remove.yml")
    assert re.findall(r"changed=(\d+)", output) == ["0"], output[-2000:]


def test_remove_takes_the_hook_off_when_the_pf_conf_setting_changed_since_the_apply(box):
    """Applied with one pf_egress_manage_pf_conf, removed with the other: the hook still goes,
    so no pf.conf is left loading an anchor file that is gone."""
    tmp_path, run, managed = box
    run("site.yml")
    run("remove.yml", "-e", f"pf_egress_manage_pf_conf={'false' if managed else 'true'}")
    assert "warden_egress" not in (tmp_path / "pf.conf").read_text()
    assert not (tmp_path / "anchors" / "warden_egress").exists()
