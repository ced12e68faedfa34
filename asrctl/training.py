"""What every trainer writes at the end: training_summary.json, one shape for all (its JSON schema
is asrctl/schemas/training_summary.schema.json)."""

from __future__ import annotations

import json
import resource
import sys
from functools import cache
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter

SUMMARY_FILE = "training_summary.json"
SCHEMA = Path(__file__).parent / "schemas" / "training_summary.schema.json"


@cache
def summary_keys() -> frozenset[str]:
    return frozenset(json.loads(SCHEMA.read_text())["required"])


def write_training_summary(output_dir: str | Path, summary: dict[str, Any]) -> None:
    """Write OUTPUT_DIR/training_summary.json atomically; a trainer that leaves out or adds a key
    is told so here, not by the users whose scripts read the file."""
    given = set(summary)
    if given != summary_keys():
        missing, extra = sorted(summary_keys() - given), sorted(given - summary_keys())
        raise ValueError(f"training summary: missing {missing}, not in the schema {extra}")
    with AtomicWriter(Path(output_dir) / SUMMARY_FILE) as f:
        json.dump(summary, f, indent=2)


def peak_memory(device: Any = None) -> dict[str, Any]:
    """Peak memory of this process: allocated on a CUDA `device` (a torch.device), else the
    resident set size."""
    if getattr(device, "type", None) == "cuda":
        import torch

        return {"peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                "peak_memory_kind": "cuda max allocated"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {"peak_memory_mb": round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1), "peak_memory_kind": "rss"}
