"""LoRA through peft: adapters on the task's layers, saved as an adapter folder, optionally merged."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from asrctl import AsrctlError
from asrctl_hf.training.task import Task

# NeMo AutoModel's recipes use rank 16 with alpha 2 x rank. No LoRA dropout by default (peft's own
# default too): it keeps a dropped-out copy of every adapted layer's input for the backward pass,
# which on Whisper base cost more memory than LoRA saved (docs/benchmarks.md).
DEFAULT_RANK = 16
DEFAULT_DROPOUT = 0.0


def add_lora(task: Task, settings: dict[str, Any], base_model: str) -> Any:
    """The task's model wrapped in a PeftModel; only the adapters (and new modules, e.g. a new head) train."""
    from peft import LoraConfig, get_peft_model

    rank = int(settings.get("r") or DEFAULT_RANK)
    # peft's convention: a list names modules by the end of their name, a string is a regular expression
    # over whole names (`model\.encoder\..*_proj` adapts Whisper's encoder only).
    targets = settings.get("target_modules") or list(task.lora_targets)
    config = LoraConfig(
        r=rank,
        lora_alpha=settings.get("alpha") or 2 * rank,
        lora_dropout=settings.get("dropout", DEFAULT_DROPOUT),
        target_modules=targets,
        modules_to_save=task.new_modules or None,
        bias="none",
    )
    try:
        model = get_peft_model(task.model, config)
    except ValueError as exc:  # peft: none of the target modules is in the model
        raise AsrctlError(f"lora.target_modules {targets}: {str(exc).splitlines()[0]}") from None
    # peft's "auto" check for resized embeddings (it sees the new vocabulary's size) asks for input
    # embeddings, which speech encoders do not have; a new head is saved as a module to save instead.
    model.save_pretrained = partial(model.save_pretrained, save_embedding_layers=False)
    # `asrctl infer` finds the base through adapter_config.json: a local folder must work from anywhere.
    local = Path(base_model).expanduser()
    model.peft_config["default"].base_model_name_or_path = str(local.resolve()) if local.exists() else base_model
    return model


def save_merged(model: Any, processor: Any, folder: Path) -> None:
    """The adapter folded into the base weights: a plain model that needs neither peft nor the base."""
    merged = model.merge_and_unload()
    merged.save_pretrained(folder)
    processor.save_pretrained(folder)
