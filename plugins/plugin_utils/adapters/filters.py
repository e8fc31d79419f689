# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the renderer filters share (private to the collection)."""

from __future__ import annotations

from collections.abc import Callable

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.plugin_utils.model.ir import ir_problem


def require_ir(name: str, ir) -> None:
    """The filter door: ``ir`` must be a Policy IR or a non-empty list of them
    (``model.ir.ir_problem``), or the filter fails naming itself and what is wrong."""
    irs = ir if isinstance(ir, list) else [ir]
    problems = [(i, ir_problem(one)) for i, one in enumerate(irs)] if irs else [(0, "is an empty list")]
    for index, problem in problems:
        if problem:
            where = f"[{index}]" if isinstance(ir, list) else ""
            raise AnsibleFilterError(f"warden.egress.{name}: input{where} is not a Policy IR from warden.egress.policy or edge_policy: it {problem}")


def render_ir(name: str, render: Callable, ir):
    """Check that ``ir`` is a Policy IR or a list of them (``require_ir``), and render it;
    a renderer's refusal becomes a filter error that names the filter."""
    require_ir(name, ir)
    try:
        return render(ir)
    except (KeyError, ValueError) as exc:
        raise AnsibleFilterError(f"warden.egress.{name}: {exc}") from None
