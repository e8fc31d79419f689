# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local user and group names of a host policy -> the numbers the target gave for them
(private to the collection).

A host IR lists the names its rules use in ``local_ids`` (``{users: {NAME: {id, path}},
groups: {...}}``, ``id`` null until looked up). The roles look each name up on the target
(``getent``) before anything is rendered, check that each one was found
(``missing_local_ids``: a name the target does not know is an error naming the host, the
variable path that named it and the name, so nothing is loaded), and ``with_local_ids``
writes the numbers in: the rules (and the boot files) carry numbers, not names that would be
looked up again at boot.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from ansible_collections.warden.egress.plugins.plugin_utils.model.errors import PolicyError

KINDS = {"users": ("user", "passwd"), "groups": ("group", "group")}


def local_names(irs: list, kind: str) -> list[str]:
    """The names of one kind (users, groups) that the policies use, sorted, each once."""
    return sorted({name for ir in irs for name in (ir.get("local_ids") or {}).get(kind, {})})


def getent_numbers(results: object, database: str) -> dict[str, int | None]:
    """NAME -> number (None when not found) from the registered results of a loop of
    ``ansible.builtin.getent`` (``database`` passwd or group, ``fail_key: false``)."""
    if isinstance(results, Mapping):
        results = results.get("results", [])
    out: dict[str, int | None] = {}
    for result in results or []:
        if not isinstance(result, Mapping) or result.get("skipped"):
            continue
        name = result.get("item")
        entry = ((result.get("ansible_facts") or {}).get(f"getent_{database}") or {}).get(name)
        if entry and isinstance(entry[0], list):  # a name listed twice: the first entry counts
            entry = entry[0]
        try:
            out[name] = int(entry[1]) if entry else None
        except (IndexError, TypeError, ValueError):
            out[name] = None
    return out


def _number(numbers: Mapping[str, Mapping[str, int | None]], kind: str, name: str) -> int | None:
    number = (numbers.get(kind) or {}).get(name)
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 4294967294:
        return None
    return number


def missing_local_ids(irs: list, numbers: Mapping[str, Mapping[str, int | None]], host: str) -> list[PolicyError]:
    """One error for each local user or group name of ``irs`` that ``numbers`` has no number
    for, naming the inventory path of the allow entry that named it (each name once)."""
    errors, seen = [], set()
    for ir in irs:
        for kind, names in (ir.get("local_ids") or {}).items():
            what, database = KINDS[kind]
            for name, entry in names.items():
                if _number(numbers, kind, name) is None and (kind, name) not in seen:
                    seen.add((kind, name))
                    errors.append(PolicyError(entry["path"], name, f"is not a local {what} on {host} (getent {database} {name} found no entry): "
                                                                   f"create it there, or name one that exists, before the rules are loaded"))
    return errors


def with_local_ids(irs: list, numbers: Mapping[str, Mapping[str, int | None]], host: str) -> list:
    """Copies of ``irs`` with each local user and group name's number filled in from
    ``numbers`` ({users: {NAME: uid}, groups: {NAME: gid}}); a name with no number is an
    error naming the inventory path of the allow entry that named it."""
    missing = missing_local_ids(irs, numbers, host)
    if missing:
        raise missing[0]
    out = copy.deepcopy(list(irs))
    for ir in out:
        for kind, names in (ir.get("local_ids") or {}).items():
            for name, entry in names.items():
                entry["id"] = _number(numbers, kind, name)
    return out
