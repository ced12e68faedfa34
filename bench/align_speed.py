#!/usr/bin/env python3
"""`asrctl align` speed and memory on a CPU, beside `asrctl infer --timestamps word` on the same audio.

    python bench/align_speed.py --whisper WHISPER_HF_DIR [--minutes 3] [--long-minutes 30]

The audio: the speech fixtures laid out with silences of 0.5-1.5 s into a recording of --minutes,
and one of --long-minutes for memory; its text, the fixtures' texts in the same order. Each run is
a whole process (model load included), timed, with its peak resident memory:

- Whisper base (hf-whisper): `asrctl align`, and `asrctl infer --timestamps word` (what a user gets
  without a known text: the words the model heard, with times);
- a CTC model the size of wav2vec2-base (95 M parameters; random weights, built from its config:
  the work per second of audio is the same as a trained one's, the Hub being out of reach here):
  `asrctl align -b hf-ctc`, and `asrctl infer -b hf-ctc` (which gives no word times).

stable-ts's `align()` and whisperX's alignment need their own model files (openai-whisper's
checkpoints, torchaudio's wav2vec2 bundles) from servers this machine cannot reach, so the anchor
is `asrctl infer` on the same audio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "tests" / "data" / "speech"
sys.path.insert(0, str(ROOT / "tests"))


def recording(path: Path, minutes: float, seed: int = 0) -> dict:
    """The short fixtures, over and over with silences between, to `minutes`; its row (with its text)."""
    texts = {json.loads(line)["audio_filepath"]: json.loads(line)["text"]
             for line in (SPEECH / "manifest.jsonl").read_text().splitlines()}
    names = sorted(name for name in texts if name.startswith("utt"))
    clips = {name: sf.read(SPEECH / name, dtype="float32")[0] for name in names}
    rng = np.random.default_rng(seed)
    parts, words, seconds = [], [], 0.0
    while seconds < minutes * 60:
        name = names[len(words) % len(names)]
        gap = np.zeros(round(rng.uniform(0.5, 1.5) * 16000), "float32")
        parts += [gap, clips[name]]
        seconds += (len(gap) + len(clips[name])) / 16000
        words.append(texts[name])
    audio = np.concatenate(parts)
    sf.write(path, audio, 16000)
    return {"audio_filepath": str(path), "duration": round(len(audio) / 16000, 3), "text": " ".join(words)}


# Runs a command and prints its peak resident memory (KiB): the only child of this process.
MEASURED = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GiB) of a whole process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURED, sys.executable, "-m", "asrctl", *command, "-q", "--device",
                           "cpu"], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, int(done.stdout.split()[-1]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--whisper", required=True, help="Whisper base in transformers' layout (a folder)")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--long-minutes", type=float, default=30.0)
    args = parser.parse_args()
    from tiny_models import build_tiny_ctc

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ctc = build_tiny_ctc(folder / "ctc", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                             intermediate_size=3072, conv_dim=(512,) * 7, num_conv_pos_embeddings=128,
                             num_conv_pos_embedding_groups=16)
        rows = {}
        for name, minutes in (("short", args.minutes), ("long", args.long_minutes)):
            rows[name] = recording(folder / f"{name}.flac", minutes)
            (folder / f"{name}.jsonl").write_text(json.dumps(rows[name]) + "\n")
        results = []
        plan = [
            ("Whisper base", "asrctl infer --timestamps word", "short",
             ["infer", "-b", "hf-whisper", "-m", args.whisper, "--timestamps", "word", "--language", "en"]),
            ("Whisper base", "asrctl align", "short", ["align", "-b", "hf-whisper", "-m", args.whisper]),
            ("CTC, wav2vec2-base size", "asrctl infer", "short", ["infer", "-b", "hf-ctc", "-m", str(ctc)]),
            ("CTC, wav2vec2-base size", "asrctl align", "short", ["align", "-b", "hf-ctc", "-m", str(ctc)]),
            ("CTC, wav2vec2-base size", "asrctl align", "long", ["align", "-b", "hf-ctc", "-m", str(ctc)]),
            ("Whisper base", "asrctl align", "long", ["align", "-b", "hf-whisper", "-m", args.whisper]),
        ]
        for k, (model, how, which, command) in enumerate(plan):
            out = folder / f"out{k}.jsonl"
            wall, peak = run([command[0], str(folder / f"{which}.jsonl"), *command[1:], "-o", str(out)])
            audio = rows[which]["duration"]
            results.append((model, how, audio, wall, peak))
            print(f"{model} | {how} | {audio / 60:.1f} min | {wall:.1f} s | {audio / wall:.1f} audio s/s | "
                  f"peak {peak:.2f} GiB", flush=True)

    print("\n| model | run | audio | wall s | audio s/s | peak memory |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for model, how, audio, wall, peak in results:
        print(f"| {model} | {how} | {audio / 60:.1f} min | {wall:.1f} | {audio / wall:.1f} | {peak:.2f} GiB |")


if __name__ == "__main__":
    main()
