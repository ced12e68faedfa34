#!/usr/bin/env python3
"""Every CUDA path of asrctl once, in one command that fits a short spell of GPU time, as one table.

    python bench/gpu_check.py [--assets DIR] [--minutes 8] [--out docs/benchmarks.md]

--assets holds whisper-base-hf and whisper-base-ct2 (../shared/tools/build-whisper-base DIR; default
$ASRCTL_TEST_ASSETS). The speech is the test fixtures (tests/data/speech), repeated to fill the
batches. Each row is one whole process (`asrctl ...`, or the anchor called as its README shows),
timed from process start:

- infer: hf-whisper (Whisper base) in bfloat16 and float16; hf-ctc and nemo (tiny models built here);
  faster-whisper in float16 and int8_float16 (when the asrctl-faster-whisper plugin is installed)
- the out-of-memory retry: GPU memory capped (torch's per-process fraction), a batch that cannot
  fit is retried in halves and every row is still transcribed
- `--engine ray` with one GPU worker
- a few SFT and LoRA steps of Whisper base, peak GPU memory of each (torch.cuda.max_memory_allocated)
- RTFx of Whisper base at batch 16, 32 and 64: asrctl, the transformers pipeline and faster-whisper's
  BatchedInferencePipeline on the same files

Without CUDA the rows that need it are skipped, each saying why, and the others run on the CPU, so
the script itself is tested where there is no GPU. Rows left when --minutes is spent are skipped.
A row that fails says so in the table and the script exits 1.
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

from infer_faster_whisper import DIRECT_WORKER  # noqa: E402  (bench/ and tests/ on sys.path)
from infer_hf import PIPELINE_WORKER, score  # noqa: E402

FIXTURES = REPO / "tests" / "data" / "speech"
OOM_CAP_GIB = 1.5  # Whisper base's weights fit, a batch of 64 30-s windows does not
# Caps the GPU memory of every process that imports it (GPU_CHECK_CAP_GIB set): the OOM retry row.
CAP = """
import os
if os.environ.get("GPU_CHECK_CAP_GIB"):
    import torch
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(float(os.environ["GPU_CHECK_CAP_GIB"]) * 2**30 / total)
"""


class Skip(Exception):
    """A row that cannot run here, and why."""


@dataclass
class Row:
    name: str
    status: str = "ok"
    wall: float | None = None
    rtfx: float | None = None
    wer: float | None = None
    memory_mb: float | None = None
    note: str = ""


class Check:
    def __init__(self, assets: Path | None, work: Path, deadline: float) -> None:
        import torch

        self.cuda = torch.cuda.is_available()
        self.device = "cuda" if self.cuda else "cpu"
        self.gpu = torch.cuda.get_device_name(0) if self.cuda else None
        self.assets = assets
        self.work = work
        self.deadline = deadline
        self.rows: list[Row] = []
        self.short = self._speech(16, "short.jsonl")  # one row of each fixture up to 30 s, repeated
        self.many = self._speech(256, "many.jsonl")

    # -- the rows' needs ------------------------------------------------------------------------

    def need_cuda(self) -> None:
        if not self.cuda:
            raise Skip("no CUDA device (torch.cuda.is_available() is False)")

    def asset(self, name: str) -> Path:
        folder = self.assets / name if self.assets else None
        if folder is None or not folder.is_dir():
            raise Skip(f"{name} missing: build it with ../shared/tools/build-whisper-base and pass --assets")
        return folder

    def need_module(self, module: str, install: str) -> None:
        if importlib.util.find_spec(module) is None:
            raise Skip(f"{module} is not installed ({install})")

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
                                env={**os.environ, **(env or {})}, check=False)
        row.wall = time.monotonic() - start
        if result.returncode:
            raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
        return result.stderr

    def infer(self, row: Row, manifest: Path, backend: str, model: Path, *extra: str, env: dict | None = None,
              scored: bool = True) -> str:
        out = self.work / f"{len(self.rows)}.jsonl"
        stderr = self.run(row, asrctl("infer", manifest, "-b", backend, "-m", model, "-o", out, "--device",
                                      self.device, "-q", "--overwrite", *extra), env)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == len(manifest.read_text().splitlines()), f"{len(rows)} rows written"
        failed = [r["error"] for r in rows if r.get("error")]
        assert not failed, f"{len(failed)} rows failed: {failed[0]}"
        if scored:
            row.wer = score(out)
        row.rtfx = self.seconds(manifest) / row.wall
        return stderr

    def seconds(self, manifest: Path) -> float:
        return sum(json.loads(line)["duration"] for line in manifest.read_text().splitlines())

    def _speech(self, count: int, name: str) -> Path:
        rows = [json.loads(line) for line in (FIXTURES / "manifest.jsonl").read_text().splitlines()]
        rows = [{**r, "audio_filepath": str(FIXTURES / r["audio_filepath"])} for r in rows if r["duration"] <= 30]
        path = self.work / name
        path.write_text("".join(json.dumps(rows[i % len(rows)]) + "\n" for i in range(count)))
        return path

    def table(self) -> str:
        where = f"one {self.gpu}" if self.gpu else "no GPU (CPU only)"
        lines = [f"bench/gpu_check.py on {where}; wall time from process start, RTFx = audio seconds / wall "
                 "seconds, WER with Whisper's English normaliser (the speech fixtures, repeated).", "",
                 "| check | status | wall s | RTFx | WER | peak GPU MB | note |",
                 "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
        for r in self.rows:
            cells = [f"{r.wall:.1f}" if r.wall is not None else "", f"{r.rtfx:.1f}" if r.rtfx is not None else "",
                     f"{100 * r.wer:.2f}%" if r.wer is not None else "",
                     f"{r.memory_mb:.0f}" if r.memory_mb is not None else ""]
            lines.append(f"| {r.name} | {r.status} | {' | '.join(cells)} | {r.note} |")
        return "\n".join(lines)


def asrctl(*args) -> list[str]:
    return [sys.executable, "-m", "asrctl", *map(str, args)]


def failure(error: Exception) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        lines = [line for line in (error.stderr or "").splitlines() if line.strip()]
        return f"exit {error.returncode}: {lines[-1][:300] if lines else ''}"
    return f"{type(error).__name__}: {str(error)[:300]}"


# -- the checks -------------------------------------------------------------------------------------


def whisper_dtype(check: Check, row: Row, dtype: str) -> None:
    check.need_cuda()
    check.infer(row, check.short, "hf-whisper", check.asset("whisper-base-hf"), "--dtype", dtype, "--language", "en")


def tiny_ctc(check: Check, row: Row) -> None:
    from tiny_models import build_tiny_ctc

    model = build_tiny_ctc(check.work / "tiny-ctc")
    check.infer(row, check.short, "hf-ctc", model, scored=False)
    row.note = f"tiny random model on {check.device}: rows complete, WER not meaningful"


def tiny_nemo(check: Check, row: Row) -> None:
    check.need_module("nemo", "pip install -e ./plugins/asrctl-nemo")
    from tiny_models import build_tiny_nemo

    texts = [json.loads(line)["text"] for line in check.short.read_text().splitlines()]
    with contextlib.redirect_stdout(sys.stderr):  # NeMo logs to stdout, where the table goes
        model = build_tiny_nemo(check.work / "tiny-nemo", texts)
    check.infer(row, check.short, "nemo", model, "--allow-pickle", scored=False)  # built here
    row.note = f"tiny random model on {check.device}: rows complete, WER not meaningful"


def faster_whisper(check: Check, row: Row, compute_type: str) -> None:
    check.need_cuda()
    check.need_module("asrctl_faster_whisper", "asrctl install ./plugins/asrctl-faster-whisper")
    check.infer(row, check.short, "faster-whisper", check.asset("whisper-base-ct2"), "--language", "en",
                "-O", f"compute_type={compute_type}")


def oom_retry(check: Check, row: Row) -> None:
    check.need_cuda()
    site = check.work / "cap"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(CAP)
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {"GPU_CHECK_CAP_GIB": str(OOM_CAP_GIB), "PYTHONPATH": os.pathsep.join(paths)}
    stderr = check.infer(row, check.many, "hf-whisper", check.asset("whisper-base-hf"), "--dtype", "float32",
                         "--language", "en", "--batch-size", "64", "--batch-seconds", "100000", env=env)
    warnings = " ".join(stderr.split())  # the console wraps its lines where stderr is not a terminal
    retried = warnings.count("retrying it in halves")
    assert retried and "out of memory" in warnings.lower(), \
        f"no out-of-memory retry under a {OOM_CAP_GIB} GiB cap: the cap or the batch is off"
    row.note = f"{OOM_CAP_GIB} GiB cap, batch 64: {retried} batches retried in halves, every row transcribed"


def ray_gpu(check: Check, row: Row) -> None:
    check.need_cuda()
    check.need_module("ray", "pip install 'asrctl[ray]'")
    check.infer(row, check.many, "hf-whisper", check.asset("whisper-base-hf"), "--dtype", "float16", "--language",
                "en", "--engine", "ray", "-E", "gpus_per_worker=1")


def finetune_steps(check: Check, row: Row, method: str) -> None:
    check.need_cuda()
    out = check.work / f"finetune-{method}"
    lora = ["--peft", "lora"] if method == "lora" else []
    check.run(row, asrctl("finetune", "-q", "-b", "hf-whisper", "-m", check.asset("whisper-base-hf"), "--train",
                          check.short, "--max-steps", "5", "--batch-size", "16", "-o", out, *lora))
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["peak_memory_kind"] == "cuda max allocated", summary["peak_memory_kind"]
    row.memory_mb = summary["peak_memory_mb"]
    row.note = f"5 steps of batch 16; {summary['trainable_share']:.1%} of the weights trained"


def throughput(check: Check, row: Row, who: str, batch: int) -> None:
    check.need_cuda()
    out = check.work / f"{who}-{batch}.jsonl"
    manifest = str(check.many)
    if who == "asrctl":
        check.infer(row, check.many, "hf-whisper", check.asset("whisper-base-hf"), "--dtype", "float16",
                    "--language", "en", "--batch-size", str(batch))
        return
    if who == "pipeline":
        command = [sys.executable, "-c", PIPELINE_WORKER, manifest, str(check.asset("whisper-base-hf")), "cuda",
                   str(batch), "1", str(out), "float16"]
    else:
        check.need_module("faster_whisper", "pip install faster-whisper")
        command = [sys.executable, "-c", DIRECT_WORKER, manifest, str(check.asset("whisper-base-ct2")), "cuda",
                   "float16", f"across:{batch}", str(out)]
    check.run(row, command)
    row.wer, row.rtfx = score(out), check.seconds(check.many) / row.wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=Path, default=os.environ.get("ASRCTL_TEST_ASSETS"),
                        help="folder with whisper-base-hf and whisper-base-ct2 (default: $ASRCTL_TEST_ASSETS)")
    parser.add_argument("--minutes", type=float, default=8, help="rows left after this long are skipped")
    parser.add_argument("--out", type=Path, help="append the markdown table to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        check = Check(args.assets, Path(tmp), time.monotonic() + 60 * args.minutes)
        for name, function, *extra in [
            ("infer hf-whisper base, bfloat16", whisper_dtype, "bfloat16"),
            ("infer hf-whisper base, float16", whisper_dtype, "float16"),
            ("infer hf-ctc, tiny", tiny_ctc),
            ("infer nemo, tiny", tiny_nemo),
            ("infer faster-whisper base, float16", faster_whisper, "float16"),
            ("infer faster-whisper base, int8_float16", faster_whisper, "int8_float16"),
            ("infer out-of-memory retry", oom_retry),
            ("infer --engine ray, one GPU worker", ray_gpu),
            ("finetune hf-whisper base SFT", finetune_steps, "sft"),
            ("finetune hf-whisper base LoRA", finetune_steps, "lora"),
            *[(f"RTFx {who}, batch {batch}", throughput, who, batch)
              for batch in (16, 32, 64) for who in ("asrctl", "pipeline", "faster-whisper")],
        ]:
            check.row(name, lambda row, f=function, e=extra: f(check, row, *e))
        table = check.table()
    print(table)
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n\n")
    return 1 if any(r.status == "FAILED" for r in check.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
