#!/usr/bin/env python3
"""`asrctl infer -b faster-whisper` against faster-whisper called directly, same files, one run.

    asrctl install ./plugins/asrctl-faster-whisper
    python bench/infer_faster_whisper.py --model WHISPER_CT2_DIR --manifest MANIFEST [--compute-type int8]

Same timing as bench/infer_hf.py: each contender in a fresh process, wall time from process start
(imports, model load, audio decoding included), WER with Whisper's English normaliser. faster-whisper
runs as its README shows, WhisperModel.transcribe() file by file, and through its
BatchedInferencePipeline, file by file (a batch then holds one file's 30-s chunks: one for a
short file) and across files as a user batches short files with it (the files laid end to end,
one `clip_timestamps` clip each); asrctl is compared with the fastest of them. Everything decodes
greedily with the same compute type and CTranslate2's default threads. Contenders alternate
(direct, asrctl, direct, asrctl) so that a load drifting on a shared machine favours no side, and
CPU seconds (the process and its children: decoding workers count) are shown beside wall time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infer_hf import score  # bench/ is on sys.path when this script runs

DIRECT_WORKER = r"""
import json, sys
from pathlib import Path
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio
manifest, model_dir, device, compute_type, mode, out = sys.argv[1:7]
rows = [json.loads(line) for line in open(manifest)]
paths = [str(Path(manifest).parent / row["audio_filepath"]) for row in rows]
model = WhisperModel(model_dir, device=device, compute_type=compute_type)
kind, _, batch = mode.partition(":")
texts = []
if kind == "sequential":  # WhisperModel.transcribe(), file by file
    for path in paths:
        segments, _ = model.transcribe(path, language="en", beam_size=1)
        texts.append("".join(s.text for s in segments).strip())
elif kind == "per-file":  # BatchedInferencePipeline, file by file: a batch holds one file's chunks
    pipeline = BatchedInferencePipeline(model)
    for path in paths:
        segments, _ = pipeline.transcribe(path, language="en", beam_size=1, batch_size=int(batch))
        texts.append("".join(s.text for s in segments).strip())
else:  # across files: the files laid end to end, each one clip, so a batch holds several files
    audios = [decode_audio(path) for path in paths]
    starts = np.cumsum([0] + [len(audio) for audio in audios]) / 16000
    clips = [{"start": float(a), "end": float(b)} for a, b in zip(starts[:-1], starts[1:])]
    segments, _ = BatchedInferencePipeline(model).transcribe(np.concatenate(audios), language="en", beam_size=1,
                                                           batch_size=int(batch), clip_timestamps=clips)
    found = [[] for _ in paths]
    for segment in segments:  # one segment per clip without timestamps; its start is its clip's
        found[int(np.searchsorted(starts, segment.start + 1e-3, side="right")) - 1].append(segment.text)
    texts = ["".join(parts).strip() for parts in found]
with open(out, "w") as f:
    for row, text in zip(rows, texts):
        f.write(json.dumps({**row, "pred_text": text}) + "\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Whisper in CTranslate2 layout (e.g. from build-whisper-base)")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--batch-size", type=int, default=16, help="asrctl --batch-size")
    parser.add_argument("--pipeline-batch-size", type=int, default=8, help="BatchedInferencePipeline batch_size")
    args = parser.parse_args()

    audio_seconds = sum(json.loads(line)["duration"] for line in args.manifest.read_text().splitlines())
    runs = []  # (label, wall seconds, CPU seconds, WER)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        direct = [sys.executable, "-c", DIRECT_WORKER, str(args.manifest), args.model, args.device, args.compute_type]
        asrctl = [sys.executable, "-m", "asrctl", "infer", str(args.manifest), "-b", "faster-whisper", "-m", args.model,
                  "-o", str(out), "--device", args.device, "--language", "en", "--batch-size", str(args.batch_size),
                  "-O", f"compute_type={args.compute_type}", "-q", "--overwrite"]
        batch = args.pipeline_batch_size
        for label, command in [
            ("faster-whisper transcribe() per file", [*direct, "sequential", str(out)]),
            ("asrctl infer -O batched=false", [*asrctl, "-O", "batched=false"]),
            (f"faster-whisper BatchedInferencePipeline per file, batch {batch}",
             [*direct, f"per-file:{batch}", str(out)]),
            (f"faster-whisper BatchedInferencePipeline across files, batch {batch}",
             [*direct, f"across:{batch}", str(out)]),
            ("asrctl infer -O batched=true", [*asrctl, "-O", "batched=true"]),
        ]:
            runs.append((label, *timed(command), score(out)))
            print(runs[-1], file=sys.stderr)
    fastest_direct = min(wall for label, wall, _, _ in runs if label.startswith("faster-whisper"))

    lines = [
        f"Whisper base (CTranslate2, {args.compute_type}), {len(args.manifest.read_text().splitlines())} files, "
        f"{audio_seconds / 60:.1f} min of audio, device {args.device}, greedy; wall time from process start "
        f"(imports, model load, decoding included); RTFx relative to the faster direct run.",
        "",
        "| run | wall s | CPU s | RTFx | vs direct | WER |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, wall, cpu, wer in runs:
        lines.append(f"| {label} | {wall:.1f} | {cpu:.1f} | {audio_seconds / wall:.1f} | {fastest_direct / wall:.2f}x "
                     f"| {100 * wer:.2f}% |")
    print("\n".join(lines))


def timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of a command and the processes it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


if __name__ == "__main__":
    main()
