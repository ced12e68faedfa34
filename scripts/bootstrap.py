#!/usr/bin/env python3
"""Set up asrctl from this clone and run it: one command for users, one for developers.

  python3 scripts/bootstrap.py demo   a virtual environment (.venv, unless one is active), PyTorch
                                      for this machine, asrctl and the faster-whisper backend; then
                                      the example manifest transcribed with the default model,
                                      scored, and where the outputs are
  python3 scripts/bootstrap.py dev    the same environment with every plugin and the test tools
  python3 scripts/bootstrap.py test   dev, then ruff, mypy and pytest

Installs are skipped when this environment already holds this clone's packages as they are now
(a stamp in the environment records what was installed), so running it again is quick.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "demo": [".", "./plugins/asrctl-faster-whisper"],
    "dev": [".[test]", "./plugins/asrctl-hf[export]", "./plugins/asrctl-nemo", "./plugins/asrctl-faster-whisper"],
}
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
DEMO_OUT = Path("demo-out")


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*command: str) -> None:
    print("+ " + " ".join(command), flush=True)
    code = subprocess.run(command, cwd=ROOT).returncode
    if code:
        sys.exit(f"bootstrap: `{' '.join(command)}` failed (exit code {code}); its messages above say why")


def in_virtualenv() -> bool:
    return sys.prefix != sys.base_prefix


def enter_virtualenv() -> None:
    """Go on inside .venv (made if missing) unless a virtual environment is already active."""
    if in_virtualenv():
        return
    venv = ROOT / ".venv"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        say(f"creating a virtual environment in {venv}")
        run(sys.executable, "-m", "venv", str(venv))
        run(str(python), "-m", "pip", "install", "-q", "--upgrade", "pip")
    os.execv(str(python), [str(python), *sys.argv])


def has_nvidia_gpu() -> bool:
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def install_torch() -> None:
    """PyTorch for this machine: the CUDA build where an NVIDIA GPU is (it brings the CUDA libraries
    CTranslate2 uses too), else the CPU build, several gigabytes smaller."""
    if subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0:
        return
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    if has_nvidia_gpu() or platform.system() == "Darwin":  # macOS wheels are CPU/MPS builds already
        run(*pip, "torch")
        return
    if reachable(CPU_TORCH_INDEX):
        say("installing the CPU build of PyTorch")
        if subprocess.run([*pip, "torch", "--index-url", CPU_TORCH_INDEX], cwd=ROOT).returncode == 0:
            return
    say(f"{CPU_TORCH_INDEX} does not answer: PyTorch from the configured package index instead")
    run(*pip, "torch")


def reachable(url: str) -> bool:
    """Whether a connection to the URL's host opens within 3 s (pip would retry for minutes)."""
    host = urlsplit(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


def stamp(mode: str) -> dict[str, str]:
    """What an install of `mode` depends on: the clone's path and its pyproject files."""
    files = sorted([ROOT / "pyproject.toml", *ROOT.glob("plugins/*/pyproject.toml")])
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    return {"root": str(ROOT), "mode": mode, "pyproject": digest}


def install(mode: str) -> None:
    enter_virtualenv()
    record = Path(sys.prefix) / "asrctl-bootstrap.json"
    done = json.loads(record.read_text()) if record.exists() else []
    wanted = [stamp(m) for m in (["demo", "dev"] if mode == "demo" else ["dev"])]
    if any(s in done for s in wanted):
        say(f"asrctl is installed from {ROOT} in {sys.prefix}, as it is now")
        return
    install_torch()
    say(f"installing asrctl ({mode}) from {ROOT}")
    editable = [arg for package in PACKAGES[mode] for arg in ("-e", package)]
    run(sys.executable, "-m", "pip", "install", "-q", *editable)
    record.write_text(json.dumps([*done, stamp(mode)]))


def asrctl(*args: str) -> None:
    run(sys.executable, "-m", "asrctl", *args)


def demo() -> None:
    install("demo")
    out = Path.cwd() / DEMO_OUT
    manifest = ROOT / "manifests" / "examples" / "basic.jsonl"
    say("transcribing the example manifest with the default model (asrctl config shows it)")
    asrctl("infer", str(manifest), "-o", str(out / "basic.pred.jsonl"), "--output-format", "all",
           "--output-dir", str(out), "--language", "en", "--overwrite")
    say("scoring it")
    asrctl("eval", str(out / "basic.pred.jsonl"), "--by", "speaker", "--report", str(out / "report.html"))
    say(f"outputs in {out}: basic.pred.jsonl (the rows with pred_text), report.html, and per utterance "
        ".txt .srt .vtt .tsv .json")
    bin_dir = Path(sys.executable).parent
    say(f"next: {bin_dir / 'asrctl'} infer YOUR_AUDIO.wav   (or activate {bin_dir.parent} first)")


def test() -> None:
    install("dev")
    for command in (["ruff", "check", "."], ["mypy"], ["pytest"]):
        run(sys.executable, "-m", *command)


def main() -> None:
    modes = {"demo": demo, "dev": lambda: install("dev"), "test": test}
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        sys.exit(__doc__)
    modes[sys.argv[1]]()


if __name__ == "__main__":
    main()
