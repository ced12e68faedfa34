"""asrctl-nemo: NVIDIA NeMo ASR models for asrctl.

Hook implementations live here; NeMo is imported only when its backend or trainer is used
(importing it takes seconds), so every other command starts without it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from asrctl import BackendSpec, Setting, TrainerSpec, Transcriber, hookimpl, offline_unless_reachable

RECIPES = Path(__file__).with_name("recipes")
# The nemo trainer's own settings, beyond those every trainer takes.
TRAINER_SETTINGS = (
    Setting("data.new_tokenizer", str, "SFT: the model's tokenizer replaced by the one in this folder, the output "
                                       "layers re-made to fit it (--new-tokenizer)"),
    Setting("freeze.encoder", bool, "SFT: train the decoder/head only (--freeze-encoder)"),
    Setting("training.warmup_steps", int, "linear warm-up before the cosine decay [default: 0]"),
    Setting("training.weight_decay", float, "AdamW weight decay [default: 0.001]"),
    Setting("training.gradient_clip_val", float, "clip gradients to this norm [default: 1.0]"),
    Setting("training.precision", (str, int), "Lightning's precision: 32-true, bf16-mixed, 16-mixed [default: "
            "bf16-mixed on GPUs that have bfloat16 natively, 16-mixed on other GPUs, 32-true on the CPU]"),
    Setting("training.verbose", bool, "show NeMo's and Lightning's own logs"),
)


def load(model: str, **kwargs: Any) -> Transcriber:
    offline_unless_reachable(model)  # before the hub client reads HF_HUB_OFFLINE
    from asrctl_nemo import backend

    return backend.load(model, **kwargs)


@hookimpl
def register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(BackendSpec(
        name="nemo",
        load=load,
        description="NVIDIA NeMo ASR models (.nemo file or pretrained name): hybrid RNNT/CTC, transducer, TDT, CTC, "
                    "and Canary: transcribe or translate",
        options=frozenset({"allow_pickle", "timestamps", "language", "task", "target_language", "beam_size"}),
        # a Canary model's prompt is per item; the loaded model says whether it has one
        item_settings=frozenset({"language", "target_language"}),
        extra_options={
            "decoder": "rnnt or ctc: the head that decodes a hybrid model [default: rnnt where the model has it]",
            "pnc": "Canary: true or false, punctuation and capitals in the text [default: the model's, else true]",
            "verbose": "true: show NeMo's own log while it loads",
        },
        window=30.0,  # within the lengths its models train on
        aligns=True,  # CTC models and hybrids' CTC heads
    ))


def train(recipe: dict[str, Any], *, resume: bool, quiet: bool) -> dict[str, Any]:
    from asrctl_nemo import training

    return training.train(recipe, resume=resume, quiet=quiet)


def check(recipe: dict[str, Any], *, resume: bool) -> None:
    from asrctl_nemo import training

    training.check(recipe, resume=resume)


@hookimpl
def register_trainers(register: Callable[[TrainerSpec], None]) -> None:
    register(TrainerSpec(
        name="nemo",
        backends=("nemo",),
        train=train,
        methods=("sft", "lora"),
        description="NeMo's own Lightning training: all weights or LoRA (peft), validation WER, best checkpoint kept",
        recipes={path.stem: path for path in sorted(RECIPES.glob("*.yaml"))},
        launcher="self",  # Lightning starts its own DDP processes
        check=check,
        settings=TRAINER_SETTINGS,
        mixing=True,
    ))
