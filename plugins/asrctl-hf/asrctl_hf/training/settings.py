"""The recipe's sections as this trainer reads them: checks, defaults, and TrainingArguments.

The core has checked every key against the settings the trainer declares (asrctl_hf.TRAINER_SETTINGS);
`training` passes through to transformers' TrainingArguments, the neutral names mapped onto its own
(NEUTRAL_NAMES), except OWN_TRAINING_KEYS, which this trainer acts on itself. Settings the trainer
depends on (output_dir, WER as the metric for the best checkpoint, no tqdm) are set here and win.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from asrctl import AsrctlError
from asrctl.api import check_keys, resolve_dtype

OWN_TRAINING_KEYS = ("early_stopping_patience", "tensorboard", "spec_augment", "batch_seconds", "buckets", "baseline",
                     "average_last")
NEUTRAL_NAMES = {"epochs": "num_train_epochs", "batch_size": "per_device_train_batch_size",
                 "num_workers": "dataloader_num_workers"}
DEFAULT_EVAL_STEPS = 100
# The non-reentrant kind needs no input that requires grad, which a frozen base with adapters has not.
LORA_CHECKPOINTING = {"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}


def check_recipe(recipe: dict[str, Any]) -> None:
    """Mistakes in the recipe, found before anything is loaded."""
    seq2seq = recipe["backend"] == "hf-whisper"
    check_keys("training", recipe["training"], training_keys(seq2seq=seq2seq), trainer="hf")
    if recipe["method"] == "lora" and any(recipe["freeze"].values()):
        raise AsrctlError("freeze.* applies to SFT; LoRA keeps every base weight fixed already")
    if recipe["backend"] != "hf-ctc" and recipe["data"].get("build_vocab"):
        raise AsrctlError("data.build_vocab is for CTC models (--backend hf-ctc)")


def arguments_class(*, seq2seq: bool) -> type:
    from transformers import Seq2SeqTrainingArguments, TrainingArguments

    return Seq2SeqTrainingArguments if seq2seq else TrainingArguments


def training_keys(*, seq2seq: bool) -> set[str]:
    """What `training` takes: the neutral names, this trainer's own and TrainingArguments' other fields."""
    fields = {f.name for f in dataclasses.fields(arguments_class(seq2seq=seq2seq))} - set(NEUTRAL_NAMES.values())
    return fields | set(NEUTRAL_NAMES) | set(OWN_TRAINING_KEYS)


def mixed_precision(given: dict[str, Any]) -> dict[str, Any]:
    """What the Trainer computes in where the recipe says nothing of it: mixed bfloat16 on a GPU that
    has it natively, with TF32 for the matrix products that stay float32; mixed float16 on older GPUs;
    float32 on the CPU."""
    import torch

    if given.get("bf16") is not None or given.get("fp16") is not None:
        return {}
    dtype = resolve_dtype("auto", "cuda:0" if torch.cuda.is_available() else "cpu")
    if dtype == "bfloat16":
        return {"bf16": True, **({} if given.get("tf32") is not None else {"tf32": True})}
    return {"fp16": True} if dtype == "float16" else {}


def training_arguments(recipe: dict[str, Any], *, has_val: bool, seq2seq: bool) -> Any:
    """TrainingArguments (Seq2SeqTrainingArguments for Whisper) from the recipe's training section."""
    import torch

    given = {NEUTRAL_NAMES.get(k, k): v for k, v in recipe["training"].items()
             if k not in OWN_TRAINING_KEYS and v is not None}
    eval_steps = given.get("eval_steps", DEFAULT_EVAL_STEPS)
    workers = given.get("dataloader_num_workers", min(4, os.cpu_count() or 1))
    tensorboard = bool(recipe["training"].get("tensorboard"))
    batch_size = given.get("per_device_train_batch_size", 8)
    settings = {
        "per_device_train_batch_size": batch_size,
        "per_device_eval_batch_size": batch_size,
        "learning_rate": 1e-4 if recipe["method"] == "lora" else 1e-5,
        "logging_steps": min(10, eval_steps),
        "logging_first_step": True,
        "eval_strategy": "steps" if has_val else "no",
        "eval_steps": eval_steps,
        "save_steps": eval_steps,  # every validation can be the best checkpoint
        # the best and the last survive rotation; with average_last, the last N
        "save_total_limit": int(recipe["training"].get("average_last") or 1) + 1,
        "load_best_model_at_end": has_val,
        "metric_for_best_model": "wer",
        "greater_is_better": False,
        "dataloader_num_workers": workers,
        "dataloader_persistent_workers": workers > 0,  # no re-forking workers every epoch of a small data set
        "dataloader_pin_memory": torch.cuda.is_available(),
        "report_to": ["tensorboard"] if tensorboard else "none",  # logs under OUTPUT_DIR/runs
        **({"predict_with_generate": True} if seq2seq else {}),
        # LoRA's memory is the activations' (the weights' gradients and Adam state are the adapters'):
        # recomputing them in the backward pass is what makes it cheaper than SFT (docs/benchmarks.md)
        **(LORA_CHECKPOINTING if recipe["method"] == "lora" else {}),
        # Several processes without GPUs (torchrun on CPUs): accelerate joins them with gloo only when told
        # the job is on the CPU; otherwise each process would train alone and write the same files.
        **({"use_cpu": True} if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available() else {}),
        **mixed_precision(given),
        **given,
        "output_dir": recipe["output_dir"],
        "disable_tqdm": True,  # RichProgress shows progress instead
        "label_names": ["labels"],  # a peft model hides the forward signature the Trainer looks for them in
        "remove_unused_columns": False,  # batches are built by our collator, not from dataset columns
    }
    try:
        return arguments_class(seq2seq=seq2seq)(**settings)
    except (ValueError, TypeError) as exc:
        raise AsrctlError(f"training settings: {str(exc).strip().splitlines()[0]}") from None
