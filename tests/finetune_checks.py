"""What every trainer's `asrctl finetune` run ends with, checked alike for each: the closing table on
stderr (no JSON on stdout without --json), and the one warning before training on the CPU."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from asrctl.train.memory import training_memory

# No GPU, so that the run warns wherever the tests run; a terminal wide enough that no row wraps.
ON_CPU = {"CUDA_VISIBLE_DEVICES": "", "COLUMNS": "200"}


def assert_closing_table(result: subprocess.CompletedProcess, summary: dict[str, Any]) -> None:
    """`result` (a run with --val, under ON_CPU) warned once with the estimate for the parameters its
    summary counts, and ended with the table, not the JSON."""
    trainable, total = summary["trainable_parameters"], summary["parameters"]
    assert result.stderr.count("fine-tuning on the CPU") == 1, result.stderr
    assert f"about {training_memory(trainable, total) / 2**30:.1f} GiB" in result.stderr, result.stderr
    assert f"({total:,} parameters, {trainable:,} of them trained;" in result.stderr
    assert result.stdout == ""
    assert f"asrctl finetune -> {summary['output_dir']}" in result.stderr
    assert f"{summary['baseline_val_wer']:.1f}% → {summary['best_val_wer']:.1f}% (best checkpoint)" in result.stderr
    assert str(Path(summary["output_dir"]) / "training_summary.json") in result.stderr
    assert f"{summary['steps']} ({summary['epochs']:g} epochs)" in result.stderr
