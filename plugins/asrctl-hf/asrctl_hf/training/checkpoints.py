"""Which checkpoint a run continues from.

The Trainer writes a checkpoint folder piece by piece and trainer_state.json last, so a run killed
while saving leaves a folder without it: that one is removed and the one before it is used.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from asrctl.api import earlier_run, is_main_process, stderr

_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
STATE = "trainer_state.json"


def checkpoints(folder: Path) -> list[Path]:
    """checkpoint-N folders, newest (highest step) first."""
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and _CHECKPOINT.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(_CHECKPOINT.fullmatch(p.name).group(1)), reverse=True)


def resume_point(folder: Path, resume: bool) -> str | None:
    """The checkpoint to continue from with --resume (None: start at step 0)."""
    found = checkpoints(folder)
    if not resume:
        if found:
            raise earlier_run(folder)
        return None
    for checkpoint in found:
        if (checkpoint / STATE).is_file():
            return str(checkpoint)
        shutil.rmtree(checkpoint, ignore_errors=True)  # cut short while being written (each rank may try)
    if is_main_process():
        stderr.print(f"{folder}: no checkpoint yet, starting from step 0")
    return None
