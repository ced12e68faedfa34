#!/usr/bin/env python3
"""Long recordings: `asrctl infer --segment` against faster-whisper and the transformers pipeline.

    python bench/make_speech.py SET --count 40 --long 4 --long-minutes 3
    python bench/infer_long.py --hf WHISPER_HF_DIR --ct2 WHISPER_CT2_DIR --manifest SET/long.jsonl

Every contender is a fresh process timed from its start (imports, model load, VAD, audio decoding
included), one run each, greedy decoding, English, the same Whisper weights (CTranslate2 int8 for
faster-whisper). WER with Whisper's English normaliser over the joined references. "Words in
silences" counts, from runs with segment timestamps, the words of predicted segments that lie
mostly inside the recordings' long silences (the manifest's `silences`): words made up where
nobody speaks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from infer_faster_whisper import timed  # bench/ is on sys.path when this script runs
from infer_hf import PIPELINE_WORKER, score

FASTER_WHISPER = r"""
import json, sys
from pathlib import Path
from faster_whisper import BatchedInferencePipeline, WhisperModel
manifest, model_dir, batch_size, out = sys.argv[1:5]
rows = [json.loads(line) for line in open(manifest)]
model = WhisperModel(model_dir, device="cpu", compute_type="int8")
runner = BatchedInferencePipeline(model) if int(batch_size) else model
options = {"batch_size": int(batch_size)} if int(batch_size) else {}
with open(out, "w") as f:
    for row in rows:
        segments, _ = runner.transcribe(str(Path(manifest).parent / row["audio_filepath"]), language="en", beam_size=1,
                                        **options)
        segments = [{"start": s.start, "end": s.end, "text": s.text.strip()} for s in segments]
        f.write(json.dumps({**row, "pred_text": " ".join(s["text"] for s in segments),
                            "pred_segments": segments}) + "\n")
"""


def words_in_silences(pred_file: Path) -> int | None:
    """Predicted words whose segment lies more than half inside one of the row's long silences."""
    total = 0
    for row in map(json.loads, pred_file.read_text().splitlines()):
        if "pred_segments" not in row:
            return None
        for segment in row["pred_segments"]:
            length = max(segment["end"] - segment["start"], 1e-6)
            inside = sum(max(0.0, min(segment["end"], b) - max(segment["start"], a)) for a, b in row["silences"])
            if inside > length / 2:
                total += len(segment["text"].split())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hf", required=True, help="Whisper in Hugging Face layout")
    parser.add_argument("--ct2", required=True, help="the same Whisper in CTranslate2 layout")
    parser.add_argument("--manifest", type=Path, required=True, help="long recordings (make_speech.py --long)")
    parser.add_argument("--batch-size", type=int, default=8, help="every contender's batch size")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.manifest.read_text().splitlines()]
    audio_seconds = sum(row["duration"] for row in rows)
    b = str(args.batch_size)

    def asrctl(backend: str, model: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "asrctl", "infer", str(args.manifest), "-b", backend, "-m", model, "-o", "OUT",
                "--device", "cpu", "--language", "en", "--batch-size", b, "-q", "--overwrite", *extra]

    contenders = [
        (f"faster-whisper BatchedInferencePipeline (Silero VAD, batch {b}), file by file",
         [sys.executable, "-c", FASTER_WHISPER, str(args.manifest), args.ct2, b, "OUT"]),
        ("faster-whisper transcribe(), sequential",
         [sys.executable, "-c", FASTER_WHISPER, str(args.manifest), args.ct2, "0", "OUT"]),
        ("asrctl infer -b faster-whisper --segment auto -O batched=true",
         asrctl("faster-whisper", args.ct2, "--segment", "auto", "-O", "compute_type=int8", "-O", "batched=true")),
        ("asrctl infer -b faster-whisper --segment auto",
         asrctl("faster-whisper", args.ct2, "--segment", "auto", "-O", "compute_type=int8")),
        ("asrctl infer -b hf-whisper --segment none (sequential long-form)",
         asrctl("hf-whisper", args.hf, "--segment", "none")),
        ("asrctl infer -b hf-whisper --segment auto", asrctl("hf-whisper", args.hf, "--segment", "auto")),
        (f"transformers pipeline, chunk_length_s=30, batch {b}",
         [sys.executable, "-c", PIPELINE_WORKER.replace('pipeline("automatic-speech-recognition", model=model,',
                                                        'pipeline("automatic-speech-recognition", model=model, '
                                                        'chunk_length_s=30,'),
          str(args.manifest), args.hf, "cpu", b, "1", "OUT", "float32", "true"]),
        # untimed: segment timestamps, for the words made up in silences
        ("hf-whisper --segment none --timestamps segment", asrctl("hf-whisper", args.hf, "--segment", "none",
                                                                 "--timestamps", "segment")),
        ("hf-whisper --segment auto --timestamps segment", asrctl("hf-whisper", args.hf, "--segment", "auto",
                                                                 "--timestamps", "segment")),
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, command in contenders:
            out = Path(tmp) / "out.jsonl"
            wall, cpu = timed([str(out) if part == "OUT" else part for part in command])
            results.append((label, wall, cpu, score(out), words_in_silences(out)))
            print(results[-1], file=sys.stderr)

    silences = sum(b - a for row in rows for a, b in row["silences"])
    best = audio_seconds / results[0][1]
    lines = [
        f"Whisper base, {len(rows)} recordings, {audio_seconds / 60:.1f} min ({silences:.0f} s of it in long "
        f"silences), CPU, greedy, English; one run each, wall time from process start.",
        "",
        "| run | wall s | CPU s | RTFx | vs BatchedInferencePipeline | WER | words in silences |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, wall, cpu, wer, made_up in results:
        timed_run = "--timestamps" not in label
        lines.append(f"| {label} | {wall:.1f} | {cpu:.1f} | {audio_seconds / wall:.1f} | "
                     f"{(audio_seconds / wall) / best:.2f}x | {100 * wer:.2f}% | "
                     f"{'' if made_up is None else made_up} |" if timed_run else
                     f"| {label} | | | | | {100 * wer:.2f}% | {made_up} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
