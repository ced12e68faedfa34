"""A probe of asrctl's training augmentation in a subprocess: a sitecustomize that logs each call
of Augmentation (its input's and output's checksums and length) to the file $AUGMENT_LOG."""

from __future__ import annotations

import json
from pathlib import Path

SITECUSTOMIZE = '''
import hashlib, json, os
from asrctl.train import augment

_call = augment.Augmentation.__call__

def logged(self, audio):
    out = _call(self, audio)
    with open(os.environ["AUGMENT_LOG"], "a") as log:
        log.write(json.dumps({"input": hashlib.sha1(audio.tobytes()).hexdigest(), "samples": len(audio),
                              "output": hashlib.sha1(out.tobytes()).hexdigest()}) + "\\n")
    return out

augment.Augmentation.__call__ = logged
'''


def augment_probe(folder: Path) -> Path:
    """A folder for run_cli(pythonpath=...) that makes the command log its augmentation."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def checksum(audio) -> str:
    import hashlib

    return hashlib.sha1(audio.tobytes()).hexdigest()


def noise_manifest(folder: Path, seconds: float = 1.5) -> Path:
    """White noise, as a one-row manifest of noise audio (no transcript)."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "noise.wav", np.random.default_rng(0).normal(0, 0.1, int(16000 * seconds)), 16000)
    manifest = folder / "noise.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "noise.wav", "duration": seconds}) + "\n")
    return manifest
