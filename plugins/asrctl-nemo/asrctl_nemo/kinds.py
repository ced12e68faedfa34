"""What kind of NeMo model a config describes, read from a .nemo file without importing NeMo.

The trainer fine-tunes some kinds only: knowing the kind before the (slow) load lets a refusal
come at once. A pretrained name is known only once loaded, so the trainer asks again then.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import yaml

from asrctl import AsrctlError

NAMES = {"ctc": "a CTC", "rnnt": "an RNNT transducer", "tdt": "a TDT transducer", "hybrid": "a hybrid RNNT/CTC",
         "multitask": "a multitask (Canary) encoder-decoder"}


def kind(config: Any) -> str:
    """The kind of model a NeMo model config (a dict or DictConfig) describes."""
    target = str(config.get("target") or "")
    if "MultiTask" in target or config.get("prompt_format"):
        return "multitask"
    if (config.get("decoding") or {}).get("model_type") == "tdt" or \
            (config.get("loss") or {}).get("loss_name") == "tdt":
        return "tdt"
    if "joint" not in config:
        return "ctc"
    return "hybrid" if "aux_ctc" in config else "rnnt"


def local_kind(model: str) -> str | None:
    """The kind of a local .nemo file (its model_config.yaml comes before the weights in the archive),
    or None for a pretrained name or a file it cannot read (the load reports that)."""
    path = Path(model).expanduser()
    if not path.is_file():
        return None
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if Path(member.name).name == "model_config.yaml":
                    return kind(yaml.safe_load(archive.extractfile(member)) or {})
    except (tarfile.TarError, OSError, yaml.YAMLError):
        return None
    return None


def check_trainable(model_kind: str | None, model: str, *, cuda: bool) -> None:
    """Refuse, in one line, a kind the trainer cannot fine-tune (here)."""
    supported = "the nemo trainer fine-tunes CTC, RNNT, hybrid RNNT/CTC and (on CUDA GPUs) TDT models"
    if model_kind == "tdt" and not cuda:  # NeMo's TDT loss has a CUDA kernel only
        raise AsrctlError(f"{model} is {NAMES[model_kind]} model, which NeMo trains on CUDA GPUs only: {supported}")
    if model_kind == "multitask":
        raise AsrctlError(f"{model} is {NAMES[model_kind]} model: {supported}")
