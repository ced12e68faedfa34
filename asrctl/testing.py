"""Helpers for testing asrctl and its plugins: fake plugin distributions, CLI runs, tiny audio.

`make_plugin_dist` writes a module plus a `.dist-info` with an "asrctl" entry point into a folder;
putting that folder on PYTHONPATH makes the plugin discoverable exactly as an installed one.
`overlay_venv` makes a throwaway environment for testing a real `asrctl install`.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import site
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
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
            pythonpath: Path | None = None, python: Path | str = sys.executable) -> subprocess.CompletedProcess:
    """Run the real `asrctl` entry point in a subprocess of `python` (this interpreter by default)."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [str(python), "-m", "asrctl", *args],
        env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout, preexec_fn=default_sigint,
    )


def default_sigint() -> None:
    """A child's SIGINT handling as from a terminal (Popen's preexec_fn): a shell without job control
    starts background commands with SIGINT ignored, which their children would inherit, and Ctrl-C
    in a test would then do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_when(args: list[str], ready: Path | Callable[[], bool], sig: int, *,
                   env: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, str]:
    """Run `asrctl ARGS` and send it `sig` once the file `ready` exists (or `ready()` is true); its exit
    code and stderr."""
    done = ready.exists if isinstance(ready, Path) else ready
    process = subprocess.Popen([sys.executable, "-m", "asrctl", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, text=True,
                               preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + timeout
        while not done():
            if process.poll() is not None:
                raise AssertionError(f"asrctl ended before it was time to interrupt it: {process.stderr.read()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not time to interrupt asrctl after {timeout} s ({ready})")
            time.sleep(0.05)
        os.kill(process.pid, sig)
    finally:
        process.wait()
    return process.returncode, process.stderr.read()


def overlay_venv(folder: Path) -> Path:
    """A new virtual environment that also sees this environment's packages; returns its python.

    Whatever is installed into it (`python -m asrctl install ...`) stays out of this environment,
    while asrctl, pip and their dependencies come from here, so a real install is quick. (`venv
    --system-site-packages` would show the base interpreter's packages, not this environment's.)
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # addsitedir (unlike a plain path line) also runs this environment's .pth files: editable installs.
    lines = "; ".join(f"site.addsitedir({path!r})" for path in site.getsitepackages())
    (Path(purelib) / "_asrctl_overlay.pth").write_text(f"import site; {lines}\n")
    return python


def write_tone_wav(path: Path, seconds: float, sample_rate: int = 16000) -> Path:
    """A 220 Hz tone of `seconds` as a WAV file: audio that every decoder reads."""
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sample_rate)
    return path


def make_manifest(folder: Path, durations: list[float], extra_rows: tuple[dict, ...] = ()) -> tuple[Path, list[dict]]:
    """`folder/in.jsonl` over tones a0.wav, a1.wav... of the given durations (text "utt N", id N),
    then `extra_rows` as given; returns the manifest's path and its rows."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, seconds in enumerate(durations):
        write_tone_wav(folder / f"a{i}.wav", seconds)
        rows.append({"audio_filepath": f"a{i}.wav", "duration": seconds, "text": f"utt {i}", "id": i})
    rows.extend(extra_rows)
    path = folder / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def cli_help(*args: str) -> str:
    """`asrctl ARGS --help` as a markdown code block, 80 columns wide: for cog blocks in docs."""
    from click.testing import CliRunner

    from asrctl.cli import cli

    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="asrctl", terminal_width=80)
    if result.exit_code != 0:
        raise RuntimeError(f"asrctl {' '.join(args)} --help failed: {result.output}")
    return f"```\n$ asrctl {' '.join([*args, '--help'])}\n{result.output}```\n"


def hookspec_names() -> list[str]:
    """The hooks of asrctl.hookspecs, in the order they are defined."""
    from asrctl import hookspecs

    return [name for name, value in vars(hookspecs).items() if hasattr(value, f"{hookspecs.PROJECT}_spec")]


def hookspec_signature(name: str) -> str:
    """`def NAME(ARGS) -> RETURN:` of a hookspec, as its source spells the annotations."""
    from asrctl import hookspecs

    function = getattr(hookspecs, name)
    signature = inspect.signature(function)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {name}({params}) -> {signature.return_annotation}:"


def public_api_table() -> str:
    """The plugin API as Markdown: what `asrctl` and `asrctl.api` export, with the first line of each
    name's docstring (a constant: its value)."""
    import asrctl
    import asrctl.api

    def about(value) -> str:
        value = inspect.unwrap(value) if callable(value) else value  # through functools.cache
        if inspect.isclass(value) or inspect.isfunction(value):
            return (inspect.getdoc(value) or "").split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
        return f"`{value!r}`" if isinstance(value, (str, int, float, tuple)) else f"a `{type(value).__name__}`"

    rows = ["| module | kind | name | what it is |", "| --- | --- | --- | --- |"]
    rows += [f"| `asrctl` | registration | `{name}` | {about(getattr(asrctl, name))} |" for name in asrctl.__all__]
    rows += [f"| `asrctl.api` | {kind} | `{name}` | {about(getattr(asrctl.api, name))} |"
             for kind, names in asrctl.api.GROUPS.items() for name in names]
    return "\n".join(rows) + "\n"
