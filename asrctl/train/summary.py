"""What every trainer writes at the end, training_summary.json, one shape for all (its JSON schema
is asrctl/train/training_summary.schema.json), and what goes into it: the base model's validation
WER (kept for --resume), the report of a mix of sources, peak memory, the closing table."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter

SUMMARY_FILE = "training_summary.json"
BASELINE_FILE = "baseline.json"
SCHEMA = Path(__file__).with_name("training_summary.schema.json")


@cache
def summary_keys() -> tuple[frozenset[str], frozenset[str]]:
    """The keys a summary must have, and those it may have (null when a trainer leaves them out)."""
    schema = json.loads(SCHEMA.read_text())
    return frozenset(schema["required"]), frozenset(schema["properties"]) - frozenset(schema["required"])


def training_summary(recipe: Mapping[str, Any], *, started: float, model: str | Path, data: dict[str, Any],
                     vocabulary: str, steps: int, epochs: float, resumed_from_step: int | None,
                     best_val_wer: float | None, best_checkpoint: str | None, baseline_val_wer: float | None,
                     averaged: dict[str, Any] | None, parameters: tuple[int, int], processes: int, device: Any,
                     merged_model: str | Path | None) -> dict[str, Any]:
    """The summary of a finished run, one shape for every trainer: what the recipe asked, and what the
    trainer's run found. `started` is its time.perf_counter() at the start; `parameters` the trainable
    and all parameters; WERs are percent, as `asrctl eval` says them; `device` the one whose peak
    memory is reported (rank 0's where there are several processes)."""
    trainable, total = parameters
    return {
        "backend": recipe["backend"],
        "base_model": recipe["model"],
        "method": recipe["method"],
        "output_dir": str(Path(recipe["output_dir"])),
        "model": str(model),  # the model, or the adapter
        "data": data,
        "vocabulary": vocabulary,
        "steps": steps,
        "epochs": round(epochs, 3),
        "resumed_from_step": resumed_from_step or None,
        "best_val_wer": best_val_wer,
        "best_checkpoint": best_checkpoint or None,
        "baseline_val_wer": baseline_val_wer,
        "averaged": averaged,
        "trainable_parameters": trainable,
        "parameters": total,
        "trainable_share": trainable / total,
        "processes": processes,
        **peak_memory(device),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "merged_model": str(merged_model) if merged_model else None,
    }


def write_training_summary(output_dir: str | Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Write OUTPUT_DIR/training_summary.json atomically, the optional keys a trainer leaves out as
    null, and return it; a trainer that leaves out a required key or adds one of its own is told
    so here, not by the users whose scripts read the file."""
    required, optional = summary_keys()
    given = set(summary)
    if not required <= given <= required | optional:
        missing, extra = sorted(required - given), sorted(given - required - optional)
        raise ValueError(f"training summary: missing {missing}, not in the schema {extra}")
    summary = complete(summary)
    with AtomicWriter(Path(output_dir) / SUMMARY_FILE) as f:
        json.dump(summary, f, indent=2)
    return summary


def complete(summary: Mapping[str, Any]) -> dict[str, Any]:
    """`summary` with the optional keys it leaves out as null (those of trainers written before them)."""
    return {**summary, **dict.fromkeys(sorted(summary_keys()[1] - set(summary)))}


def mix_reports(reports: list[dict[str, Any]], weights: list[float], label: str) -> tuple[dict[str, Any], Any]:
    """The summary's data.train and data.mix for the reports of the training sources: with one, it
    and null; with several (a mix named `label`), their sum and each with its weight."""
    if len(reports) == 1:
        return reports[0], None
    dropped: Counter = Counter()
    for report in reports:
        dropped.update(report["dropped_by_reason"])
    total = {"file": label, "rows": sum(r["rows"] for r in reports),
             "hours": round(sum(r["hours"] for r in reports), 4),
             "dropped": sum(r["dropped"] for r in reports), "dropped_by_reason": dict(dropped)}
    return total, [{**report, "weight": weight} for report, weight in zip(reports, weights)]


def baseline_wer(output_dir: str | Path, measure: Callable[[], float], *, write: bool) -> float:
    """The base model's validation WER (percent): measured once, before the first step, and kept in
    OUTPUT_DIR/baseline.json (by the process that `write`s), so a resumed run reports it too."""
    path = Path(output_dir) / BASELINE_FILE
    if path.is_file():
        return float(json.loads(path.read_text())["val_wer"])
    wer = round(float(measure()), 4)
    if write:
        with AtomicWriter(path) as f:
            json.dump({"val_wer": wer}, f)
    return wer


def wer_before_after(summary: Mapping[str, Any]) -> str | None:
    """"24.1% → 9.8% (best checkpoint)" (the base model's validation WER, the best checkpoint's), with
    the average of the last N beside it; None without a validation WER."""
    best, averaged = summary.get("best_val_wer"), summary.get("averaged") or {}
    if best is None:
        return None
    baseline = summary.get("baseline_val_wer")
    line = f"{baseline:.1f}% → " if baseline is not None else ""
    line += f"{best:.1f}% (best checkpoint)"
    if averaged.get("val_wer") is not None:
        line += f", {averaged['val_wer']:.1f}% (average of the last {len(averaged['checkpoints'])}, the output model)"
    return line


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The table `asrctl finetune` ends with: what was trained, on what and how long, what it gained,
    and where the output and the whole summary are."""
    trainable, total = summary["trainable_parameters"], summary["parameters"]
    method = "LoRA" if summary["method"] == "lora" else "full (SFT)"
    steps = f"{summary['steps']} ({summary['epochs']:g} epochs)"
    if summary["resumed_from_step"]:
        steps += f", resumed from step {summary['resumed_from_step']}"
    rows = [("model", f"{summary['base_model']} ({summary['backend']})"),
            ("method", f"{method}: {trainable:,} of {total:,} parameters trained"),
            ("steps", steps)]
    for name in ("train", "val"):
        split = summary["data"][name]
        if split:
            dropped = f", {split['dropped']} dropped" if split["dropped"] else ""
            rows.append((f"{name} rows", f"{split['rows']} ({split['hours']:.2f} h){dropped}"))
    wers = wer_before_after(summary)
    if wers:
        rows.append(("val WER", wers))
    averaged = summary.get("averaged")
    if averaged:
        rows.append(("averaged", f"the last {len(averaged['checkpoints'])} checkpoints, into the output model"))
    if summary["best_checkpoint"]:
        rows.append(("best checkpoint", summary["best_checkpoint"]))
    rows += [("output model", summary["model"]),
             *([("merged model", summary["merged_model"])] if summary.get("merged_model") else []),
             ("wall seconds", f"{summary['wall_seconds']:.1f}"),
             ("peak memory", f"{summary['peak_memory_mb']:,.0f} MiB ({summary['peak_memory_kind']})"),
             ("summary", str(Path(summary["output_dir"]) / SUMMARY_FILE))]
    return rows


def peak_memory(device: Any = None) -> dict[str, Any]:
    """Peak memory of this process: allocated on a CUDA `device` (a torch.device), else the
    resident set size."""
    if getattr(device, "type", None) == "cuda":
        import torch

        return {"peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                "peak_memory_kind": "cuda max allocated"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {"peak_memory_mb": round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1), "peak_memory_kind": "rss"}
