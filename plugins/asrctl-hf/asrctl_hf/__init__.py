"""asrctl-hf: Hugging Face transformers model families for asrctl.

Hook implementations live here; torch and transformers are imported only when a backend or
trainer is used, so `asrctl --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from asrctl import BackendSpec, ExporterSpec, Setting, TrainerSpec, Transcriber, hookimpl, offline_unless_reachable
from asrctl_hf import folders

RECIPES = Path(__file__).with_name("recipes")
# The hf trainer's own settings, beyond those every trainer takes.
TRAINER_SETTINGS = (
    Setting("data.build_vocab", bool, "hf-ctc: a character vocabulary from the training text (--build-vocab)"),
    Setting("data.language", str, "hf-whisper: the language token of the training text [default: en]"),
    Setting("data.task", str, "hf-whisper: transcribe or translate"),
    Setting("data.normalizer", str, "text normaliser of the validation WER [default: whisper-en]"),
    Setting("freeze.encoder", bool, "SFT: train the decoder/head only (--freeze-encoder)"),
    Setting("freeze.feature_encoder", bool, "SFT, hf-ctc: the convolutional feature encoder fixed "
                                            "(--freeze-feature-encoder)"),
    Setting("training.*", object, "any field of transformers' TrainingArguments (Seq2SeqTrainingArguments "
                                  "for hf-whisper): gradient_accumulation_steps, warmup_steps, bf16, ..."),
)


def load_ctc(model: str, **kwargs: Any) -> Transcriber:
    offline_unless_reachable(model)  # before transformers reads HF_HUB_OFFLINE
    from asrctl_hf import ctc

    return ctc.load(model, **kwargs)


def load_whisper(model: str, **kwargs: Any) -> Transcriber:
    offline_unless_reachable(model)
    from asrctl_hf import whisper

    return whisper.load(model, **kwargs)


@hookimpl
def register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(BackendSpec(
        name="hf-ctc",
        load=load_ctc,
        check=partial(folders.check, "hf-ctc"),
        description="transformers CTC models (wav2vec2, HuBERT, Parakeet CTC), greedy decoding; aligns known text",
        options=frozenset({"chunk_seconds", "quantize", "trust_remote_code", "allow_pickle"}),
        window=30.0,  # attention over the whole input: cost grows with the square of its length
        aligns=True,
    ))
    register(BackendSpec(
        name="hf-whisper",
        load=load_whisper,
        check=partial(folders.check, "hf-whisper"),
        description="transformers Whisper models: transcribe or translate, timestamps, long-form; aligns known text",
        options=frozenset({"language", "task", "detect_language", "beam_size", "timestamps", "quantize",
                           "trust_remote_code", "allow_pickle"}),
        item_settings=frozenset({"language", "task"}),  # generate() takes a language per item, a task per call
        window=30.0,  # Whisper's input window
        pads_to_window=True,
        aligns=True,
    ))


def train(recipe: dict[str, Any], *, resume: bool, quiet: bool) -> dict[str, Any]:
    offline_unless_reachable(recipe["model"])
    from asrctl_hf.training import run

    return run.train(recipe, resume=resume, quiet=quiet)


def check(recipe: dict[str, Any], *, resume: bool) -> None:
    from asrctl_hf.training import run

    run.check(recipe, resume=resume)


@hookimpl
def register_trainers(register: Callable[[TrainerSpec], None]) -> None:
    register(TrainerSpec(
        name="hf",
        backends=("hf-ctc", "hf-whisper"),
        train=train,
        methods=("sft", "lora"),
        description="transformers Trainer: full fine-tuning or LoRA (peft), validation WER, best checkpoint kept",
        recipes={path.stem: path for path in sorted(RECIPES.glob("*.yaml"))},
        check=check,
        settings=TRAINER_SETTINGS,
        mixing=True,
    ))


def export_ctranslate2(model: str, out: Path, **kwargs: Any) -> None:
    offline_unless_reachable(model)
    from asrctl_hf import export

    export.export_ctranslate2(model, out, **kwargs)


@hookimpl
def register_exporters(register: Callable[[ExporterSpec], None]) -> None:
    from asrctl_hf.export import CT2_QUANTIZATIONS

    register(ExporterSpec(
        name="ctranslate2",
        sources=("hf-whisper",),
        target="faster-whisper",
        export=export_ctranslate2,
        quantizations=CT2_QUANTIZATIONS,
        description="Whisper to CTranslate2 (ctranslate2's converter), with its tokenizer and preprocessor files",
    ))
