# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a whole inventory on the controller for a what-if: from its paths, or from the same
paths at a git ref of the repository that holds them (private to the collection).

Each host's egress_* variables are read as the inventory holds them (the way the site compile
reads hostvars); a value that holds a template is templated in the host's own variables.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible.vars.manager import VariableManager

from ansible_collections.warden.egress.plugins.plugin_utils.adapters.inventory import POLICY_VARIABLES, host_addresses, read_values

READ = POLICY_VARIABLES + ("egress_addresses", "ansible_host", "egress_verify_flows")


class InputError(Exception):
    """A what-if input that cannot be used; the message names the variable and its value."""


class _Inventory(InventoryManager):
    """An InventoryManager that remembers which sources no inventory plugin could parse."""

    def __init__(self, loader, sources):
        self.unparsed: list[str] = []
        super().__init__(loader=loader, sources=sources)

    def parse_source(self, source, cache=False):
        parsed = super().parse_source(source, cache=cache)
        if not parsed:
            self.unparsed.append(source)
        return parsed


def source_paths(variable: str, value: object) -> list[str]:
    """``value`` (a path or a list of paths) as absolute paths that exist; else InputError."""
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, (list, tuple)) or not paths or not all(isinstance(p, str) for p in paths):
        raise InputError(f"{variable} {value!r}: expected an inventory path or a list of them")
    out = []
    for path in paths:
        full = os.path.abspath(os.path.expanduser(path))
        if not path or not os.path.exists(full):
            raise InputError(f"{variable} {path!r}: no such file or directory")
        out.append(full)
    return out


def load(variable: str, sources: list[str]) -> dict:
    """``{host_vars, addresses, groups}`` of the inventory made of ``sources`` (as compile_site
    takes them); every host's egress_* variables, ansible_host and egress_verify_flows."""
    loader = DataLoader()
    try:
        inventory = _Inventory(loader, list(sources))
    except AnsibleError as exc:
        raise InputError(f"{variable} {', '.join(sources)}: {exc.message}") from None
    if inventory.unparsed:
        raise InputError(f"{variable} {', '.join(sources)}: {', '.join(inventory.unparsed)} could not be parsed as an inventory")
    manager = VariableManager(loader=loader, inventory=inventory)
    host_vars = {}
    for host in inventory.get_hosts():
        variables = manager.get_vars(host=host, include_hostvars=False)

        def render(name, value, variables=variables, host=host):
            try:
                return Templar(loader=loader, variables=variables).template(value)
            except AnsibleError as exc:
                raise InputError(f"{variable} {', '.join(sources)}: host {host.name}: {name}: {exc.message}") from None

        host_vars[host.name] = read_values(variables, READ, render)
    return {"host_vars": host_vars, "addresses": host_addresses(host_vars), "groups": inventory.get_groups_dict()}


def _git(repo: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", repo, *argv], capture_output=True, text=True, check=False)


@contextlib.contextmanager
def at_ref(ref: object, sources: list[str], variable: str = "proposed_ref") -> Iterator[list[str]]:
    """The paths of ``sources`` (the current inventory, all in one git repository) as they are
    at ``ref``, checked out in a temporary worktree that is removed afterwards, on failure too."""
    if not isinstance(ref, str) or not ref or ref.startswith("-"):
        raise InputError(f"{variable} {ref!r}: expected a git ref (a branch, tag or commit)")
    if not sources:
        raise InputError(f"{variable} {ref!r}: the current inventory has no path to look up in the repository")
    first = sources[0] if os.path.isdir(sources[0]) else os.path.dirname(sources[0])
    top = _git(first, "rev-parse", "--show-toplevel")
    if top.returncode:
        raise InputError(f"{variable} {ref!r}: the inventory {sources[0]} is not in a git repository ({top.stderr.strip()})")
    repo = os.path.realpath(top.stdout.strip())
    relative = []
    for source in sources:
        rel = os.path.relpath(os.path.realpath(source), repo)
        if rel == ".." or rel.startswith(".." + os.sep):
            raise InputError(f"{variable} {ref!r}: the inventory {source} is not in the repository {repo}")
        relative.append(rel)
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit.returncode:
        raise InputError(f"{variable} {ref!r}: git does not know this ref in {repo}")
    parent = tempfile.mkdtemp(prefix="warden-egress-whatif-")
    tree = os.path.join(parent, "tree")
    try:
        # No hook of the repository runs: the ref under review is not trusted to run code here.
        added = _git(repo, "-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", tree, commit.stdout.strip())
        if added.returncode:
            raise InputError(f"{variable} {ref!r}: git worktree add failed in {repo}: {added.stderr.strip()}")
        paths = [os.path.join(tree, rel) for rel in relative]
        for rel, path in zip(relative, paths):
            if not os.path.exists(path):
                raise InputError(f"{variable} {ref!r}: {rel} does not exist at that ref in {repo}")
        yield paths
    finally:
        _git(repo, "worktree", "remove", "--force", tree)
        shutil.rmtree(parent, ignore_errors=True)
