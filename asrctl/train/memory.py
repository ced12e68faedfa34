"""The memory a fine-tune is expected to need at its peak, from the parameters it trains and those it
keeps fixed, and the warning every trainer gives before it trains on the CPU."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from asrctl.progress import stderr
from asrctl.train.launch import is_main_process

# AdamW in float32: per trained parameter its weight (4 B), its gradient (4 B) and Adam's two moments
# (8 B); per fixed parameter its weight alone. With LoRA the trained ones are the adapters (and a new
# head), the rest fixed.
TRAINED_BYTES, FIXED_BYTES = 16, 4
# A process with torch and transformers loaded holds about 0.5 GiB before any model (NeMo's about 0.7).
RUNTIME_BYTES = 2**29
# Activations (and what else a step allocates), per parameter of the model: calibrated on the one
# measurement docs/benchmarks.md holds, full fine-tuning of Whisper base (72.6M parameters) on a CPU
# in batches of 8 30-s windows, which peaked at 5,935 and 6,150 MiB RSS: less the runtime and 16 B a
# parameter, 62-65 B per parameter. The same rule gives LoRA there (its shipped defaults) 5,230 MiB
# (measured: 5,149).
# Activations grow with batch size and padded audio length, not with parameters, so this is a guide:
# high for short-utterance CTC batches and models far larger than Whisper base, low for larger batches.
ACTIVATION_BYTES = 64


def training_memory(trainable: int, total: int) -> int:
    """Bytes a fine-tune of a model of `total` parameters, `trainable` of them trained, is expected to
    need at its peak in float32 with AdamW (see the constants above for where the numbers come from)."""
    return RUNTIME_BYTES + TRAINED_BYTES * trainable + FIXED_BYTES * (total - trainable) + ACTIVATION_BYTES * total


def available_memory() -> int | None:
    """Bytes this machine can give a new job now: psutil's figure where psutil is installed, else
    MemAvailable from /proc/meminfo (Linux), else the free pages sysconf reports; None where none is known."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not every system names these (macOS lacks the first)
        return None


def cpu_warning(trainable: int, total: int, available: int | None) -> str:
    """What to say before a fine-tune on the CPU: its expected peak memory, and whether this machine has it."""
    need = training_memory(trainable, total)
    text = (f"warning: fine-tuning on the CPU, where it is slow: a GPU trains many times faster. Expect a peak of "
            f"about {need / 2**30:.1f} GiB of memory ({total:,} parameters, {trainable:,} of them trained; "
            "more with larger batches or longer audio)")
    if available is not None and available < need:
        text += (f"; this machine has {available / 2**30:.1f} GiB available: lower --batch-size, or close other "
                 "programs")
    return text


def warn_cpu_training(device: Any, parameters: tuple[int, int]) -> None:
    """Warn on stderr, from the job's main process, when a trainer is about to train on the CPU:
    `device` is where it trains (a torch.device or its name), `parameters` the trainable and all
    parameters of the model as it will train."""
    if getattr(device, "type", str(device)) == "cpu" and is_main_process():
        stderr.print(cpu_warning(*parameters, available_memory()), style="yellow", highlight=False, soft_wrap=True)
