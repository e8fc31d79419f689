# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the renderer filters share (private to the collection)."""

from __future__ import annotations

from collections.abc import Callable

from ansible.errors import AnsibleFilterError


def render_ir(name: str, render: Callable, ir):
    """Check that ``ir`` is a Policy IR or a list of them, and render it; a renderer's
    refusal becomes a filter error that names the filter."""
    irs = ir if isinstance(ir, list) else [ir]
    if not irs or not all(isinstance(one, dict) and "rules" in one for one in irs):
        raise AnsibleFilterError(f"warden.egress.{name}: input is not a Policy IR (or a list of them) from warden.egress.policy or edge_policy")
    try:
        return render(ir)
    except (KeyError, ValueError) as exc:
        raise AnsibleFilterError(f"warden.egress.{name}: {exc}") from None
