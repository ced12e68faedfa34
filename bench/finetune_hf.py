#!/usr/bin/env python3
"""`asrctl finetune` with the hf trainer: full fine-tuning against LoRA, and LoRA adapting Whisper to a domain.

    python bench/finetune_hf.py --model WHISPER_DIR [--speech DIR] [--count 80] [--out docs/benchmarks.md]

1. SFT and LoRA (rank 16 on every attention projection) of the same model on the same data, one
   `asrctl finetune` process each, for --compare-steps steps: time per step, samples/s, peak memory
   (RSS on CPU, torch.cuda.max_memory_allocated on a GPU), size of the saved model or adapter and of
   a resumable checkpoint (with optimizer state), and the share of parameters trained.
2. Domain adaptation: LoRA on synthesised speech (bench/make_speech.py: Harvard sentences read by
   flite's voices), WER on held-out utterances before and after. Held-out sentences never occur in
   the training data, so what LoRA can learn is the voices, not the text.

WER uses Whisper's English normaliser on both sides, as `asrctl eval` does by default.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).parent
HELD_OUT = 8  # the last 8 of make_speech.py's 40 sentences are only ever test data


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "asrctl", *args], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"asrctl {args[0]} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def split_speech(manifest: Path, folder: Path) -> tuple[Path, Path]:
    """train.jsonl and test.jsonl: test rows are the held-out sentences; train rows contain none of them."""
    sys.path.insert(0, str(BENCH))
    from make_speech import HARVARD

    held_out = HARVARD[-HELD_OUT:]
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    base = manifest.resolve().parent
    rows = [{**row, "audio_filepath": str(base / row["audio_filepath"])} for row in rows]
    test = [row for row in rows if row["text"] in held_out]
    train = [row for row in rows if not any(sentence in row["text"] for sentence in held_out)]
    paths = folder / "train.jsonl", folder / "test.jsonl"
    for path, chosen in zip(paths, (train, test)):
        path.write_text("".join(json.dumps(row) + "\n" for row in chosen))
    return paths


def finetune(model: str, train: Path, out: Path, method: str, steps: int, extra: list[str]) -> dict:
    lora = ["--peft", "lora"] if method == "lora" else []
    summary = json.loads(run("finetune", "-q", "-b", "hf-whisper", "-m", model, "--train", str(train), "-o", str(out),
                             "--max-steps", str(steps), *lora, *extra))
    history = json.loads((out / "trainer_state.json").read_text())["log_history"][-1]
    checkpoint = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    saved = out / ("adapter_model.safetensors" if method == "lora" else "model.safetensors")
    return {**summary, "step_seconds": history["train_runtime"] / summary["steps"],
            "samples_per_second": history["train_samples_per_second"], "saved_mb": saved.stat().st_size / 2**20,
            "checkpoint_mb": sum(f.stat().st_size for f in checkpoint.iterdir()) / 2**20}


def wer(predictions: Path) -> float:
    from asrctl.metrics import edit_counts, totals
    from asrctl.text import get_normalizer

    normalize = get_normalizer("whisper-en")
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    counts = edit_counts([normalize(r["text"]) for r in rows], [normalize(r["pred_text"] or "") for r in rows])
    return totals(counts).rate


def transcribe_wer(manifest: Path, model: str, out: Path, device: str) -> float:
    run("infer", str(manifest), "-b", "hf-whisper", "-m", model, "-o", str(out), "--language", "en",
        "--device", device, "--overwrite")
    return wer(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Whisper checkpoint folder (e.g. from build-whisper-base)")
    parser.add_argument("--speech", type=Path, help="a folder made by bench/make_speech.py (made here if absent)")
    parser.add_argument("--count", type=int, default=80, help="utterances to synthesise")
    parser.add_argument("--device", default="cpu", help="for `asrctl infer`; training takes the GPU when there is one")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--compare-steps", type=int, default=6, help="steps of each SFT/LoRA timing run")
    parser.add_argument("--lora-steps", type=int, default=40, help="steps of the domain-adaptation run")
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="of the domain-adaptation run")
    parser.add_argument("--out", type=Path, help="append the markdown tables to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        speech = args.speech or work / "speech"
        if not (speech / "manifest.jsonl").exists():
            subprocess.run([sys.executable, str(BENCH / "make_speech.py"), str(speech), "--count", str(args.count)],
                           check=True)
        train, test = split_speech(speech / "manifest.jsonl", work)
        common = ["--batch-size", str(args.batch_size), "--set", "data.language=en"]
        runs = {method: finetune(args.model, train, work / method, method, args.compare_steps, common)
                for method in ("sft", "lora")}
        before = transcribe_wer(test, args.model, work / "before.jsonl", args.device)
        adapted = finetune(args.model, train, work / "adapted", "lora", args.lora_steps,
                           [*common, "--learning-rate", str(args.learning_rate), "--set", "training.warmup_steps=5"])
        after = transcribe_wer(test, str(work / "adapted"), work / "after.jsonl", args.device)
        n_train = len(train.read_text().splitlines())
        n_test = len(test.read_text().splitlines())

    sft, lora = runs["sft"], runs["lora"]
    rows = [
        ("time per step (s)", "step_seconds", "{:.2f}"),
        ("samples / s", "samples_per_second", "{:.2f}"),
        (f"peak memory, MiB ({sft['peak_memory_kind']})", "peak_memory_mb", "{:.0f}"),
        ("saved model / adapter, MiB", "saved_mb", "{:.2f}"),
        ("checkpoint with optimizer state, MiB", "checkpoint_mb", "{:.1f}"),
        ("trainable parameters", "trainable_parameters", "{:,}"),
        ("trainable share", "trainable_share", "{:.2%}"),
    ]
    lines = [
        f"### Fine-tuning {args.model}: SFT against LoRA ({args.compare_steps} steps, batch {args.batch_size}, "
        f"{n_train} synthesised utterances)",
        "",
        "| | SFT | LoRA (r 16, q/k/v/out) | LoRA / SFT |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {label} | {fmt.format(sft[key])} | {fmt.format(lora[key])} | {lora[key] / sft[key]:.3f} |"
          for label, key, fmt in rows),
        "",
        f"### LoRA domain adaptation: held-out WER on flite speech ({n_train} train, {n_test} held-out utterances, "
        f"{args.lora_steps} steps, learning rate {args.learning_rate:g})",
        "",
        "| model | held-out WER |",
        "| --- | ---: |",
        f"| {Path(args.model).name} | {before:.2%} |",
        f"| + LoRA adapter | {after:.2%} |",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "a") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
