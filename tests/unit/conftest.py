"""Test set-up: make the checkout importable as ansible_collections.warden.egress."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(TOP, ".build", "collections")
LINK = os.path.join(BUILD, "ansible_collections", "warden", "egress")
if not os.path.islink(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(TOP, LINK)
LAB_FILES = os.path.join(TOP, "lab", "files")  # pf_grammar.py: the strict pf grammar the lab's pfctl reads with
for path in (BUILD, HERE, LAB_FILES):  # HERE: the shared example site, tests/unit/sample.py
    if path not in sys.path:
        sys.path.insert(0, path)


def pytest_configure(config):
    """Under pytest-xdist, a directory the workers of this one test run share (the run's own
    base temporary directory, which pytest rotates away): WARDEN_EGRESS_SHARED_TMP."""
    if getattr(config, "workerinput", None) is not None and config.option.basetemp:
        os.environ["WARDEN_EGRESS_SHARED_TMP"] = os.path.dirname(os.path.abspath(str(config.option.basetemp)))
