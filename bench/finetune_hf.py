#!/usr/bin/env python3
"""`asrctl finetune` with the hf trainer: full fine-tuning against LoRA, and LoRA adapting Whisper to a domain.

    python bench/finetune_hf.py --model WHISPER_DIR [--out docs/finetune.md]

Speech: every Harvard sentence of bench/make_speech.py read by each of its flite voices (flite must
be installed); the last 8 sentences are the test set and the 4 before them validation, so what LoRA
can learn from the other 28 is the voices, not the text.

1. SFT and LoRA (rank 16 on every attention projection; with the former defaults, LoRA dropout
   0.05 and every activation kept, and with the shipped ones, no dropout and activation
   checkpointing), and SFT with activation checkpointing, of the same model on the same data, one
   `asrctl finetune` process each, for --compare-steps steps: time per
   step, samples/s, peak memory (RSS on CPU, torch.cuda.max_memory_allocated on a GPU), size of the
   saved model or adapter and of a resumable checkpoint (with optimizer state), share of parameters trained.
2. Domain adaptation: a LoRA run on the training sentences (the checkpoint with the best validation
   WER kept), WER on the test sentences before and after.

WER uses Whisper's English normaliser on both sides, as `asrctl eval` does by default.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).parent
HELD_OUT, DEV = 8, 4  # the last 8 of make_speech.py's 40 sentences are test data only, the 4 before them validation


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "asrctl", *args], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"asrctl {args[0]} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def synthesise_speech(folder: Path) -> list[dict]:
    """Every sentence in every voice (make_speech.py gives each sentence one voice), as manifest rows."""
    sys.path.insert(0, str(BENCH))
    from make_speech import HARVARD, VOICES, synthesise

    if not shutil.which("flite"):
        raise SystemExit("flite is not installed (apt-get install flite)")
    folder.mkdir(parents=True)
    rows = []
    for number, text in enumerate(HARVARD):
        for voice in VOICES:
            audio = folder / f"s{number:02d}-{voice}.flac"
            duration = synthesise(text, voice, audio, folder.parent)  # its scratch WAV goes beside the folder
            split = "test" if number >= len(HARVARD) - HELD_OUT else "dev" if number >= len(HARVARD) - HELD_OUT - DEV \
                else "train"
            rows.append({"audio_filepath": str(audio), "duration": round(duration, 3), "text": text, "speaker": voice,
                         "split": split})
    return rows


def with_complete_merges(model: Path, folder: Path) -> Path:
    """The model, with Whisper's first BPE merge ("Ġ t") put back when its tokenizer.json lacks it.

    The Whisper base that ../shared/tools/build-whisper-base converts from CTranslate2 has 49,999 of
    Whisper's 50,000 merges: without "Ġ t", " the" encodes as "Ġ" + "the" where Whisper writes "Ġthe".
    Decoding is unaffected, but training labels are, and a model trained on them learns to write lone
    spaces (greedy decoding then runs away on them). The fixed copy links to the original's other files.
    """
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    merges = tokenizer["model"]["merges"]
    if ["Ġ", "t"] in merges or "Ġ t" in merges:
        return model
    folder.mkdir()
    for path in model.iterdir():
        if path.name != "tokenizer.json":
            (folder / path.name).symlink_to(path.resolve())
    merges.insert(0, ["Ġ", "t"] if isinstance(merges[0], list) else "Ġ t")
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
    return folder


def write_manifest(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def finetune(model: str, train: Path, out: Path, extra: list[str]) -> dict:
    summary = json.loads(run("finetune", "-q", "--json", "-b", "hf-whisper", "-m", model, "--train", str(train),
                             "-o", str(out), "--set", "data.language=en", *extra))
    history = json.loads((out / "trainer_state.json").read_text())["log_history"][-1]
    checkpoint = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    saved = out / ("adapter_model.safetensors" if summary["method"] == "lora" else "model.safetensors")
    return {**summary, "step_seconds": history["train_runtime"] / summary["steps"],
            "samples_per_second": history["train_samples_per_second"], "saved_mb": saved.stat().st_size / 2**20,
            "checkpoint_mb": sum(f.stat().st_size for f in checkpoint.iterdir()) / 2**20}


def wer(predictions: Path) -> float:
    from asrctl.score.metrics import edit_counts, totals
    from asrctl.score.normalizers import get_normalizer

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
    parser.add_argument("--device", default="cpu", help="for `asrctl infer`; training takes the GPU when there is one")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--compare-steps", type=int, default=4, help="steps of each SFT/LoRA timing run")
    parser.add_argument("--lora-steps", type=int, default=35, help="steps of the domain-adaptation run (0: none)")
    parser.add_argument("--eval-steps", type=int, default=7, help="its validation interval (the best is kept)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="of the domain-adaptation run")
    parser.add_argument("--out", type=Path, help="append the markdown tables to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = str(with_complete_merges(Path(args.model), work / "model"))
        rows = synthesise_speech(work / "speech")
        train, dev, test = (write_manifest([r for r in rows if r["split"] == split], work / f"{split}.jsonl")
                            for split in ("train", "dev", "test"))
        steps = ["--batch-size", str(args.batch_size), "--max-steps", str(args.compare_steps)]
        variants = {
            "SFT": [],
            # rank 16 on q/k/v/out_proj: the former defaults (dropout 0.05, every activation kept) ...
            "LoRA, dropout 0.05": ["--peft", "lora", "--lora-dropout", "0.05",
                                   "--set", "training.gradient_checkpointing=false"],
            # ... and the shipped ones (no dropout, activations recomputed in the backward pass)
            "LoRA": ["--peft", "lora"],
            # what the same recomputation does for SFT
            "SFT, checkpointing": ["--set", "training.gradient_checkpointing=true",
                                   "--set", "training.gradient_checkpointing_kwargs={use_reentrant: false}"],
        }
        runs = {name: finetune(model, train, work / f"run{i}", [*steps, *extra])
                for i, (name, extra) in enumerate(variants.items())}
        if args.lora_steps:
            before = transcribe_wer(test, model, work / "before.jsonl", args.device)
            adapted = finetune(model, train, work / "adapted",
                               ["--peft", "lora", "--val", str(dev), "--batch-size", str(args.batch_size),
                                "--max-steps", str(args.lora_steps), "--eval-steps", str(args.eval_steps),
                                "--learning-rate", str(args.learning_rate), "--set", "training.warmup_steps=4"])
            after = transcribe_wer(test, str(work / "adapted"), work / "after.jsonl", args.device)

    sft = runs["SFT"]
    measures = [
        ("time per step (s)", "step_seconds", "{:.1f}"),
        ("samples / s", "samples_per_second", "{:.3f}"),
        (f"peak memory, MiB ({sft['peak_memory_kind']})", "peak_memory_mb", "{:,.0f}"),
        ("saved model / adapter, MiB", "saved_mb", "{:.1f}"),
        ("checkpoint with optimizer state, MiB", "checkpoint_mb", "{:.1f}"),
        ("trainable parameters", "trainable_parameters", "{:,}"),
        ("trainable share", "trainable_share", "{:.2%}"),
    ]
    names = list(runs)
    n_train, n_dev, n_test = (sum(1 for r in rows if r["split"] == split) for split in ("train", "dev", "test"))
    lines = [
        f"### SFT against LoRA: {Path(args.model).name}, {args.compare_steps} steps of batch {args.batch_size}, "
        f"on {'CPU' if sft['peak_memory_kind'] == 'rss' else 'GPU'}",
        "",
        "| | " + " | ".join(names) + " | " + " | ".join(f"{n} / SFT" for n in names[1:]) + " |",
        "| --- |" + " ---: |" * (2 * len(names) - 1),
        *(f"| {label} | " + " | ".join(fmt.format(runs[n][key]) for n in names) + " | "
          + " | ".join(f"{runs[n][key] / sft[key]:.3f}" for n in names[1:]) + " |" for label, key, fmt in measures),
        "",
    ]
    if args.lora_steps:
        lines += [
            f"### LoRA domain adaptation: {Path(args.model).name} on flite voices ({n_train} training utterances; "
            f"validation {n_dev} and test {n_test} utterances of other sentences; {args.lora_steps} steps of batch "
            f"{args.batch_size}, learning rate {args.learning_rate:g}; best of step "
            f"{adapted['best_checkpoint'].rsplit('-', 1)[1]} kept, validation WER {adapted['best_val_wer']:.2f}%)",
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
