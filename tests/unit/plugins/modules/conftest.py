"""Fixtures of the module tests."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest
from apply_box import MODULES, Box, write_script
from netns import TOP, Pair


@pytest.fixture(params=MODULES)
def box(request):
    with tempfile.TemporaryDirectory() as tmp:
        made = Box(request.param, tmp)
        if request.param != "pf_apply":
            with Pair() as pair:
                made.pair, made.ns = pair, pair.host
                yield made
            return
        pfbin = os.path.join(tmp, "pfbin")
        os.makedirs(pfbin)
        shutil.copy(os.path.join(TOP, "lab", "files", "fake-pfctl.py"), pfbin)
        shutil.copy(os.path.join(TOP, "lab", "files", "pf_grammar.py"), pfbin)
        write_script(os.path.join(pfbin, "pfctl"), f'exec {sys.executable} {os.path.join(pfbin, "fake-pfctl.py")} "$@"')
        made.env["PATH"] = f"{made.bin}:{pfbin}:{os.environ['PATH']}"
        made.env["WARDEN_FAKE_PF_DIR"] = os.path.join(tmp, "pf")
        yield made
