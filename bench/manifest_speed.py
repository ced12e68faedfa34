#!/usr/bin/env python3
"""Time the data preparation commands as a user runs them, each a fresh `asrctl` process.

    python bench/manifest_speed.py [--files 10000] [--rows 1000000]

- `manifest create` + `manifest validate` over FILES short WAVs (0.5-2 s, 16 kHz mono): rows per second.
- `manifest stats`, `filter` and `merge` over a synthetic ROWS-row manifest (and a tenth of it, to show
  how memory grows with rows): wall time and the asrctl process's peak RSS, measured with
  resource.getrusage(RUSAGE_CHILDREN) in a wrapper process that runs only that command.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runs one command and prints its wall seconds and peak RSS (KiB on Linux): the wrapper's only child.
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def measure(*args: str) -> tuple[float, float]:
    """(seconds, peak MiB) of `asrctl ARGS` in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "asrctl", *args],
                         capture_output=True, text=True, check=True).stdout.split()
    seconds, kib, code = float(out[0]), int(out[1]), int(out[2])
    if code not in (0, 3):
        raise SystemExit(f"asrctl {' '.join(args)} failed with exit code {code}")
    return seconds, kib / 1024


def make_audio(folder: Path, count: int) -> None:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    for i in range(count):
        seconds = rng.uniform(0.5, 2.0)
        sub = folder / f"spk{i % 50:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        sf.write(sub / f"utt{i:06d}.wav", (0.05 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
        (sub / f"utt{i:06d}.txt").write_text(f"utterance number {i}\n")


def make_manifest(path: Path, rows: int) -> None:
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog while seven cats sat on warm red mats".split()
    with open(path, "w") as f:
        for i in range(rows):
            f.write(json.dumps({"audio_filepath": f"audio/spk{i % 2000}/utt{i}.wav",
                                "duration": round(rng.uniform(1, 20), 3),
                                "text": " ".join(rng.choices(words, k=12)), "speaker": f"spk{i % 2000}",
                                "wer": round(rng.uniform(0, 40), 2)}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    results: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        make_audio(root / "audio", args.files)
        print(f"wrote {args.files} WAVs in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        manifest = root / "created.jsonl"
        seconds, mib = measure("manifest", "create", str(root / "audio"), "-o", str(manifest), "-q")
        results.append(("manifest create (headers + sidecar transcripts)", args.files, seconds, mib))
        seconds, mib = measure("manifest", "validate", str(manifest), "-q", "--json")
        results.append(("manifest validate (open + probe every file)", args.files, seconds, mib))

        baseline, base_mib = measure("--version")
        results.append(("asrctl --version (start-up alone)", 0, baseline, base_mib))
        for rows in (args.rows // 10, args.rows):
            big = root / f"rows{rows}.jsonl"
            make_manifest(big, rows)
            seconds, mib = measure("manifest", "stats", str(big), "--json")
            results.append(("manifest stats --json", rows, seconds, mib))
            seconds, mib = measure("manifest", "filter", str(big), "-o", str(root / "kept.jsonl"), "--where", "wer<=20",
                                   "--max-duration", "15", "-q")
            results.append(("manifest filter --where wer<=20 --max-duration 15", rows, seconds, mib))
            seconds, mib = measure("manifest", "merge", str(big), str(root / "kept.jsonl"),
                                   "-o", str(root / "m.jsonl"), "-q")
            results.append(("manifest merge (input + its filtered half: all repeats)", rows, seconds, mib))
            big.unlink()
    print("| command | rows | seconds | rows/s | peak RSS (MiB) |\n| --- | ---: | ---: | ---: | ---: |")
    for label, rows, seconds, mib in results:
        rate = f"{rows / seconds:,.0f}" if rows else "-"
        print(f"| {label} | {rows:,} | {seconds:.2f} | {rate} | {mib:.0f} |")


if __name__ == "__main__":
    main()
