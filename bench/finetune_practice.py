#!/usr/bin/env python3
"""Fine-tuning practice on Whisper: LoRA with noise augmentation, and LoRA with mixed-in general data.

    python bench/finetune_practice.py --model WHISPER_DIR [--steps 30] [--out docs/benchmarks.md]

In-domain speech: flite's four voices reading Harvard sentences (bench/finetune_hf.py's split:
train, dev and test of different sentences). Out-of-domain speech: espeak-ng's English voices
reading other sentences (tests/data/text/fortunes.txt), some for training (the data mixed in),
others held out. Noise: pink, brown and babble noise, made here; the training noise and the noise
of the noisy test copy are different draws. The noisy copy adds one to each test utterance at an
SNR drawn from 5-15 dB.

Three LoRA runs of the same model, steps, learning rate and seed (`asrctl finetune`, shipped LoRA
defaults, the best checkpoint by validation WER on the clean dev set kept):

- plain: the in-domain training set;
- augmented: the same with --speed-perturb 0.9,1.0,1.1 --noise (the training noise) --snr 5,15;
- mixed: --train in-domain:0.7 --train out-of-domain:0.3.

Each model (and the base) is scored on the in-domain test set, its noisy copy and the
out-of-domain test set, by `asrctl infer` and Whisper's English normaliser.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

BENCH = Path(__file__).parent
sys.path.insert(0, str(BENCH))
from finetune_hf import finetune, synthesise_speech, transcribe_wer, with_complete_merges, write_manifest  # noqa: E402
from make_speech import sentences  # noqa: E402

ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029")
RATE = 16000


def espeak(text: str, voice: str, out: Path) -> float:
    """`text` read by espeak-ng's `voice`, at 16 kHz, as FLAC; its duration."""
    import soxr

    wav = out.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
    audio, rate = sf.read(wav, dtype="float32")
    wav.unlink()
    audio = soxr.resample(audio, rate, RATE) if rate != RATE else audio
    audio = np.concatenate([np.zeros(2400, np.float32), audio, np.zeros(2400, np.float32)])
    sf.write(out, audio, RATE, format="FLAC")
    return len(audio) / RATE


def out_of_domain(folder: Path, count: int) -> list[dict]:
    """`count` fortunes sentences, the voices in turn."""
    if not shutil.which("espeak-ng"):
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    folder.mkdir(parents=True)
    rows = []
    for number, text in enumerate(random.Random(0).sample(sentences(), count)):
        voice = ESPEAK_VOICES[number % len(ESPEAK_VOICES)]
        audio = folder / f"o{number:03d}.flac"
        rows.append({"audio_filepath": str(audio), "duration": round(espeak(text, voice, audio), 3), "text": text,
                     "speaker": voice})
    return rows


