#!/usr/bin/env python3
"""`asrctl infer` against the plain transformers ASR pipeline, same files and weights, one run.

    python bench/infer_hf.py --model WHISPER_DIR --manifest MANIFEST [--device cpu] [--export float32,int8]
                             [--out docs/benchmarks.md]

Every contender runs in a fresh process and is timed from process start to the last transcript,
so interpreter start-up, imports, model load and audio decoding count on both sides. The
pipeline is tried at several batch sizes and its best is reported; it decodes without timestamp
tokens, as asrctl does (the pipeline worker takes them for long files, bench/infer_long.py). WER
uses Whisper's English normaliser on both references and hypotheses.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PIPELINE_WORKER = r"""
import json, sys, time
import soundfile as sf, soxr, torch
from transformers import pipeline
manifest, model, device, batch_size, beams, out, dtype, timestamps = (sys.argv[1:] + ["float32", "false"])[:8]
rows = [json.loads(l) for l in open(manifest)]
base = __import__("pathlib").Path(manifest).parent
pipe = pipeline("automatic-speech-recognition", model=model, device=device, dtype=getattr(torch, dtype))
def audio(row):
    x, sr = sf.read(base / row["audio_filepath"], dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return {"raw": soxr.resample(x, sr, 16000) if sr != 16000 else x, "sampling_rate": 16000}
kwargs = {"language": "en", "task": "transcribe", "num_beams": int(beams)}
preds = pipe([audio(r) for r in rows], batch_size=int(batch_size), generate_kwargs=kwargs,
             return_timestamps=timestamps == "true")
with open(out, "w") as f:
    for row, pred in zip(rows, preds):
        f.write(json.dumps({**row, "pred_text": pred["text"].strip()}) + "\n")
"""


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def score(pred_file: Path) -> float:
    import jiwer

    from asrctl.score.normalizers import get_normalizer

    normalize = get_normalizer("whisper-en")
    rows = [json.loads(line) for line in pred_file.read_text().splitlines()]
    refs = [normalize(r["text"]) for r in rows]
    hyps = [normalize(r["pred_text"] or "") for r in rows]
    return jiwer.wer(refs, hyps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Whisper checkpoint folder (e.g. from build-whisper-base)")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pipeline-batch-sizes", default="1,4,8,16")
    parser.add_argument("--batch-size", type=int, default=16, help="asrctl --batch-size")
    parser.add_argument("--beams", default="1,5", help="beam widths to compare at (the same on both sides)")
    parser.add_argument("--export", default="", metavar="TYPES",
                        help="also `asrctl export` the model to CTranslate2 with these weight types (e.g. "
                             "float32,int8) and run it with -b faster-whisper (needs the asrctl-faster-whisper plugin)")
    parser.add_argument("--out", type=Path, help="append the markdown table to this file")
    args = parser.parse_args()

    audio_seconds = sum(json.loads(line)["duration"] for line in args.manifest.read_text().splitlines())
    rows = []  # (label, wall seconds, WER, RTFx of the pipeline it is compared with)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        exported = {weights: Path(tmp) / f"ct2-{weights}" for weights in args.export.split(",") if weights}
        for weights, folder in exported.items():  # not timed: a model is exported once, served many times
            subprocess.run([sys.executable, "-m", "asrctl", "export", "-b", "hf-whisper", "-m", args.model, "--to",
                            "faster-whisper", "-o", str(folder), "--quantize", weights], check=True,
                           stdout=subprocess.DEVNULL)
        for beams in [int(b) for b in args.beams.split(",")]:
            sweep = []
            for bs in [int(b) for b in args.pipeline_batch_sizes.split(",")]:
                wall = timed([sys.executable, "-c", PIPELINE_WORKER, str(args.manifest), args.model, args.device,
                              str(bs), str(beams), str(out)])
                sweep.append((f"pipeline, batch {bs}, beams {beams}", wall, score(out)))
                print(sweep[-1], file=sys.stderr)
            best = min(sweep, key=lambda r: r[1])
            base = audio_seconds / best[1]
            rows.append((*best, base))
            variants = [("float32", "hf-whisper", args.model, [])]
            if args.device == "cpu":
                variants.append(("--quantize int8", "hf-whisper", args.model, ["--quantize", "int8"]))
            variants += [(f"-b faster-whisper, exported {weights}", "faster-whisper", str(folder),
                          ["-O", f"compute_type={weights}"]) for weights, folder in exported.items()]
            for label, backend, model, extra in variants:
                wall = timed([sys.executable, "-m", "asrctl", "infer", str(args.manifest), "-b", backend,
                              "-m", model, "-o", str(out), "--device", args.device, "--language", "en",
                              "--batch-size", str(args.batch_size), "--beam-size", str(beams), "-q", "--overwrite",
                              *extra])
                rows.append((f"asrctl infer {label}, beams {beams}", wall, score(out), base))
                print(rows[-1], file=sys.stderr)

    lines = [
        f"Whisper base, {len(args.manifest.read_text().splitlines())} files, {audio_seconds / 60:.1f} min of audio, "
        f"device {args.device}; wall time from process start (imports, model load, decoding included); "
        "each asrctl row is compared with the pipeline row above it (best batch size, same beam width).",
        "",
        "| run | wall s | RTFx | vs pipeline | WER |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, wall, wer, base in rows:
        rtfx = audio_seconds / wall
        lines.append(f"| {label} | {wall:.1f} | {rtfx:.1f} | {rtfx / base:.2f}x | {100 * wer:.2f}% |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n\n")


if __name__ == "__main__":
    main()
