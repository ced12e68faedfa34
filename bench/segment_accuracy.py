#!/usr/bin/env python3
"""Long recordings, segmented or sequential: the WER of `asrctl infer --segment vad` against
`--segment none` (Whisper's own sequential long-form) on recordings made of the test fixtures.

    python bench/segment_accuracy.py --hf WHISPER_HF_DIR [--recordings 4] [--first-seed 1]

Each recording lays the fixtures of tests/data/speech (flite, 1.5-34 s each, one of 34 s without a
pause) out in both orders with silences of 0.6-9 s over a low noise floor (about three minutes);
the first in order, the others shuffled with their silences by the seed. References are the
fixtures' texts joined. One run of each mode, greedy, English, Whisper's English normaliser.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import jiwer
import numpy as np
import soundfile as sf

from asrctl.data.audio import load_audio
from asrctl.score.normalizers import get_normalizer

SPEECH = Path(__file__).parents[1] / "tests" / "data" / "speech"
GAPS = [1.0, 6.0, 0.8, 1.5, 9.0, 0.6, 2.0, 1.2, 5.0] * 2


def recordings(folder: Path, count: int, first_seed: int) -> Path:
    """`count` recordings and their manifest in `folder`."""
    texts = {Path(row["audio_filepath"]).stem: row["text"]
             for row in map(json.loads, (SPEECH / "manifest.jsonl").read_text().splitlines())}
    rows = []
    for seed in range(first_seed, first_seed + count):
        order, gaps = list(texts) + list(texts)[::-1], list(GAPS)
        if seed > 1:
            random.Random(seed).shuffle(order)
            random.Random(seed).shuffle(gaps)
        parts = []
        for gap, name in zip(gaps, order):
            parts += [np.zeros(int(gap * 16000), np.float32), load_audio(str(SPEECH / f"{name}.flac"))]
        audio = np.concatenate([*parts, np.zeros(32000, np.float32)])
        audio += np.random.default_rng(seed).normal(0, 0.002, len(audio)).astype(np.float32)
        sf.write(folder / f"talk{seed}.wav", audio, 16000)
        rows.append({"audio_filepath": f"talk{seed}.wav", "duration": len(audio) / 16000,
                     "text": " ".join(texts[name] for name in order)})
    manifest = folder / "talks.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hf", required=True, help="Whisper in the Hugging Face layout")
    parser.add_argument("--recordings", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=1)
    args = parser.parse_args()
    normalize = get_normalizer("whisper-en")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = recordings(Path(tmp), args.recordings, args.first_seed)
        print("| --segment | WER |\n| --- | ---: |")
        for mode in ("none", "vad"):
            out = Path(tmp) / f"{mode}.jsonl"
            subprocess.run([sys.executable, "-m", "asrctl", "infer", str(manifest), "-b", "hf-whisper", "-m", args.hf,
                            "-o", str(out), "--device", "cpu", "--language", "en", "--segment", mode, "-q"], check=True)
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            wer = jiwer.wer([normalize(r["text"]) for r in rows], [normalize(r["pred_text"]) for r in rows])
            print(f"| {mode} | {100 * wer:.2f}% |")


if __name__ == "__main__":
    main()