def noises(seconds: float, rng: np.random.Generator, speech: list[np.ndarray]) -> list[np.ndarray]:
    """Pink, brown and babble noise (three voices over each other), `seconds` long each."""
    n = int(seconds * RATE)
    white = rng.normal(0, 1, n)
    spectrum = np.fft.rfft(white)
    freqs = np.maximum(np.fft.rfftfreq(n), 1 / n)
    pink, brown = (np.fft.irfft(spectrum / freqs ** power, n) for power in (0.5, 1.0))
    babble = np.zeros(n)
    for _ in range(3):
        for start in range(0, n, RATE // 2):
            clip = speech[rng.integers(len(speech))]
            end = min(n, start + len(clip))
            babble[start:end] += clip[: end - start] * rng.uniform(0.5, 1.0)
    return [(x / (np.abs(x).max() + 1e-9) * 0.5).astype(np.float32) for x in (pink, brown, babble)]


def write_noise(arrays: list[np.ndarray], folder: Path) -> Path:
    folder.mkdir(parents=True)
    rows = []
    for k, audio in enumerate(arrays):
        path = folder / f"noise{k}.flac"
        sf.write(path, audio, RATE, format="FLAC")
        rows.append({"audio_filepath": str(path), "duration": round(len(audio) / RATE, 3)})
    return write_manifest(rows, folder / "noise.jsonl")


def noisy_copy(rows: list[dict], noise: list[np.ndarray], folder: Path, rng: np.random.Generator) -> list[dict]:
    """Each row's audio with one of `noise` added at an SNR drawn from 5-15 dB."""
    from asrctl.train.augment import add_noise

    folder.mkdir(parents=True)
    copies = []
    for row in rows:
        audio, _ = sf.read(row["audio_filepath"], dtype="float32")
        mixed = add_noise(audio, noise[rng.integers(len(noise))], float(rng.uniform(5, 15)), rng)
        path = folder / Path(row["audio_filepath"]).name
        sf.write(path, np.clip(mixed, -1, 1), RATE, format="FLAC")
        copies.append({**row, "audio_filepath": str(path)})
    return copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Whisper checkpoint folder (e.g. from build-whisper-base)")
    parser.add_argument("--device", default="cpu", help="for `asrctl infer`")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--eval-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--out", type=Path, help="append the markdown table to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = str(with_complete_merges(Path(args.model), work / "model"))
        rows = synthesise_speech(work / "speech")
        train, dev, test = ([r for r in rows if r["split"] == split] for split in ("train", "dev", "test"))
        general = out_of_domain(work / "general", 72)
        general_train, general_test = general[:48], general[48:]
        speech = [sf.read(r["audio_filepath"], dtype="float32")[0] for r in train]
        rng = np.random.default_rng(0)
        train_noise = write_noise(noises(10.0, rng, speech), work / "train-noise")
        noisy = noisy_copy(test, noises(10.0, np.random.default_rng(1), speech), work / "noisy", rng)
        manifests = {name: write_manifest(chosen, work / f"{name}.jsonl") for name, chosen in
                     [("train", train), ("dev", dev), ("test", test), ("noisy", noisy),
                      ("general_train", general_train), ("general_test", general_test)]}

        common = ["--peft", "lora", "--val", str(manifests["dev"]), "--batch-size", str(args.batch_size),
                  "--max-steps", str(args.steps), "--eval-steps", str(args.eval_steps), "--learning-rate",
                  str(args.learning_rate), "--seed", "0", "--set", "training.warmup_steps=4"]
        variants = {  # the (first) --train, and the rest
            "plain": (manifests["train"], []),
            "augmented": (manifests["train"], ["--speed-perturb", "0.9,1.0,1.1", "--noise", str(train_noise),
                                               "--snr", "5,15"]),
            "mixed": (f"{manifests['train']}:0.7", ["--train", f"{manifests['general_train']}:0.3"]),
        }
        summaries = {name: finetune(model, first, work / name, [*common, *extra])
                     for name, (first, extra) in variants.items()}
        sets = {"in-domain": manifests["test"], "in-domain, noisy (5-15 dB)": manifests["noisy"],
                "out-of-domain": manifests["general_test"]}
        scores = {}
        for name, folder in [("base", model), *((name, str(work / name)) for name in variants)]:
            scores[name] = {label: transcribe_wer(path, folder, work / f"{name}-{k}.jsonl", args.device)
                            for k, (label, path) in enumerate(sets.items())}

    labels = {"base": f"{Path(args.model).name}", "plain": "LoRA, in-domain only",
              "augmented": "LoRA, in-domain + speed and noise augmentation",
              "mixed": "LoRA, in-domain 0.7 + out-of-domain 0.3"}
    lines = [
        f"### Fine-tuning practice: {Path(args.model).name}, LoRA (shipped defaults), {args.steps} steps of batch "
        f"{args.batch_size} at {args.learning_rate:g}, the best of every {args.eval_steps} steps by clean dev WER",
        "",
        f"In-domain: {len(train)} training utterances (flite voices, Harvard sentences), {len(test)} held out "
        f"(other sentences); out-of-domain: espeak-ng voices, {len(general_train)} mixed in, {len(general_test)} "
        "held out.",
        "",
        "| model | " + " | ".join(sets) + " |",
        "| --- |" + " ---: |" * len(sets),
        *(f"| {labels[name]} | " + " | ".join(f"{scores[name][label]:.2%}" for label in sets) + " |"
          for name in scores),
        "",
        "Steps kept: " + ", ".join(f"{name} {summaries[name]['best_checkpoint'].rsplit('-', 1)[1]}"
                                   for name in summaries) + ".",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "a") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
