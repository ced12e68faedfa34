#!/usr/bin/env python3
"""`asrctl infer --engine ray` against `--engine local`, same files, model and batches, one run.

    python bench/make_speech.py /tmp/speech --count 300
    python bench/infer_ray.py --manifest /tmp/speech/manifest.jsonl --model WHISPER_DIR [--workers 2]

Each run is a fresh process timed from its start to its exit, so imports, model load and, for the
ray engine, starting Ray on this machine (no RAY_ADDRESS) and its workers all count. The output
files are compared byte for byte. What this shows on one machine is the engine's overhead; the
gain of the ray engine is more GPUs and machines than one process can use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from infer_hf import score, timed  # bench/ is on sys.path when this script runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--model", required=True,
                        help="model folder or hub id (e.g. Whisper base from build-whisper-base)")
    parser.add_argument("--backend", default="hf-whisper")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", default="2", help="ray engine model workers (-E workers)")
    parser.add_argument("--out", type=Path, help="append the markdown table to this file")
    args = parser.parse_args()

    rows = [json.loads(line) for line in args.manifest.read_text().splitlines()]
    audio_seconds = sum(row["duration"] for row in rows)
    language = ["--language", "en"] if args.backend == "hf-whisper" else []
    contenders = [("local engine", ["--engine", "local"]),
                  (f"ray engine, {args.workers} workers", ["--engine", "ray", "-E", f"workers={args.workers}"])]
    # The runs inherit this environment: Ray is started here, and without its default 30% of RAM
    # for the object store (in-flight batches need far less).
    os.environ.pop("RAY_ADDRESS", None)
    os.environ["RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION"] = "0.02"
    results = []  # (label, wall seconds, WER, output bytes)
    with tempfile.TemporaryDirectory(dir=args.manifest.parent) as tmp:  # outputs beside the audio: same relative paths
        for label, extra in contenders:
            out = Path(tmp) / f"{len(results)}.jsonl"
            wall = timed([sys.executable, "-m", "asrctl", "infer", str(args.manifest), "-b", args.backend,
                          "-m", args.model, "-o", str(out), "--device", args.device, "-q", *language, *extra])
            results.append((label, wall, score(out), out.read_bytes()))
            print(results[-1][:3], file=sys.stderr)

    same = all(r[3] == results[0][3] for r in results)
    lines = [
        f"{args.backend} {args.model}, {len(rows)} files, {audio_seconds / 60:.1f} min of audio, device {args.device}, "
        f"{os.cpu_count()} CPUs; wall time from process start (imports, Ray start, model load included); "
        f"output files {'identical' if same else 'DIFFERENT'}.",
        "",
        "| run | wall s | RTFx | vs local | WER |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    base = results[0][1]
    for label, wall, wer, _ in results:
        lines.append(f"| {label} | {wall:.1f} | {audio_seconds / wall:.1f} | {base / wall:.2f}x | {100 * wer:.2f}% |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n\n")


if __name__ == "__main__":
    main()
