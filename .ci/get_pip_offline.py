"""Stand-in for ansible-test's get-pip bootstrap script, whose download host is not
reachable from these machines. ansible-test runs it in a fresh virtualenv with pip's
install arguments; this installs the pip bundled with Python (ensurepip, offline) and
then runs that pip with the same arguments (packages come from PyPI)."""

import ensurepip
import os
import runpy
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

saved = os.environ.get("PIP_CONFIG_FILE")
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null; the machine's pip settings must apply again.
if saved is None:
    os.environ.pop("PIP_CONFIG_FILE", None)
else:
    os.environ["PIP_CONFIG_FILE"] = saved
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.argv = ["pip", "install", *args] if args and args[0] != "install" else ["pip", *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
