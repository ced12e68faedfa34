#!/usr/bin/env python3
"""Synthesise an English speech manifest for benchmarks with flite (Debian package `flite`).

    python bench/make_speech.py OUT_DIR [--count 80]

Writes OUT_DIR/manifest.jsonl (audio_filepath, duration, text, speaker) over 16 kHz mono FLAC
files: Harvard sentences (public domain) read by flite's voices in turn, and every tenth item
three sentences long so that batches mix durations as real test sets do.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=80)
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
    (args.out_dir / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} utterances, {sum(r['duration'] for r in rows) / 60:.1f} min -> {args.out_dir / 'manifest.jsonl'}")


if __name__ == "__main__":
    main()
