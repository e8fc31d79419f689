"""The golden files (tests/unit/plugins/plugin_utils/golden/): what each renderer writes for
the example site, held byte for byte. ``WARDEN_UPDATE_GOLDEN=1`` rewrites them from the
output first; then read the diff."""

from __future__ import annotations

import os

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins", "plugin_utils", "golden")


def golden(name: str, text: str) -> str:
    """The golden file ``name`` (a path below the golden directory), rewritten with ``text``
    first when WARDEN_UPDATE_GOLDEN is 1."""
    path = os.path.join(DIR, name)
    if os.environ.get("WARDEN_UPDATE_GOLDEN") == "1":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    with open(path, encoding="utf-8") as handle:
        return handle.read()
