#!/usr/bin/env python3
"""Time `asrctl eval` on a synthetic predictions file, and jiwer's own corpus scoring beside it.

    python bench/eval_speed.py [--rows 100000]

The file has 20-word references with about 10% word errors, two speakers and mixed durations.
`asrctl eval` runs as a user would run it (a fresh process: start-up, reading, normalising,
WER + CER, a breakdown and a 1000-sample bootstrap interval); jiwer gets the same normalised
texts in memory.
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

WORDS = "the quick brown fox jumps over a lazy dog while seven cats sat on warm red mats near old blue boats".split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "preds.jsonl"
        with open(path, "w") as f:
            for i in range(args.rows):
                ref = rng.choices(WORDS, k=20)
                hyp = [w if rng.random() > 0.1 else rng.choice(WORDS) for w in ref if rng.random() > 0.02]
                f.write(json.dumps({"audio_filepath": f"{i}.wav", "duration": rng.uniform(1, 20), "text": " ".join(ref),
                                    "pred_text": " ".join(hyp), "speaker": f"s{i % 2}"}) + "\n")
        timings = {}
        for label, extra in (("wer", []), ("wer+cer --by speaker --ci", ["--cer", "--by", "speaker", "--ci"])):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "asrctl", "eval", str(path), "--json", *extra], check=True,
                           stdout=subprocess.DEVNULL)
            timings[f"asrctl eval ({label})"] = time.perf_counter() - start

        import jiwer

        from asrctl.score.normalizers import get_normalizer

        normalize = get_normalizer("whisper-en")
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        start = time.perf_counter()
        refs = [normalize(r["text"]) for r in rows]
        hyps = [normalize(r["pred_text"]) for r in rows]
        timings["whisper-en normalisation alone (both sides)"] = time.perf_counter() - start
        start = time.perf_counter()
        jiwer.process_words(refs, hyps)
        timings["jiwer.process_words (in memory, already normalised)"] = time.perf_counter() - start
    print(f"{args.rows} utterances\n\n| run | seconds |\n| --- | ---: |")
    for label, seconds in timings.items():
        print(f"| {label} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
