#!/usr/bin/env python3
"""`asrctl infer -b nemo` against the model's own transcribe(), same files, one run.

    python bench/infer_nemo.py --model MODEL.nemo|PRETRAINED_NAME --manifest MANIFEST [--decoder rnnt|ctc]
    python bench/infer_nemo.py --tiny --manifest MANIFEST     # a tiny random hybrid model, built here

Each contender runs in a fresh process timed from its start (imports, model load, audio decoding
included), twice, alternating; both decode greedily in batches with the same head. The transcripts
of the two are compared one by one: they should be identical.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from infer_faster_whisper import timed  # bench/ is on sys.path when this script runs

DIRECT_WORKER = r"""
import json, sys
from pathlib import Path
from nemo.collections.asr.models import ASRModel
manifest, model, decoder, batch_size, out = sys.argv[1:6]
rows = [json.loads(line) for line in open(manifest)]
asr = ASRModel.restore_from(model) if model.endswith(".nemo") else ASRModel.from_pretrained(model)
if hasattr(asr, "ctc_decoder"):  # a hybrid: choose its head, as in NeMo's transcribe_speech.py
    asr.change_decoding_strategy(decoder_type=decoder, verbose=False)
paths = [str(Path(manifest).parent / row["audio_filepath"]) for row in rows]
hypotheses = asr.transcribe(paths, batch_size=int(batch_size), verbose=False)
hypotheses = hypotheses[0] if isinstance(hypotheses, tuple) else hypotheses
with open(out, "w") as f:
    for row, h in zip(rows, hypotheses):
        f.write(json.dumps({**row, "pred_text": h if isinstance(h, str) else h.text}) + "\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=".nemo file or NeMo pretrained name")
    parser.add_argument("--tiny", action="store_true", help="build a tiny random hybrid model (tests/tiny_models.py)")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--decoder", default="rnnt", choices=["rnnt", "ctc"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.manifest.read_text().splitlines()]
    audio_seconds = sum(row["duration"] for row in rows)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if args.tiny:
            sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
            from tiny_models import build_tiny_nemo

            model = str(build_tiny_nemo(Path(tmp) / "tiny", [row["text"] for row in rows]))
        outputs = {"direct": Path(tmp) / "direct.jsonl", "asrctl": Path(tmp) / "asrctl.jsonl"}
        direct = [sys.executable, "-c", DIRECT_WORKER, str(args.manifest), model, args.decoder, str(args.batch_size),
                  str(outputs["direct"])]
        asrctl = [sys.executable, "-m", "asrctl", "infer", str(args.manifest), "-b", "nemo", "-m", model,
                  "-O", f"decoder={args.decoder}", "--allow-pickle", "--device", args.device,
                  "--batch-size", str(args.batch_size), "-o", str(outputs["asrctl"]), "-q", "--overwrite"]
        walls: dict[str, list[float]] = {"direct": [], "asrctl": []}
        for _ in range(2):
            for name, command in (("direct", direct), ("asrctl", asrctl)):
                walls[name].append(timed(command)[0])
                print(name, walls[name][-1], file=sys.stderr)
        texts = {name: [json.loads(line)["pred_text"] for line in path.read_text().splitlines()]
                 for name, path in outputs.items()}
    same = sum(a == b for a, b in zip(texts["direct"], texts["asrctl"]))
    best = {name: min(times) for name, times in walls.items()}
    label = "tiny random hybrid FastConformer" if args.tiny else Path(model).name
    print(f"{label}, {args.decoder} head, {len(rows)} files, {audio_seconds / 60:.1f} min of audio, device "
          f"{args.device}, batch {args.batch_size}; best of two runs each, wall time from process start.\n")
    print("| run | wall s | RTFx | vs transcribe() |\n| --- | ---: | ---: | ---: |")
    print(f"| model.transcribe() | {best['direct']:.1f} | {audio_seconds / best['direct']:.1f} | 1.00x |")
    print(f"| asrctl infer -b nemo | {best['asrctl']:.1f} | {audio_seconds / best['asrctl']:.1f} | "
          f"{best['direct'] / best['asrctl']:.2f}x |")
    print(f"\nidentical transcripts: {same} of {len(rows)}")


if __name__ == "__main__":
    main()
