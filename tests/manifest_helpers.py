"""Shared helpers for the tests/test_manifest_*.py files (no tests here): audio and manifests in tmp folders."""

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from asrctl.cli import cli


def write_wav(path: Path, seconds: float, sr: int = 16000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sr))) / sr
    tone = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(path, np.stack([tone] * channels, axis=1) if channels > 1 else tone, sr)
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def invoke(*args: str):
    """The real CLI, in this process (fast): exit code, stdout and stderr apart."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def split_lines(manifest: Path, at: int, first: Path, second: Path) -> tuple[Path, Path]:
    """The rows of `manifest` before `at` into `first`, the others into `second`."""
    rows = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    first.write_text("".join(rows[:at]), encoding="utf-8")
    second.write_text("".join(rows[at:]), encoding="utf-8")
    return first, second
