#!/usr/bin/env python3
"""Every CUDA path of asrctl once, in one command that fits a short spell of GPU time, as one table.

    python bench/gpu_check.py --profile hf|faster-whisper|nemo [--minutes 8] [--out FILE] [--size full|tiny]

On a GPU box that reaches no package index (Python 3.12 with torch, transformers, peft and Lightning,
bench/gpu_box_packages.txt), bring the profile's wheels (bench/gpu_wheels.py PROFILE writes them to
.whl/PROFILE, each profile within 64 MiB with the working tree) and run, from the repository's root:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/PROFILE/*.whl &&
    PYTHONPATH=/tmp/site python3 bench/gpu_check.py --profile PROFILE --out $OUT/gpu-PROFILE.md

Nothing is downloaded: every model is built here. Tiny random models show that each path runs to
the end with every row written (their texts mean nothing); models of real checkpoints' sizes with
random weights measure speed, which does not depend on the weights: Parakeet CTC 0.6B's, Whisper
large-v3-turbo's with every generation exactly NEW_TOKENS long on both sides, Whisper base's for
fine-tuning memory, a FastConformer-large CTC. Speed rows run beside the plain library path at the
same batch and dtype (a transformers forward or generate() loop, NeMo's transcribe()), each a
whole process timed from its start; RTFx = audio seconds / wall seconds. The speech is the test
fixtures (tests/data/speech), repeated. `--device auto --dtype auto` everywhere asrctl runs.

Without CUDA the rows that need it are skipped, each saying why, and the others run on the CPU;
`--size tiny` gives the speed rows small models, so that the script itself is tested without a GPU.
Rows left when --minutes is spent are skipped. A row that fails says so and the script exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests")]

from infer_nemo import DIRECT_WORKER as NEMO_WORKER  # noqa: E402  (bench/ on sys.path)

FIXTURES = REPO / "tests" / "data" / "speech"
NEW_TOKENS = 32  # every generation of the Whisper speed model, asrctl's and the anchor's alike
OOM_HEADROOM_GIB = 1.0  # GPU memory beside the weights in the out-of-memory row: a batch of 64 windows needs more
# Caps the GPU memory of every process that imports it (GPU_CHECK_CAP_GIB set): the out-of-memory row.
CAP = """
import os
if os.environ.get("GPU_CHECK_CAP_GIB"):
    import torch
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(float(os.environ["GPU_CHECK_CAP_GIB"]) * 2**30 / total)
"""
# faster-whisper imports PyAV when it loads and uses it only to decode files, which asrctl does itself;
# the box lacks it (34 MB, over the limit beside CTranslate2): an empty module stands in for it.
NO_AV = "# PyAV stands in empty: faster-whisper imports it, asrctl gives it arrays\n"

# Sizes of real checkpoints (speed rows) and small ones with the same code paths (--size tiny).
SIZES = {
    "full": {
        "parakeet": {"encoder": {}, "pieces": 994},  # ParakeetEncoderConfig() is parakeet-ctc-0.6b's; 1025 tokens
        "turbo": {"sizes": {"d_model": 1280, "encoder_layers": 32, "decoder_layers": 4, "encoder_attention_heads": 20,
                            "decoder_attention_heads": 20, "encoder_ffn_dim": 5120, "decoder_ffn_dim": 5120},
                  "mels": 128, "vocab_size": 51866, "max_target_positions": 448},
        "base": {"sizes": {"d_model": 512, "encoder_layers": 6, "decoder_layers": 6, "encoder_attention_heads": 8,
                           "decoder_attention_heads": 8, "encoder_ffn_dim": 2048, "decoder_ffn_dim": 2048},
                 "mels": 80, "vocab_size": 51865, "max_target_positions": 448},
        "fastconformer": {"encoder": {"n_layers": 17, "d_model": 512, "n_heads": 8, "ff_expansion_factor": 4,
                                      "subsampling_conv_channels": 256}, "features": 80},
        "rows": 512, "batches": (32, 128),
    },
    "tiny": {
        "parakeet": {"encoder": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                 "intermediate_size": 64, "subsampling_conv_channels": 8}, "pieces": 0},
        "turbo": {"sizes": None, "mels": 128, "vocab_size": None, "max_target_positions": 64},
        "base": {"sizes": None, "mels": 80, "vocab_size": None, "max_target_positions": 64},
        "fastconformer": {"encoder": {"n_layers": 2, "d_model": 96}, "features": 80},
        "rows": 16, "batches": (8,),
    },
}

CTC_LOOP = r"""
import json, sys
from pathlib import Path
import soundfile as sf, torch
from transformers import AutoModelForCTC, AutoProcessor
manifest, model_dir, device, dtype, batch, out = sys.argv[1:7]
rows = [json.loads(line) for line in open(manifest)]
processor = AutoProcessor.from_pretrained(model_dir)
model = AutoModelForCTC.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(device).eval()
with torch.inference_mode(), open(out, "w") as f:
    for first in range(0, len(rows), int(batch)):
        part = rows[first:first + int(batch)]
        audio = [sf.read(Path(manifest).parent / r["audio_filepath"], dtype="float32")[0] for r in part]
        inputs = processor(audio, sampling_rate=16000, return_tensors="pt", padding=True)
        texts = processor.batch_decode(model(**inputs.to(device, getattr(torch, dtype))).logits.argmax(-1))
        f.writelines(json.dumps({**r, "pred_text": t}) + "\n" for r, t in zip(part, texts))
