"""Fixtures of the fault-injection suite: a way to start the real CLI on the probe backend (tests/conftest.py)."""

import os
import subprocess
import sys

import pytest

from asrctl.testing import default_sigint


@pytest.fixture
def popen_cli(probe_site):
    """Start `asrctl ARGS` in its own process group (the probe backend on its path); output discarded,
    or stderr kept as text with `stderr=True`."""

    def start(*args, env=None, stderr=False):
        full_env = {**os.environ, "PYTHONPATH": str(probe_site), **(env or {})}
        return subprocess.Popen([sys.executable, "-m", "asrctl", *args], env=full_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE if stderr else subprocess.DEVNULL, text=True,
                                start_new_session=True, preexec_fn=default_sigint)

    return start
