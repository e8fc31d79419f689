"""The release checks (.ci/check_release.py) refuse what a user should not get."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CHECK = os.path.join(TOP, ".ci", "check_release.py")
GOOD = ["README.md", "LICENSE", "CHANGELOG.rst", "meta/runtime.yml", "meta/execution-environment.yml",
        "plugins/filter/policy.py", "roles/linux/tasks/main.yml", "roles/linux/README.md"]


def tarball(tmp_path, names: list[str], license_: str = "GPL-3.0-or-later") -> str:
    path = tmp_path / "warden-egress-0.5.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        manifest = json.dumps({"collection_info": {"license": [license_]}}).encode()
        for name, data in [("MANIFEST.json", manifest), ("FILES.json", b"{}")] + [(n, b"x") for n in names]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, CHECK, *args], capture_output=True, text=True, check=False)


def test_a_clean_tarball_passes(tmp_path):
    result = check("tarball", tarball(tmp_path, GOOD))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("extra", "message"), [
    (["lab/create.yml"], "ships what users do not run: lab"),
    (["molecule/linux/molecule.yml", "tests/unit/conftest.py"], "ships what users do not run: molecule, tests"),
    (["Makefile"], "ships what users do not run: Makefile"),
    (["plugins/filter/__pycache__/policy.cpython-311.pyc"], "ships plugins/filter/__pycache__/policy.cpython-311.pyc"),
    (["playbooks/rendered-acls/edge-ios.acls.txt"], "ships playbooks/rendered-acls/edge-ios.acls.txt"),
    (["roles/pf/tasks/main.yml"], "role pf has no README.md"),
])
def test_what_users_should_not_get_is_refused(tmp_path, extra, message):
    result = check("tarball", tarball(tmp_path, GOOD + extra))
    assert result.returncode != 0
    assert message in result.stderr


def test_no_licence_file_is_refused(tmp_path):
    result = check("tarball", tarball(tmp_path, [n for n in GOOD if n != "LICENSE"]))
    assert result.returncode != 0
    assert "has no LICENSE" in result.stderr


def collection(tmp_path, version: str, fragments: list[str], version_added: str, released: dict) -> str:
    root = tmp_path / "coll"
    (root / "changelogs" / "fragments").mkdir(parents=True)
    (root / "plugins" / "filter").mkdir(parents=True)
    (root / "galaxy.yml").write_text(yaml.safe_dump({"version": version}))
    (root / "changelogs" / "changelog.yaml").write_text(yaml.safe_dump({"releases": released}))
    for name in fragments:
        (root / "changelogs" / "fragments" / name).write_text("---\nbugfixes: [x]\n")
    (root / "plugins" / "filter" / "policy.py").write_text(f'DOCUMENTATION = r"""\nname: policy\nversion_added: {version_added}\n"""\n')
    return str(root)


RELEASED = {"0.1.0": {"plugins": {"filter": [{"name": "policy"}]}}}


def test_consistent_versions_pass(tmp_path):
    result = check("versions", collection(tmp_path, "0.2.0", ["0.2.0-x.yml"], "0.1.0", RELEASED))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("version", "fragments", "added", "released", "message"), [
    ("0.1.0", [], "0.1.0", RELEASED, "is not newer than the last release"),
    ("0.2.0", ["0.1.0-late.yml"], "0.1.0", RELEASED, "0.1.0-late.yml is named for 0.1.0"),
    ("0.2.0", [], "0.3.0", RELEASED, "version_added 0.3.0 is after galaxy.yml's version 0.2.0"),
    ("0.2.0", [], "0.1.0", {"0.1.0": {}}, "the 0.1.0 release in changelogs/changelog.yaml does not list policy"),
])
def test_versions_that_disagree_are_refused(tmp_path, version, fragments, added, released, message):
    result = check("versions", collection(tmp_path, version, fragments, added, released))
    assert result.returncode != 0
    assert message in result.stderr


def test_documentation_that_does_not_parse_is_refused(tmp_path):
    root = collection(tmp_path, "0.2.0", [], "0.1.0", RELEASED)
    path = os.path.join(root, "plugins", "filter", "policy.py")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('EXAMPLES = r"""\n- that: a == {\'x\': 1}\n"""\n')
    result = check("versions", root)
    assert result.returncode != 0
    assert "EXAMPLES is not valid YAML" in result.stderr
