"""Release checks run by .ci/package.sh: versions, the tarball's contents, dependencies."""
from __future__ import annotations

import json
import re
import sys
import tarfile
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

# Collections only the router role needs: optional, documented in README.md, never declared.
OPTIONAL = {"ansible.netcommon": "roles/network_acl/", "cisco.ios": "roles/network_acl/",
            "arista.eos": "roles/network_acl/", "junipernetworks.junos": "roles/network_acl/"}
BUILTIN = {"ansible.builtin", "ansible.legacy", "warden.egress"}
# What a user gets in the tarball, at its top level.
SHIPPED_TOP = {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "CHANGELOG.rst",
               "changelogs", "docs", "meta", "playbooks", "plugins", "roles"}
NEVER_SHIPPED = re.compile(r"(^|/)(__pycache__|\.ansible|\.hypothesis|\.pytest_cache|rendered-acls|\.plugin-cache\.yaml)(/|$)|\.pyc$")

FQCN = r"([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*"
YAML_USES = [
    re.compile(rf"^\s*-?\s*{FQCN}:", re.M),                                   # a module
    re.compile(rf"(?:\||\bis\s+(?:not\s+)?)\s*{FQCN}\b"),                    # a filter or test
    re.compile(rf"\b(?:lookup|query|q)\(\s*['\"]{FQCN}['\"]"),                # a lookup
    re.compile(rf"\b(?:ansible_connection|ansible_network_os|import_playbook|role|name|action|module):\s*['\"]?{FQCN}\b"),
    re.compile(rf"^\s*-\s*{FQCN}\s*$", re.M),                                 # roles: - ns.coll.role
    re.compile(rf"^\s*-\s*(?:role|name):\s*{FQCN}\b", re.M),
]
PY_USES = re.compile(r"\bansible_collections\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\b")


def fail(msg: str) -> None:
    print(f"check_release: {msg}", file=sys.stderr)
    sys.exit(1)


def is_collection(name: str) -> bool:
    """A name is a collection's when one by that name is installed here (net.ipv4.ip_forward is a sysctl)."""
    if name in BUILTIN:
        return True
    import importlib.util
    try:
        return importlib.util.find_spec(f"ansible_collections.{name}") is not None
    except ImportError:
        return False


def used_collections(root: Path, parts: list[str]) -> dict[str, set[str]]:
    """Collection name -> the files (relative to root) that use it (installed collections only)."""
    found: dict[str, set[str]] = {}
    for part in parts:
        base = root / part
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []
        for path in files:
            rel = str(path.relative_to(root))
            if "__pycache__" in rel:
                continue
            if path.suffix in (".yml", ".yaml"):
                text = "\n".join(line.split(" #")[0] for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
                for pattern in YAML_USES:
                    for m in pattern.finditer(text):
                        found.setdefault(f"{m.group(1)}.{m.group(2)}", set()).add(rel)
            elif path.suffix == ".py":
                for m in PY_USES.finditer(path.read_text()):
                    found.setdefault(f"{m.group(1)}.{m.group(2)}", set()).add(rel)
    return {name: files for name, files in found.items() if is_collection(name)}


def installed_version(name: str) -> Version | None:
    import importlib
    try:
        mod = importlib.import_module(f"ansible_collections.{name}")
    except ImportError:
        return None
    for path in mod.__path__:
        manifest = Path(path) / "MANIFEST.json"
        if manifest.exists():
            return Version(json.loads(manifest.read_text())["collection_info"]["version"])
        galaxy = Path(path) / "galaxy.yml"
        if galaxy.exists():
            return Version(str(yaml.safe_load(galaxy.read_text())["version"]))
    return None


def doc_blocks(path: Path) -> dict:
    """DOCUMENTATION, EXAMPLES and RETURN of a plugin, each parsed as YAML (ansible-doc refuses a plugin whose block does not parse)."""
    import ast
    blocks = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], "id", "") in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
            name = node.targets[0].id
            try:
                blocks[name] = yaml.safe_load(node.value.value)
            except yaml.YAMLError as exc:
                fail(f"{path}: {name} is not valid YAML: {' '.join(str(exc).split())}")
    return blocks


