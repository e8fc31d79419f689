# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the policy compiler (private to the collection)."""

from __future__ import annotations


class PolicyError(ValueError):
    """A bad inventory value: carries the variable path and the offending value."""

    def __init__(self, path: str, value: object, problem: str) -> None:
        self.path = path
        self.value = value
        self.problem = problem
        super().__init__(f"{path}: {value!r} {problem}")
