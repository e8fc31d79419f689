# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the policy compiler, and the one reader of a boolean (private to the
collection)."""

from __future__ import annotations

from collections.abc import Hashable


class PolicyError(ValueError):
    """A bad inventory value: carries the variable path and the offending value."""

    def __init__(self, path: str, value: object, problem: str) -> None:
        self.path = path
        self.value = value
        self.problem = problem
        super().__init__(f"{path}: {value!r} {problem}")


# The spellings Ansible takes for a boolean (BOOLEANS_TRUE and BOOLEANS_FALSE of
# ansible.module_utils.parsing.convert_bool): text is read in any case, spaces trimmed, so a
# value given with -e ("true", "yes") counts as it does in YAML.
BOOLEANS_TRUE = frozenset(("y", "yes", "on", "1", "true", "t", 1))
BOOLEANS_FALSE = frozenset(("n", "no", "off", "0", "false", "f", 0))


def parse_bool(value: object, path: str) -> bool:
    """A boolean as Ansible takes one: true/false, yes/no, on/off, 1/0, also as text."""
    if isinstance(value, bool):
        return value
    key = value.strip().lower() if isinstance(value, str) else value
    if isinstance(key, Hashable):
        if key in BOOLEANS_TRUE:
            return True
        if key in BOOLEANS_FALSE:
            return False
    raise PolicyError(path, value, "must be true or false (or yes/no, on/off, 1/0)")
