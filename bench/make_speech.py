#!/usr/bin/env python3
"""Synthesise an English speech manifest for benchmarks with flite (Debian package `flite`).

    python bench/make_speech.py OUT_DIR [--count 80] [--long 4 --long-minutes 3]

Writes OUT_DIR/manifest.jsonl (audio_filepath, duration, text, speaker) over 16 kHz mono FLAC
files: Harvard sentences (public domain) read by flite's voices in turn, and every tenth item
three sentences long so that batches mix durations as real test sets do.

With --long N it also writes OUT_DIR/long.jsonl: N recordings of about --long-minutes each, two
voices taking turns (one to three sentences of the test corpus, tests/data/text/fortunes.txt),
short pauses between turns, a few silences of 5-15 s (listed in the row's `silences`, as
[start, end] seconds), a low noise floor, the references joined; and OUT_DIR/mixed.jsonl, the
long recordings and the short utterances in one manifest.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HARVARD = """The birch canoe slid on the smooth planks.
Glue the sheet to the dark blue background.
It's easy to tell the depth of a well.
These days a chicken leg is a rare dish.
Rice is often served in round bowls.
The juice of lemons makes fine punch.
The box was thrown beside the parked truck.
The hogs were fed chopped corn and garbage.
Four hours of steady work faced us.
A large size in stockings is hard to sell.
The boy was there when the sun rose.
A rod is used to catch pink salmon.
The source of the huge river is the clear spring.
Kick the ball straight and follow through.
Help the woman get back to her feet.
A pot of tea helps to pass the evening.
Smoky fires lack flame and heat.
The soft cushion broke the man's fall.
The salt breeze came across from the sea.
The girl at the booth sold fifty bonds.
The small pup gnawed a hole in the sock.
The fish twisted and turned on the bent hook.
Press the pants and sew a button on the vest.
The swan dive was far short of perfect.
The beauty of the view stunned the young boy.
Two blue fish swam in the tank.
Her purse was full of useless trash.
The colt reared and threw the tall rider.
It snowed, rained, and hailed the same morning.
Read verse out loud for pleasure.
Hoist the load to your left shoulder.
Take the winding path to reach the lake.
Note closely the size of the gas tank.
Wipe the grease off his dirty face.
Mend the coat before you go out.
The wrist was badly strained and hung limp.
The stray cat gave birth to kittens.
The young girl gave no clear response.
The meal was cooked before the bell rang.
What joy there is in living.""".splitlines()
VOICES = ("slt", "rms", "awb", "kal16")


def synthesise(text: str, voice: str, out: Path, tmp: Path) -> float:
    wav = tmp / "x.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
    audio, sr = sf.read(wav, dtype="float32")
    if sr != 16000:
        import soxr

        audio = soxr.resample(audio, sr, 16000)
    pad = np.zeros(int(0.15 * 16000), dtype=np.float32)
    audio = np.concatenate([pad, audio, pad])
    sf.write(out, audio, 16000, format="FLAC")
    return len(audio) / 16000


CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "text" / "fortunes.txt"
PLAIN = re.compile(r"[A-Za-z][A-Za-z ,.'?!-]*[.?!]")  # sentences flite reads as written


def sentences() -> list[str]:
    lines = [line.split(" -- ")[0].strip() for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if PLAIN.fullmatch(line) and 5 <= len(line.split()) <= 25]


def long_recording(out: Path, minutes: float, voices: tuple[str, str], chance: random.Random, pool: list[str],
                   tmp: Path) -> dict:
    """Turns of two voices up to `minutes`, 2-3 long silences among them; the row for it."""
    parts, texts, silences, t = [], [], [], 0.0
    quiet_at = sorted(chance.uniform(0.15, 0.85) * minutes * 60 for _ in range(chance.choice((2, 3))))
    turn = 0
    while t < minutes * 60:
        if quiet_at and t >= quiet_at[0]:
            quiet_at.pop(0)
            gap = chance.uniform(5.0, 15.0)
            silences.append([round(t, 2), round(t + gap, 2)])
        else:
            gap = chance.uniform(0.3, 1.2)
        parts.append(np.zeros(int(gap * 16000), dtype=np.float32))
        t += gap
        text = " ".join(chance.choice(pool) for _ in range(chance.randint(1, 3)))
        synthesise(text, voices[turn % 2], tmp / "turn.flac", tmp)
        audio, _ = sf.read(tmp / "turn.flac", dtype="float32")
        parts.append(audio)
        texts.append(text)
        t += len(audio) / 16000
        turn += 1
    audio = np.concatenate(parts)
    audio += np.random.default_rng(chance.randrange(2**32)).normal(0, 0.003, len(audio)).astype(np.float32)
    sf.write(out, audio, 16000, format="FLAC")
    return {"audio_filepath": out.name, "duration": round(len(audio) / 16000, 3), "text": " ".join(texts),
            "speaker": "+".join(voices), "silences": silences}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=80)
    parser.add_argument("--long", type=int, default=0, help="Long recordings to make (long.jsonl, mixed.jsonl).")
    parser.add_argument("--long-minutes", type=float, default=3.0, help="About how long each is.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not shutil.which("flite"):
        raise SystemExit("flite is not installed (apt-get install flite)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.count):
            n = 3 if i % 10 == 9 else 1
            text = " ".join(HARVARD[(i + k) % len(HARVARD)] for k in range(n))
            voice = VOICES[i % len(VOICES)]
            name = f"h{i:04d}.flac"
            duration = synthesise(text, voice, args.out_dir / name, Path(tmp))
            rows.append({"audio_filepath": name, "duration": round(duration, 3), "text": text, "speaker": voice})
        chance, pool = random.Random(args.seed), sentences()
        long_rows = [long_recording(args.out_dir / f"long{i:02d}.flac", args.long_minutes * chance.uniform(0.7, 1.3),
                                    (VOICES[i % 4], VOICES[(i + 1) % 4]), chance, pool, Path(tmp))
                     for i in range(args.long)]
    (args.out_dir / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} utterances, {sum(r['duration'] for r in rows) / 60:.1f} min -> "
          f"{args.out_dir / 'manifest.jsonl'}")
    if long_rows:
        (args.out_dir / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in long_rows))
        mixed = long_rows + rows
        random.Random(args.seed).shuffle(mixed)
        (args.out_dir / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mixed))
        print(f"{len(long_rows)} long recordings, {sum(r['duration'] for r in long_rows) / 60:.1f} min -> "
              f"{args.out_dir / 'long.jsonl'} (and mixed.jsonl)")


if __name__ == "__main__":
    main()