"""

WHISPER_LOOP = r"""
import json, sys
from pathlib import Path
import soundfile as sf, torch
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor
manifest, model_dir, device, dtype, batch, out = sys.argv[1:7]
rows = [json.loads(line) for line in open(manifest)]
processor = AutoProcessor.from_pretrained(model_dir)
model = AutoModelForSpeechSeq2Seq.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(device).eval()
with torch.inference_mode(), open(out, "w") as f:
    for first in range(0, len(rows), int(batch)):
        part = rows[first:first + int(batch)]
        audio = [sf.read(Path(manifest).parent / r["audio_filepath"], dtype="float32")[0] for r in part]
        inputs = processor(audio, sampling_rate=16000, return_tensors="pt").to(device, getattr(torch, dtype))
        ids = model.generate(inputs.input_features, language="en", task="transcribe")
        texts = processor.batch_decode(ids, skip_special_tokens=True)
        f.writelines(json.dumps({**r, "pred_text": t}) + "\n" for r, t in zip(part, texts))
"""


class Skip(Exception):
    """A row that cannot run here, and why."""


@dataclass
class Row:
    name: str
    status: str = "ok"
    wall: float | None = None
    rtfx: float | None = None
    memory_mb: float | None = None
    note: str = ""


class Check:
    def __init__(self, work: Path, deadline: float, size: str, cuda_rows_on_cpu: bool = False) -> None:
        import torch

        from asrctl.devices import resolve_dtype

        self.cuda = torch.cuda.is_available()
        self.gpus = torch.cuda.device_count() if self.cuda else 0
        self.cuda_rows_on_cpu = cuda_rows_on_cpu
        self.device = "cuda:0" if self.cuda else "cpu"
        self.dtype = resolve_dtype("auto", self.device)  # what asrctl's --dtype auto picks here
        self.gpu = torch.cuda.get_device_name(0) if self.cuda else None
        self.work = work
        self.deadline = deadline
        self.size = SIZES[size]
        self.rows: list[Row] = []
        self.models: dict[str, Path] = {}
        self.short = self._speech(16, "short.jsonl")  # the fixtures up to 30 s, repeated
        self.many = self._speech(self.size["rows"], "many.jsonl")
        self.env = self._environment()

    # -- the rows' needs ------------------------------------------------------------------------

    def need_cuda(self, gpus: int = 1, *, on_cpu_too: bool = True) -> None:
        """CUDA (and `gpus` of them); --cuda-rows-on-cpu lets a row run on the CPU where it can."""
        if self.cuda_rows_on_cpu and on_cpu_too and not self.cuda:
            return
        if not self.cuda:
            raise Skip("no CUDA device (torch.cuda.is_available() is False)")
        if self.gpus < gpus:
            raise Skip(f"{self.gpus} GPU here, {gpus} needed")

    def need_module(self, module: str, why: str) -> None:
        if importlib.util.find_spec(module) is None:
            raise Skip(f"{module} is not installed ({why})")

    def model(self, name: str, build: Callable[[Path], Path]) -> Path:
        """A model built here once (in the check's process; NeMo's logs kept off the table on stdout)."""
        if name not in self.models:
            with contextlib.redirect_stdout(sys.stderr):
                self.models[name] = build(self.work / name)
        return self.models[name]

    # -- running -------------------------------------------------------------------------------

    def row(self, name: str, check: Callable[[Row], None]) -> None:
        row = Row(name)
        if time.monotonic() > self.deadline:
            row.status, row.note = "skipped", "out of time (--minutes)"
        else:
            try:
                check(row)
            except Skip as reason:
                row.status, row.note = "skipped", str(reason)
            except Exception as error:  # one row's failure must not cost the table of the others
                row.status, row.note = "FAILED", failure(error)
        self.rows.append(row)
        print(f"{row.status:8} {name}{': ' + row.note if row.note else ''}", file=sys.stderr, flush=True)

    def run(self, row: Row, command: list[str], env: dict | None = None, timeout: float = 300) -> str:
        start = time.monotonic()
        timeout = min(timeout, max(10.0, self.deadline - start + 60))
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **self.env, **(env or {})}, check=False)
        row.wall = time.monotonic() - start
        if result.returncode:
            raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
        return result.stderr

    def infer(self, row: Row, manifest: Path, backend: str, model: Path, *extra: str, env: dict | None = None) -> Path:
        """`asrctl infer` with --device auto --dtype auto: every row written, none with an error."""
        out = self.work / f"{len(self.rows)}.jsonl"
        self.run(row, asrctl("infer", manifest, "-b", backend, "-m", model, "-o", out, "--device", "auto",
                             "--dtype", "auto", "-q", "--overwrite", *extra), env)
        written(out, manifest)
        row.rtfx = seconds(manifest) / row.wall
        return out

    def anchor(self, row: Row, worker: str, manifest: Path, *args: str) -> None:
        """The plain library path, a whole process; its rows are written as asrctl writes them."""
        out = self.work / f"{len(self.rows)}-anchor.jsonl"
        self.run(row, [sys.executable, "-c", worker, str(manifest), *args, str(out)])
        written(out, manifest)
        row.rtfx = seconds(manifest) / row.wall

    def _speech(self, count: int, name: str) -> Path:
        rows = [json.loads(line) for line in (FIXTURES / "manifest.jsonl").read_text().splitlines()]
        rows = [{**r, "audio_filepath": str(FIXTURES / r["audio_filepath"])} for r in rows if r["duration"] <= 30]
        path = self.work / name
        path.write_text("".join(json.dumps({**rows[i % len(rows)], "lang": "en"}) + "\n" for i in range(count)))
        return path

    def _environment(self) -> dict[str, str]:
        """PYTHONPATH for the processes: the out-of-memory cap's sitecustomize, and PyAV's stand-in
        where faster-whisper is here without it."""
        site = self.work / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(CAP)
        if importlib.util.find_spec("faster_whisper") and not importlib.util.find_spec("av"):
            (site / "av.py").write_text(NO_AV)
        return {"PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}

    def table(self, profile: str) -> str:
        where = f"one {self.gpu}" if self.gpu else "no GPU (CPU only)"
        lines = [f"bench/gpu_check.py --profile {profile} on {where} (--dtype auto: {self.dtype}); wall time from "
                 "process start, RTFx = audio seconds / wall seconds; random weights (texts mean nothing).", "",
                 "| check | status | wall s | RTFx | peak GPU MB | note |",
                 "| --- | --- | ---: | ---: | ---: | --- |"]
        for r in self.rows:
            cells = [f"{r.wall:.1f}" if r.wall is not None else "", f"{r.rtfx:.1f}" if r.rtfx is not None else "",
                     f"{r.memory_mb:.0f}" if r.memory_mb is not None else ""]
            lines.append(f"| {r.name} | {r.status} | {' | '.join(cells)} | {r.note} |")
        return "\n".join(lines)


def asrctl(*args) -> list[str]:
    return [sys.executable, "-m", "asrctl", *map(str, args)]


def written(out: Path, manifest: Path) -> None:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(manifest.read_text().splitlines()), f"{len(rows)} rows written"
    failed = [r["error"] for r in rows if r.get("error")]
    assert not failed, f"{len(failed)} rows failed: {failed[0]}"


def seconds(manifest: Path) -> float:
    return sum(json.loads(line)["duration"] for line in manifest.read_text().splitlines())


def failure(error: Exception) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        lines = [line for line in (error.stderr or "").splitlines() if line.strip()]
        return f"exit {error.returncode}: {lines[-1][:300] if lines else ''}"
    return f"{type(error).__name__}: {str(error)[:300]}"


def texts(check: Check) -> list[str]:
    return [json.loads(line)["text"] for line in check.short.read_text().splitlines()]


# -- the models -------------------------------------------------------------------------------------


def tiny_whisper(check: Check) -> Path:
    from tiny_models import build_tiny_whisper

    return check.model("tiny-whisper", build_tiny_whisper)


def tiny_ctc(check: Check) -> Path:
    from tiny_models import build_tiny_ctc

    return check.model("tiny-ctc", build_tiny_ctc)


def whisper_sized(check: Check, name: str) -> Path:
    from tiny_models import build_tiny_whisper

    size = check.size[name]
    return check.model(f"whisper-{name}", lambda path: build_tiny_whisper(
        path, sizes=size["sizes"], mels=size["mels"], vocab_size=size["vocab_size"], new_tokens=NEW_TOKENS,
        max_target_positions=size["max_target_positions"]))


def parakeet_sized(check: Check) -> Path:
    from tiny_models import build_tiny_parakeet

    size = check.size["parakeet"]
    return check.model("parakeet", lambda path: build_tiny_parakeet(path, encoder=size["encoder"],
                                                                    pieces=size["pieces"]))


def nemo_model(check: Check, name: str, **options) -> Path:
    check.need_module("nemo", "bench/gpu_wheels.py nemo")
    from tiny_models import build_tiny_nemo

    return check.model(name, lambda path: build_tiny_nemo(path, texts(check), **options))


def canary(check: Check) -> Path:
    check.need_module("nemo", "bench/gpu_wheels.py nemo")
    from tiny_models import build_tiny_canary

    rows = [json.loads(line) for line in check.short.read_text().splitlines()]
    return check.model("canary", lambda path: build_tiny_canary(path, rows))


# -- the checks -------------------------------------------------------------------------------------


def infer_auto(check: Check, row: Row, backend: str, model: Path, *extra: str) -> None:
    check.infer(row, check.short, backend, model, *extra)
    row.note = f"--device auto --dtype auto on {check.device}: every row written"


def languages(check: Check, row: Row) -> None:
    out = check.infer(row, check.short, "hf-whisper", tiny_whisper(check), "--language-key", "lang",
                      "--detect-language")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r.get("pred_lang") and r.get("pred_lang_prob") is not None for r in rows), "no detected language"
    row.note = "each row decoded in its language and its own detected"


def segmented(check: Check, row: Row) -> None:
    check.need_module("silero_vad", "bench/gpu_wheels.py hf")
    long = check.work / "long.jsonl"
    import numpy as np
    import soundfile as sf

    from asrctl.data.audio import load_audio

    parts = [load_audio(json.loads(line)["audio_filepath"]) for line in check.short.read_text().splitlines()[:12]]
    audio = np.concatenate([np.concatenate([p, np.zeros(16000, np.float32)]) for p in parts])
    sf.write(check.work / "long.wav", audio, 16000)
    long.write_text(json.dumps({"audio_filepath": str(check.work / "long.wav"), "duration": len(audio) / 16000})
                    + "\n")
    check.infer(row, long, "hf-whisper", tiny_whisper(check), "--segment", "auto", "--language", "en")
    row.note = f"one {len(audio) / 16000:.0f}-s row cut by Silero VAD, its segments batched"


def speed(check: Check, row: Row, who: str, model: str, batch: int) -> None:
    check.need_cuda()
    if model == "parakeet":
        path = parakeet_sized(check)
        if who == "asrctl":
            check.infer(row, check.many, "hf-ctc", path, "--batch-size", str(batch), "--batch-seconds", "1e9")
        else:
            check.anchor(row, CTC_LOOP, check.many, str(path), check.device, check.dtype, str(batch))
    elif model == "turbo":
        path = whisper_sized(check, "turbo")
        if who == "asrctl":
            check.infer(row, check.many, "hf-whisper", path, "--language", "en", "--batch-size", str(batch),
                        "--batch-seconds", "1e9")
        else:
            check.anchor(row, WHISPER_LOOP, check.many, str(path), check.device, check.dtype, str(batch))
    else:
        path = nemo_model(check, "fastconformer", ctc_only=True, **check.size["fastconformer"])
        if who == "asrctl":
            check.infer(row, check.many, "nemo", path, "--allow-pickle", "--batch-size", str(batch),
                        "--batch-seconds", "1e9")
        else:
            # NeMo's transcribe() on the GPU, in the precision asrctl's --dtype auto computes the encoder in
            mixed = f"import torch\nwith torch.autocast('cuda', dtype=torch.{check.dtype}):\n    "
            worker = NEMO_WORKER if check.dtype == "float32" else NEMO_WORKER.replace(
                "hypotheses = asr.transcribe(", mixed + "hypotheses = asr.transcribe(")
            check.anchor(row, worker, check.many, str(path), "ctc", str(batch))
    row.note = f"batch {batch}, {check.dtype}, {seconds(check.many) / 60:.1f} min of audio"


def oom_retry(check: Check, row: Row) -> None:
    check.need_cuda(on_cpu_too=False)  # a CPU has no memory cap to run into
    path = whisper_sized(check, "turbo")
    weights = sum(f.stat().st_size for f in path.glob("*.safetensors")) / 2**30
    cap = weights * (0.5 if check.dtype != "float32" else 1.0) + OOM_HEADROOM_GIB
    out = check.work / "oom.jsonl"
    stderr = check.run(row, asrctl("infer", check.many, "-b", "hf-whisper", "-m", path, "-o", out, "--device", "auto",
                                   "--dtype", "auto", "--language", "en", "--batch-size", "64", "--batch-seconds",
                                   "1e9", "--overwrite"), env={"GPU_CHECK_CAP_GIB": f"{cap:.2f}"})
    written(out, check.many)
    warnings = " ".join(stderr.split())  # the console wraps its lines where stderr is not a terminal
    retried = warnings.count("retrying it in halves")
    assert retried and "out of memory" in warnings.lower(), f"no out-of-memory retry under a {cap:.1f} GiB cap"
    row.note = f"{cap:.1f} GiB cap, batch 64: {retried} batches retried in halves, every row transcribed"


def finetune(check: Check, row: Row, backend: str, model: Path, *extra: str, steps: int = 5, batch: int = 16,
             gpus: int = 1) -> dict:
    check.need_cuda(gpus)
    out = check.work / f"finetune-{len(check.rows)}"
    check.run(row, asrctl("finetune", "-q", "-b", backend, "-m", model, "--train", check.short, "--max-steps",
                          steps, "--batch-size", batch, "-o", out, *extra))
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == steps, summary["steps"]
    assert summary["peak_memory_kind"] == ("cuda max allocated" if check.cuda else "rss"), summary["peak_memory_kind"]
    row.memory_mb = summary["peak_memory_mb"]
    row.note = f"{steps} steps of batch {batch} in {summary['processes']} process(es); " \
               f"{summary['trainable_share']:.1%} of the weights trained"
    return summary


def lora_memory(check: Check, row: Row) -> None:
    finetune(check, row, "hf-whisper", whisper_sized(check, "base"), "--peft", "lora")
    sft = next((r.memory_mb for r in check.rows if r.name.startswith("finetune hf-whisper base-sized SFT")), None)
    if sft:
        row.note += f"; {row.memory_mb / sft:.2f}x SFT's peak memory (target <= 0.6x)"


def faster_whisper(check: Check, row: Row, batched: bool) -> None:
    check.need_module("asrctl_faster_whisper", "bench/gpu_wheels.py faster-whisper")
    from tiny_models import build_tiny_whisper

    exported = check.work / "tiny-whisper-ct2"
    if not exported.exists():  # CTranslate2 generates up to Whisper's 448 tokens whatever the model
        model = check.model("tiny-whisper-448", lambda path: build_tiny_whisper(path, max_target_positions=448))
        check.run(row, asrctl("export", "-b", "hf-whisper", "-m", model, "--to", "faster-whisper", "-o", exported))
    infer_auto(check, row, "faster-whisper", exported, "--language", "en", "-O", f"batched={str(batched).lower()}")


def ray_gpu(check: Check, row: Row) -> None:
    check.need_cuda()
    check.need_module("ray", "too large to bring to the GPU box: run it on a cluster with Ray")
    check.infer(row, check.short, "hf-whisper", tiny_whisper(check), "--engine", "ray", "--language", "en")


def profile_rows(check: Check, profile: str) -> list[tuple[str, Callable[[Row], None]]]:
    batches = check.size["batches"]
    if profile == "hf":
        rows = [
            ("infer hf-whisper tiny", lambda r: infer_auto(check, r, "hf-whisper", tiny_whisper(check), "--language",
                                                           "en")),
            ("infer hf-ctc tiny", lambda r: infer_auto(check, r, "hf-ctc", tiny_ctc(check))),
            ("infer hf-whisper tiny, --language-key, --detect-language", lambda r: languages(check, r)),
            ("infer hf-whisper tiny, --segment auto", lambda r: segmented(check, r)),
            *[(f"RTFx {label} {who}, batch {batch}", lambda r, m=model, w=who, b=batch: speed(check, r, w, m, b))
              for model, label, anchor in (("parakeet", "Parakeet-CTC-0.6B-sized", "transformers loop"),
                                           ("turbo", "Whisper-large-v3-turbo-sized", "transformers generate()"))
              for batch in batches for who in ("asrctl", anchor)],
            ("infer out-of-memory retry", lambda r: oom_retry(check, r)),
            ("finetune hf-ctc tiny SFT", lambda r: finetune(check, r, "hf-ctc", tiny_ctc(check), "--build-vocab")),
            ("finetune hf-whisper base-sized SFT", lambda r: finetune(check, r, "hf-whisper",
                                                                      whisper_sized(check, "base"))),
            ("finetune hf-whisper base-sized LoRA", lambda r: lora_memory(check, r)),
            ("finetune hf-ctc tiny SFT, --nproc-per-node 2", lambda r: finetune(
                check, r, "hf-ctc", tiny_ctc(check), "--build-vocab", "--nproc-per-node", "2", gpus=2)),
            ("infer --engine ray", lambda r: ray_gpu(check, r)),
        ]
        return rows
    if profile == "faster-whisper":
        return [
            ("infer faster-whisper tiny, one at a time", lambda r: faster_whisper(check, r, batched=False)),
            ("infer faster-whisper tiny, batched", lambda r: faster_whisper(check, r, batched=True)),
        ]
    return [
        ("infer nemo hybrid tiny, RNNT head", lambda r: infer_auto(check, r, "nemo", nemo_model(check, "hybrid"),
                                                                    "--allow-pickle")),
        ("infer nemo hybrid tiny, CTC head", lambda r: infer_auto(check, r, "nemo", nemo_model(check, "hybrid"),
                                                                   "--allow-pickle", "-O", "decoder=ctc")),
        ("infer nemo TDT tiny", lambda r: infer_auto(check, r, "nemo", nemo_model(check, "tdt", tdt=True),
                                                     "--allow-pickle")),
        ("infer nemo Canary tiny, --language-key", lambda r: infer_auto(check, r, "nemo", canary(check),
                                                                        "--allow-pickle", "--language-key", "lang")),
        *[(f"RTFx FastConformer-large-sized CTC {who}, batch {batch}",
           lambda r, w=who, b=batch: speed(check, r, w, "fastconformer", b))
          for batch in batches for who in ("asrctl", "NeMo transcribe()")],
        ("finetune nemo CTC tiny SFT", lambda r: finetune(check, r, "nemo", nemo_model(check, "ctc", ctc_only=True),
                                                          "--allow-pickle", "--set", "training.num_workers=0")),
        ("finetune nemo hybrid tiny LoRA", lambda r: finetune(check, r, "nemo", nemo_model(check, "hybrid"),
                                                              "--allow-pickle", "--peft", "lora", "--set",
                                                              "training.num_workers=0")),
        ("finetune nemo TDT tiny SFT", lambda r: finetune(check, r, "nemo", nemo_model(check, "tdt", tdt=True),
                                                          "--allow-pickle", "--set", "training.num_workers=0")),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("hf", "faster-whisper", "nemo"), default="hf")
    parser.add_argument("--minutes", type=float, default=8, help="rows left after this long are skipped")
    parser.add_argument("--size", choices=tuple(SIZES), default="full",
                        help="full: the speed rows' models have real checkpoints' sizes; tiny: small ones (tests)")
    parser.add_argument("--out", type=Path, help="append the markdown table to this file")
    parser.add_argument("--cuda-rows-on-cpu", action="store_true",
                        help="without a GPU, run the rows that need one on the CPU (with --size tiny: to try them)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        check = Check(Path(tmp), time.monotonic() + 60 * args.minutes, args.size, args.cuda_rows_on_cpu)
        for name, function in profile_rows(check, args.profile):
            check.row(name, function)
        table = check.table(args.profile)
    print(table)
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n\n")
    return 1 if any(r.status == "FAILED" for r in check.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
