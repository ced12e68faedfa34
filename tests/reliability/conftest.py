"""Fixtures of the fault-injection suite: a probe backend and a way to run the real CLI on it."""

import os
import subprocess
import sys

import pytest

from fault_probe import PROBE

from asrctl.testing import default_sigint, make_plugin_dist, run_cli

@pytest.fixture(scope="session")
def probe_site(tmp_path_factory):
    return make_plugin_dist(tmp_path_factory.mktemp("probe-site"), "asrctl-probe", PROBE)


@pytest.fixture
def infer(probe_site):
    """`asrctl infer MANIFEST -b probe -o OUT ...` through the real CLI."""

    def run(manifest, out, *extra, env=None, cwd=None):
        return run_cli("infer", str(manifest), "-b", "probe", "-m", "none", "-o", str(out), "--device", "cpu",
                       "--num-workers", "1", *extra, pythonpath=probe_site, env=env, cwd=cwd)

    return run


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
