"""Helpers for testing asrctl and its plugins: fake plugin distributions and CLI runs.

`make_plugin_dist` writes a module plus a `.dist-info` with an "asrctl" entry point into a folder;
putting that folder on PYTHONPATH makes the plugin discoverable exactly as an installed one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def make_plugin_dist(site: Path, dist_name: str, code: str, version: str = "0.1") -> Path:
    """Create an importable plugin distribution `dist_name` whose module holds `code`."""
    module = dist_name.replace("-", "_")
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[asrctl]\n{module} = {module}\n")
    return site


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600,
            pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `asrctl` entry point in a subprocess of this interpreter."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "asrctl", *args],
        env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )
