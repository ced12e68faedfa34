"""The settings of `asrctl finetune`, each declared once: its recipe key, type, default, help and flag.

`asrctl finetune`'s options, the recipe keys they set, the settings every trainer (or every LoRA
trainer) takes and their validation, and the table in docs/finetune.md are all made from TABLE:
a new flag is one row here. Trainers declare the settings of their own in TrainerSpec.settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asrctl.data.batching import DEFAULT_BUCKETS
from asrctl.specs import Setting

# Who takes a setting: every trainer; every trainer that does LoRA; the trainers that declare it
# (the core gives it a flag, they validate it); or the recipe itself (not a trainer's setting).
SCOPES = ("common", "lora", "declared", "recipe")


@dataclass(frozen=True)
class Option(Setting):
    """A setting of the finetune table. `flags`: its command-line flags (none: a recipe or --set
    only); "--x/--no-x" is an on/off pair. `default`: what applies when it is not set, shown in
    --help (None: the trainer's or the model's own). `low`/`high`: bounds of a number (`low_open`:
    above `low`, not at it). `multiple`: the flag repeats, each a list item; a list type otherwise
    takes a comma list. `choices`: the values a flag takes. `folder`: a folder to write."""

    scope: str = "common"
    flags: tuple[str, ...] = ()
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    metavar: str | None = None
    multiple: bool = False
    choices: tuple[str, ...] = ()
    folder: bool = False

    @property
    def parameter(self) -> str:
        """The name of its value among the command's parameters."""
        return self.name.replace(".", "__")


TABLE = (
    Option("backend", str, "Model family: hf-ctc, hf-whisper, nemo, ...", scope="recipe", flags=("-b", "--backend")),
    Option("model", str, "Base model: hub id or local folder.", scope="recipe", flags=("-m", "--model")),
    Option("data.train", (str, list), "Training data: a manifest or any registered format. Repeat it to mix several "
           "by weight, e.g. --train in_domain.jsonl:0.7 --train general.jsonl:0.3 (each epoch draws as many rows as "
           "they hold together, those shares from each); in a recipe, a list of FILE:WEIGHT or {file, weight}.",
           flags=("--train",), metavar="FILE[:WEIGHT]", multiple=True),
    Option("data.val", str, "Validation data, scored by WER during training.", flags=("--val",)),
    Option("data.format", str, "Format of --train/--val when it cannot be detected.", flags=("--data-format",)),
    Option("output_dir", str, "Where the model goes.", scope="recipe", flags=("-o", "--output-dir"), folder=True),
    Option("method", str, "Parameter-efficient fine-tuning instead of all weights.", scope="recipe",
           flags=("--peft",), choices=("lora",)),
    Option("lora.r", int, "LoRA rank.", scope="lora", flags=("--lora-r",), low=1),
    Option("lora.alpha", float, "LoRA scaling numerator (alpha / r scales the update).", scope="lora",
           flags=("--lora-alpha",)),
    Option("lora.dropout", float, "Dropout on the LoRA path.", scope="lora", flags=("--lora-dropout",), low=0, high=1),
    Option("lora.target_modules", (list, str), "Module names LoRA adapts: a comma list (in a recipe, a list or a "
           "regular expression).", scope="lora", flags=("--target-modules",)),
    Option("lora.merge", bool, "LoRA: also write the adapter folded into a full model.", scope="lora",
           flags=("--merge",)),
    Option("freeze.encoder", bool, "freeze.encoder=true, for trainers that take it: SFT of the decoder/head only.",
           scope="declared", flags=("--freeze-encoder",)),
    Option("freeze.feature_encoder", bool, "freeze.feature_encoder=true, for trainers that take it: SFT with the "
           "convolutional feature encoder of a CTC model fixed.", scope="declared",
           flags=("--freeze-feature-encoder",)),
    Option("data.build_vocab", bool, "data.build_vocab=true, for trainers that take it: a character vocabulary for a "
           "CTC model, from the training text.", scope="declared", flags=("--build-vocab",)),
    Option("data.new_tokenizer", str, "data.new_tokenizer=DIR, for trainers that take it: the model's tokenizer "
           "replaced by the one in DIR (new language or domain), the output layers re-made to fit it.",
           scope="declared", flags=("--new-tokenizer",), metavar="DIR"),
    Option("data.min_duration", float, "Drop training utterances shorter than this (seconds).",
           flags=("--min-duration",)),
    Option("data.max_duration", float, "Drop training utterances longer than this (seconds).",
           flags=("--max-duration",)),
    Option("training.max_steps", int, "Optimiser steps to train for.", flags=("--max-steps",), low=1),
    Option("training.epochs", float, "Epochs to train for (when --max-steps is not set).", flags=("--epochs",)),
    Option("training.learning_rate", float, "Peak learning rate.", flags=("--learning-rate",)),
    Option("training.batch_size", int, "Utterances per device per step.", flags=("--batch-size",), low=1),
    Option("training.batch_seconds", float, "Batches by duration: at most this much padded audio (count x longest, "
           "seconds) per device per step, drawn from duration buckets, so short utterances come many to a batch "
           "and long ones few; --batch-size still caps the count.", flags=("--batch-seconds",), low=0, low_open=True),
    Option("training.buckets", int, "With batch_seconds: the duration buckets (of equal counts) batches are drawn "
           "from.", default=DEFAULT_BUCKETS),
    Option("augment.speeds", (list, str, float), "Speed perturbation of the training audio: one factor drawn per "
           "utterance, e.g. 0.9,1.0,1.1 (1.1 is 10% faster, and higher).", flags=("--speed-perturb",),
           metavar="FACTORS"),
    Option("augment.noise", str, "Add noise to training utterances: audio from this manifest (any format, no "
           "transcripts needed), at --snr, to a share --noise-prob of them.", flags=("--noise",), metavar="MANIFEST"),
    Option("augment.snr", (list, str, float), "Signal-to-noise ratios of --noise: LOW,HIGH in dB.", flags=("--snr",),
           metavar="LOW,HIGH", default=(5.0, 20.0)),
    Option("augment.noise_prob", float, "Share of training utterances that get --noise.", flags=("--noise-prob",),
           low=0, high=1, default=0.5),
    Option("training.spec_augment", bool, "SpecAugment on or off, where the model has it [default: as its config "
           "says].", flags=("--spec-augment/--no-spec-augment",)),
    Option("training.num_workers", int, "Processes decoding audio for the data loader.", flags=("--num-workers",),
           low=0),
    Option("training.eval_steps", int, "Validate (WER) every N steps.", flags=("--eval-steps",), low=1),
    Option("training.baseline", bool, "Validate the base model before the first step, so the summary says the WER "
           "before and after [default: on with --val].", flags=("--baseline/--no-baseline",)),
    Option("training.average_last", int, "The output model (or adapter) is the average of the weights of the last N "
           "checkpoints (one every --eval-steps); its validation WER is reported beside the best single "
           "checkpoint's.", flags=("--average-last",), low=2, metavar="N"),
    Option("training.early_stopping_patience", int, "Stop after N validations without a better WER.",
           flags=("--early-stopping-patience",), low=1),
    Option("training.seed", int, "Random seed.", flags=("--seed",)),
    Option("training.tensorboard", bool, "Write TensorBoard logs to OUTPUT_DIR/runs.", flags=("--tensorboard",)),
    Option("distributed.nproc_per_node", int, "Data-parallel processes on this machine, one per GPU (torchrun; gloo "
           "on CPUs).", scope="recipe", flags=("--nproc-per-node",), low=1),
    Option("distributed.nnodes", int, "Machines in the job (run the same command on each).", scope="recipe",
           flags=("--nnodes",), low=1),
    Option("distributed.rdzv_endpoint", str, "Where the machines of a multi-node job meet: the first node (port 29500 "
           "by default).", scope="recipe", flags=("--rdzv-endpoint",), metavar="HOST[:PORT]"),
    Option("allow_pickle", bool, "Load a base model that has only pickle-based weights (they can run code): trusted "
           "sources only.", scope="recipe", flags=("--allow-pickle",)),
)

BY_NAME = {option.name: option for option in TABLE}
COMMON_SETTINGS = tuple(option for option in TABLE if option.scope == "common")  # what every trainer takes
LORA_SETTINGS = tuple(option for option in TABLE if option.scope == "lora")  # ... and every trainer doing LoRA
FLAGGED = tuple(option for option in TABLE if option.flags)

TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", list: "a list"}


def default(name: str) -> Any:
    """What applies when the setting `name` is not set (the core's default, where it has one)."""
    return BY_NAME[name].default


def kinds(setting: Setting) -> tuple[type, ...]:
    return setting.type if isinstance(setting.type, tuple) else (setting.type,)


def type_label(setting: Setting) -> str:
    """`bool`, `list|str`, `any`: a setting's type as `asrctl plugins` and `finetune --help` show it."""
    return "|".join("any" if kind is object else kind.__name__ for kind in kinds(setting))


def fits(value: Any, kind: type) -> bool:
    """Whether a recipe value is of `kind` (an int is a float too, a bool no number)."""
    if kind is object:
        return True
    if isinstance(value, bool) and kind is not bool:  # YAML's true is no number
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
