"""plugin_utils is read as the pipeline (docs/architecture.md): model, compile, render, oracle,
learn, and the Ansible adapters. Held here, from the source itself:

* a private name (``_x``) is imported only within its own sub-package;
* the stages import in one direction: nothing imports a later stage (model imports no other
  stage; the compile and render import neither oracle nor learn; nothing but adapters imports
  ansible);
* no import cycle among the modules.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[4] / "plugins" / "plugin_utils"
PREFIX = "ansible_collections.warden.egress.plugins.plugin_utils."
# What each sub-package may import from the others (itself always).
MAY_IMPORT = {
    "model": set(),
    "compile": {"model", "render"},
    "render": {"model"},
    "oracle": {"model", "compile", "render"},
    "learn": {"model", "compile", "oracle"},
    "adapters": {"model", "compile", "render", "oracle", "learn"},
}


def module_name(path: pathlib.Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imports(path: pathlib.Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of each import of the collection's plugin_utils, and
    ("ansible", [], line) of each import of ansible itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PREFIX):
                module = node.module[len(PREFIX):]
                names = [alias.name for alias in node.names]
                if module.count(".") == 0 or (module == "render.acl"):
                    # "from plugin_utils.render.acl import ios": modules, not names
                    found.extend((f"{module}.{name}", [], node.lineno) for name in names)
                else:
                    found.append((module, names, node.lineno))
            elif node.module == "ansible" or node.module.startswith("ansible."):
                found.append(("ansible", [], node.lineno))
        elif isinstance(node, ast.Import):
            found.extend(("ansible", [], node.lineno) for alias in node.names if alias.name.split(".")[0] == "ansible")
    return found


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py")) if path.name != "__init__.py"}
GRAPH = {module: imports(path) for module, path in MODULES.items()}


def test_the_tree_is_the_pipeline():
    assert {module.split(".")[0] for module in MODULES} == set(MAY_IMPORT)
    for module, found in GRAPH.items():
        for target, dummy, line in found:
            assert target == "ansible" or target in MODULES, f"{module}:{line} imports {target}, which is not a module of plugin_utils"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_private_names_stay_in_their_sub_package(module):
    stage = module.split(".")[0]
    crossing = [f"{module}:{line} imports {name} from {target}" for target, names, line in GRAPH[module]
                for name in names if name.startswith("_") and target.split(".")[0] != stage]
    assert not crossing


@pytest.mark.parametrize("module", sorted(MODULES))
def test_stages_import_in_one_direction(module):
    stage = module.split(".")[0]
    allowed = MAY_IMPORT[stage] | {stage} | ({"ansible"} if stage == "adapters" else set())
    wrong = [f"{module}:{line} imports {target}" for target, dummy, line in GRAPH[module] if target.split(".")[0] not in allowed]
    assert not wrong


def test_no_import_cycle():
    edges = {module: {target for target, dummy, dummy in found if target in MODULES} for module, found in GRAPH.items()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target] if target in path else [module, target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_the_checks_see_a_violation(tmp_path):
    """The reader finds private names, later stages and ansible in a module's imports."""
    source = tmp_path / "x.py"
    source.write_text(f"from {PREFIX}compile.host import _begin, compile_policy\nfrom ansible.errors import AnsibleError\n"
                      f"from {PREFIX}render.acl import ios\n")
    assert imports(source) == [("compile.host", ["_begin", "compile_policy"], 1), ("ansible", [], 2), ("render.acl.ios", [], 3)]