def check_versions(top: Path, released: bool = False) -> None:
    """The checkout (released=False): galaxy.yml's version is the pending one, newer than every release.
    After the release step (released=True): it is the last release, and that release lists what it added."""
    galaxy = yaml.safe_load((top / "galaxy.yml").read_text())
    version = Version(str(galaxy["version"]))
    changes = yaml.safe_load((top / "changelogs/changelog.yaml").read_text())
    releases = sorted(Version(v) for v in (changes.get("releases") or {}))
    if released and (not releases or releases[-1] != version):
        fail(f"the release step did not add {version} to changelogs/changelog.yaml")
    if not released and releases and not releases[-1] < version:
        fail(f"galaxy.yml version {version} is not newer than the last release in changelogs/changelog.yaml ({releases[-1]})")
    for frag in sorted((top / "changelogs/fragments").glob("*")):
        m = re.match(r"(\d+\.\d+\.\d+)-", frag.name)
        if m and Version(m.group(1)) != version:
            fail(f"changelogs/fragments/{frag.name} is named for {m.group(1)}; pending fragments go to galaxy.yml's version {version}")
    # Every version_added is a released version that listed the plugin or role as new, or the pending version.
    listed: dict[str, set[str]] = {}
    for v, rel in (changes.get("releases") or {}).items():
        names = {p["name"] for kind in (rel.get("plugins") or {}).values() for p in kind}
        names |= {m["name"] for m in rel.get("modules") or []}
        names |= {o["name"] for kind in (rel.get("objects") or {}).values() for o in kind}
        listed[str(v)] = names
    items = [(p, p.stem) for p in sorted((top / "plugins").glob("*/*.py")) if p.parent.name not in ("module_utils", "plugin_utils", "action", "doc_fragments")]
    items += [(p, p.parent.parent.name) for p in sorted((top / "roles").glob("*/meta/argument_specs.yml"))]
    for path, name in items:
        text = path.read_text()
        if path.suffix == ".py":
            blocks = doc_blocks(path)
            doc = blocks.get("DOCUMENTATION")
            added = (doc or {}).get("version_added")
        else:
            added = ((yaml.safe_load(text)["argument_specs"].get("main") or {}).get("version_added"))
        rel = path.relative_to(top)
        if added is None:
            fail(f"{rel}: no version_added (the changelog lists a plugin or role as new by it)")
        added = Version(str(added))
        if added == version and not released:
            continue
        if added > version:
            fail(f"{rel}: version_added {added} is after galaxy.yml's version {version}")
        if name not in listed.get(str(added), set()):
            fail(f"{rel}: version_added {added}, but the {added} release in changelogs/changelog.yaml does not list {name} as new "
                 f"(new content takes the pending version, {version}; if ansible-doc warned above that it could not load it, that is why)")
    state = "released" if released else "pending"
    print(f"check_release: version {version} ({state}); releases {', '.join(map(str, releases))}; {len(items)} plugins and roles checked")


def check_tarball(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = [m.name for m in tar.getmembers()]
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    top = {n.split("/")[0] for n in names}
    extra = sorted(top - SHIPPED_TOP)
    if extra:
        fail(f"{tarball.name} ships what users do not run: {', '.join(extra)} (add it to build_ignore in galaxy.yml)")
    bad = sorted(n for n in names if NEVER_SHIPPED.search(n))
    if bad:
        fail(f"{tarball.name} ships {', '.join(bad[:10])}")
    for needed in ("LICENSE", "README.md", "CHANGELOG.rst", "meta/runtime.yml", "meta/execution-environment.yml"):
        if needed not in names:
            fail(f"{tarball.name} has no {needed}")
    roles = sorted({n.split("/")[1] for n in names if n.startswith("roles/") and n.count("/") >= 2})
    for role in roles:
        if f"roles/{role}/README.md" not in names:
            fail(f"{tarball.name}: role {role} has no README.md")
    if manifest["license"] != ["GPL-3.0-or-later"]:
        fail(f"{tarball.name}: license {manifest['license']}")
    print(f"check_release: {tarball.name}: {len(names)} entries, top level {', '.join(sorted(top))}; roles with README: {', '.join(roles)}")


def check_dependencies(installed: Path, checkout: Path) -> None:
    manifest = json.loads((installed / "MANIFEST.json").read_text())["collection_info"]
    declared = dict(manifest["dependencies"])
    used = used_collections(installed, ["plugins", "roles", "playbooks", "meta"])
    for coll, files in sorted(used.items()):
        if coll in BUILTIN or coll in declared:
            continue
        if coll in OPTIONAL:
            outside = sorted(f for f in files if not f.startswith(OPTIONAL[coll]))
            if outside:
                fail(f"optional collection {coll} is used outside {OPTIONAL[coll]}: {', '.join(outside)}")
            continue
        fail(f"shipped content uses {coll}, which galaxy.yml does not declare: {', '.join(sorted(files))}")
    unused = sorted(set(declared) - set(used))
    if unused:
        fail(f"galaxy.yml declares {', '.join(unused)}, which no shipped file uses")
    readme = (installed / "README.md").read_text()
    for coll in OPTIONAL:
        if coll not in readme:
            fail(f"README.md does not name the optional collection {coll}")
    # The lab and the tests: requirements.yml.
    reqs = {c["name"]: c.get("version", "*") for c in yaml.safe_load((checkout / "requirements.yml").read_text())["collections"]}
    lab_used = used_collections(checkout, ["lab", "molecule", "tests", "benchmarks"])
    for coll, files in sorted(lab_used.items()):
        if coll not in BUILTIN and coll not in reqs and coll not in declared:
            fail(f"{', '.join(sorted(files)[:3])} use {coll}, which requirements.yml does not list")
    needed = set(lab_used) | set(used) | set(declared)
    unused = sorted(set(reqs) - needed)
    if unused:
        fail(f"requirements.yml lists {', '.join(unused)}, which nothing here uses")
    # What is installed here satisfies both files.
    for name, spec in sorted({**reqs, **declared}.items()):
        have = installed_version(name)
        if have is None:
            fail(f"{name} ({spec}) is not installed")
        if spec != "*" and have not in SpecifierSet(spec.replace(" ", "")):
            fail(f"{name} {have} is installed; {spec} is required")
    print(f"check_release: declared {', '.join(sorted(declared)) or 'nothing'}; optional in use: "
          f"{', '.join(sorted(c for c in used if c in OPTIONAL))}; lab and tests: {', '.join(sorted(reqs))}")


def main() -> None:
    what = sys.argv[1]
    if what == "versions":
        check_versions(Path(sys.argv[2]))
    elif what == "released":
        check_versions(Path(sys.argv[2]), released=True)
    elif what == "tarball":
        check_tarball(Path(sys.argv[2]))
    elif what == "dependencies":
        check_dependencies(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        fail(f"unknown check {what!r}")


if __name__ == "__main__":
    main()
