"""What every trainer writes at the end, training_summary.json, one shape for all (its JSON schema
is asrctl/schemas/training_summary.schema.json); and what trainers share around it: the base
model's validation WER kept for --resume, and checkpoint averaging."""

from __future__ import annotations

import json
import resource
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter

SUMMARY_FILE = "training_summary.json"
BASELINE_FILE = "baseline.json"
SCHEMA = Path(__file__).parent / "schemas" / "training_summary.schema.json"


@cache
def summary_keys() -> tuple[frozenset[str], frozenset[str]]:
    """The keys a summary must have, and those it may have (null when a trainer leaves them out)."""
    schema = json.loads(SCHEMA.read_text())
    return frozenset(schema["required"]), frozenset(schema["properties"]) - frozenset(schema["required"])


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
    return {**summary, **{key: None for key in sorted(summary_keys()[1] - set(summary))}}


def mix_reports(reports: list[dict[str, Any]], weights: list[float], label: str) -> tuple[dict[str, Any], Any]:
    """The summary's data.train and data.mix for the reports of the training sources: with one, it
    and null; with several (a mix named `label`), their sum and each with its weight."""
    if len(reports) == 1:
        return reports[0], None
    dropped: Counter = Counter()
    for report in reports:
        dropped.update(report["dropped_by_reason"])
    total = {"file": label, "rows": sum(r["rows"] for r in reports), "hours": round(sum(r["hours"] for r in reports), 4),
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


def average_weights(states: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The mean of each floating-point tensor over `states` (checkpoints' weights, taken one at a
    time so only one is in memory beside the sum), in its own dtype; other tensors (counters,
    integer buffers) as in the last."""
    import torch

    total: dict[str, Any] = {}
    dtypes: dict[str, Any] = {}
    count = 0
    for state in states:
        if count and set(state) != set(total):
            raise ValueError(f"checkpoint {count + 1} holds other weights than the first: "
                             f"{sorted(set(state) ^ set(total))[:5]}")
        for key, value in state.items():
            if not value.is_floating_point():
                total[key] = value
            elif count:
                total[key] += value.to(torch.float32)
            else:
                dtypes[key], total[key] = value.dtype, value.to(torch.float32, copy=True)
        count += 1
    if count < 2:
        raise ValueError(f"an average takes at least 2 checkpoints, got {count}")
    return {key: (value / count).to(dtypes[key]) if key in dtypes else value for key, value in total.items()}


def wer_before_after(summary: Mapping[str, Any]) -> str | None:
    """"val WER 24.1% → 9.8%" (the base model's, the best checkpoint's), with the average of the last
    N beside it: the line `asrctl finetune` ends with; None without a validation WER."""
    best, averaged = summary.get("best_val_wer"), summary.get("averaged") or {}
    if best is None:
        return None
    line = f"val WER {summary['baseline_val_wer']:.1f}% → " if summary.get("baseline_val_wer") is not None else "val WER "
    line += f"{best:.1f}% (best checkpoint)"
    if averaged.get("val_wer") is not None:
        line += f", {averaged['val_wer']:.1f}% (average of the last {len(averaged['checkpoints'])}, the output model)"
    return line


def peak_memory(device: Any = None) -> dict[str, Any]:
    """Peak memory of this process: allocated on a CUDA `device` (a torch.device), else the
    resident set size."""
    if getattr(device, "type", None) == "cuda":
        import torch

        return {"peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                "peak_memory_kind": "cuda max allocated"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {"peak_memory_mb": round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1), "peak_memory_kind": "rss"}
