#!/usr/bin/env python3
"""`asrctl finetune` with batches of a fixed count against batches by duration (--batch-seconds).

    python bench/finetune_batching.py [--utterances 96] [--epochs 2] [--out docs/benchmarks.md]

Speech: Harvard sentences read by flite's voices (flite must be installed), one to seven joined
into each utterance, so durations spread over about 1.5-20 s as in real training sets. Models:
the tiny CTC models the tests build (wav2vec2 through -b hf-ctc, a FastConformer through -b nemo),
whose compute grows with the audio. Whisper is left out: its encoder computes on a 30-s window
whatever the audio, so duration batching is a fixed count there (see docs/finetune.md).

Each run is one `asrctl finetune` process, training for the same epochs on the same data:
samples/s (utterances trained on over the training summary's wall time, loading included, the same
in both) and the share of padded audio in the batches the run's sampler draws (the trainer's own:
transformers' length-grouped sampler for hf, NeMo's random batches for nemo; BucketBatches with
--batch-seconds). The fixed count is the one whose largest batch holds as much audio as
--batch-seconds, so both runs have the same worst-case memory.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

BENCH = Path(__file__).parent
sys.path.insert(0, str(BENCH.parent / "tests"))  # the tiny models the tests build
sys.path.insert(0, str(BENCH))


def speech(folder: Path, count: int) -> Path:
    from make_speech import HARVARD, VOICES, synthesise

    if not shutil.which("flite"):
        raise SystemExit("flite is not installed (apt-get install flite)")
    sentences = [s for s in HARVARD if s.strip()]
    folder.mkdir(parents=True)
    clips = {}
    for number, text in enumerate(sentences):
        path = folder / f"s{number:02d}.flac"
        synthesise(text, VOICES[number % len(VOICES)], path, folder.parent)
        clips[number] = (sf.read(path)[0], text)
    chance = random.Random(0)
    rows = []
    for k in range(count):
        picked = chance.sample(range(len(sentences)), chance.randint(1, 7))
        audio = np.concatenate([clips[i][0] for i in picked])
        path = folder / f"u{k:03d}.flac"
        sf.write(path, audio, 16000)
        rows.append({"audio_filepath": str(path), "duration": round(len(audio) / 16000, 3),
                     "text": " ".join(clips[i][1] for i in picked).lower().replace(".", "").replace(",", "")})
    manifest = folder / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def padded_share(batches: list[list[int]], durations: list[float]) -> float:
    padded = sum(len(b) * max(durations[i] for i in b) for b in batches)
    return 1 - sum(durations[i] for b in batches for i in b) / padded


def fixed_batches(trainer: str, durations: list[float], size: int, seed: int) -> list[list[int]]:
    """The batches of the trainer's own sampler for a fixed count, one epoch."""
    import torch

    if trainer == "hf":
        from transformers.trainer_pt_utils import LengthGroupedSampler

        order = list(LengthGroupedSampler(size, lengths=durations, generator=torch.Generator().manual_seed(seed)))
    else:
        order = torch.randperm(len(durations), generator=torch.Generator().manual_seed(seed)).tolist()
    return [order[i:i + size] for i in range(0, len(order), size)]


def finetune(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "asrctl", "finetune", "-q", "--json", *args],
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"asrctl finetune failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=96)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-seconds", type=float, default=80.0)
    parser.add_argument("--out", type=Path, help="Markdown file to append the table to")
    args = parser.parse_args()
    from tiny_models import build_tiny_ctc, build_tiny_nemo

    from asrctl.data.batching import BucketBatches

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = speech(tmp / "speech", args.utterances)
        rows = [json.loads(line) for line in train.read_text().splitlines()]
        durations = [r["duration"] for r in rows]
        size = max(1, int(args.batch_seconds // max(durations)))  # the same worst case as --batch-seconds
        models = {
            "hf-ctc": ("hf", ["-m", str(build_tiny_ctc(tmp / "ctc", hidden_size=96, intermediate_size=192)),
                              "--build-vocab"]),
            "nemo": ("nemo", ["-m", str(build_tiny_nemo(tmp / "nemo", [r["text"] for r in rows], ctc_only=True)),
                              "--allow-pickle"]),
        }
        lines = [f"{len(rows)} utterances of {min(durations):.1f}-{max(durations):.1f} s, {args.epochs:g} epochs; "
                 f"fixed count {size} (its largest batch {size * max(durations):.0f} s) against --batch-seconds "
                 f"{args.batch_seconds:g}", "",
                 "| backend | batches | steps | samples/s | padded audio | samples/s ratio |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for backend, (trainer, model) in models.items():
            results = {}
            for name, batching in (("fixed count", ["--batch-size", str(size)]),
                                   ("by duration", ["--batch-seconds", str(args.batch_seconds)])):
                summary = finetune("-b", backend, *model, "--train", str(train), "-o", str(tmp / f"{backend}-{name}"),
                                   "--epochs", str(args.epochs), "--learning-rate", "1e-3", "--eval-steps", "100000",
                                   *batching)
                batches = (list(BucketBatches(durations, batch_seconds=args.batch_seconds)) if name == "by duration"
                           else fixed_batches(trainer, durations, size, 0))
                rate = summary["epochs"] * len(rows) / summary["wall_seconds"]
                results[name] = rate
                ratio = rate / results["fixed count"]
                lines.append(f"| {backend} | {name} | {summary['steps']} | {rate:.2f} | "
                             f"{100 * padded_share(batches, durations):.1f}% | {ratio:.2f}x |")
        table = "\n".join(lines)
        print(table)
        if args.out:
            with args.out.open("a") as f:
                f.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
