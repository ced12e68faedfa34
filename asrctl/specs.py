"""What plugins register: one small frozen record per backend, format, trainer and engine.

Plugins describe; the core decides. Each spec carries callables that the core calls lazily,
so registering a backend costs nothing until it is used (no torch at registration time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16000  # every array a backend, segmenter or trainer is given: mono float32 at this rate


@dataclass
class Transcript:
    """A backend's result for one utterance. Times are seconds from the start of the audio given."""

    text: str
    segments: list[dict[str, Any]] | None = None  # [{"start": 0.0, "end": 2.5, "text": "..."}]
    words: list[dict[str, Any]] | None = None  # [{"start": 0.0, "end": 0.4, "word": "..."}]
    language: str | None = None  # the language spoken, as detected (or as decoded in)
    language_probability: float | None = None  # the detector's probability of `language`


class Transcriber(Protocol):
    """What a backend's `load` returns.

    It may also have `prepare(audio) -> object`: CPU work per item (a model's features) that the
    engine runs where it decodes audio, in the decoding workers, so that it overlaps with the model;
    `transcribe` is then given what `prepare` returned in place of the item's array (and arrays
    still where no worker ran it: Ray's model workers, the Python API). Workers get the method by
    fork from the process the model loaded in: it must not touch the accelerator.
    """

    def transcribe(self, batch: list[np.ndarray], **settings: list[Any]) -> list[Transcript]:
        """Transcribe mono float32 arrays at SAMPLE_RATE; one Transcript per array, in the same order.

        `settings` are the per-item settings (ITEM_SETTINGS) the backend declares and the job gives
        (`--language-key lang`): each a list with one value per array, None for an item without one
        (which takes the value given to `load`, or what the model finds itself)."""


class Segmenter(Protocol):
    """What a segmenter's `load` returns: a voice-activity detector."""

    def speech(self, audio: np.ndarray, max_seconds: float) -> list[tuple[float, float]]:
        """The speech regions of mono float32 audio at SAMPLE_RATE as (start, end) seconds, in order, none
        longer than `max_seconds` (split where the detector finds the best place)."""


# Options `asrctl infer` has flags for and passes to `load` when the user sets them; a backend lists
# those it takes in `options`. Anything else a backend needs it declares in `extra_options`.
INFER_OPTIONS = ("language", "task", "target_language", "detect_language", "beam_size", "timestamps",
                 "chunk_seconds", "quantize", "trust_remote_code", "allow_pickle")
# Options an item may set for itself: a row, from a field the user names (`--language-key lang`,
# `--target-language-key tgt`), a request to `asrctl serve` (its language; task translate at
# /v1/audio/translations). A backend lists those it takes per item in `item_settings`.
ITEM_SETTINGS = ("language", "target_language", "task")
ROW_SETTINGS = ("language", "target_language")  # those with a --NAME-key of asrctl infer


@dataclass(frozen=True)
class BackendSpec:
    """A model family: `load(model, device=, dtype=, **options)` returns a Transcriber.

    `device` arrives resolved ("cpu", "cuda:0", "mps") and `dtype` as "float32", "float16" or
    "bfloat16"; `options` holds only the options the user set: INFER_OPTIONS named in `options`,
    and the backend's own `extra_options` (name -> help text), which users give as `-O NAME=VALUE`
    with the value read as a YAML scalar (int8 -> "int8", 5 -> 5, true -> True).
    """

    name: str
    load: Callable[..., Transcriber]
    description: str = ""
    options: frozenset[str] = field(default_factory=frozenset)
    extra_options: dict[str, str] = field(default_factory=dict)
    # check(model) raises AsrctlError, before anything slow loads, for a model its files show this
    # backend cannot load (a folder of another family: the line names the backend to use).
    check: Callable[[str], None] | None = None
    # Seconds of audio the model is best given at once (Whisper's 30 s window): `--segment auto`
    # cuts longer rows into segments of up to this. None: the backend takes any length as it is.
    window: float | None = None
    # The model computes over its whole window whatever an item's length (Whisper pads its input to
    # 30 s): batches then count a shorter item as the window, so --batch-seconds bounds what it costs.
    pads_to_window: bool = False
    # ITEM_SETTINGS that `transcribe` takes per item. With `mixed_batches` False, the items of a
    # batch given to it all share their settings (the engine splits batches to that end). A loaded
    # Transcriber may take fewer (some of the backend's models have no language to set): it says so
    # in an `item_settings` attribute of its own.
    item_settings: frozenset[str] = field(default_factory=frozenset)
    mixed_batches: bool = True
    # `load(..., align=True)` gives a Transcriber whose `transcribe(batch, text=[...])` places each
    # item's known text in its audio (`asrctl align`): the Transcript of that text with `words`
    # ({"word", "start", "end", "score"}, every word of the text, in order) and `segments` (its
    # sentences, likewise). A word it cannot place gets score 0, not an error.
    aligns: bool = False

    @property
    def languages(self) -> dict[str, Any]:
        """What it does with languages, as `asrctl plugins` lists it: the settings it takes per row,
        whether it detects the language spoken (--detect-language), whether it translates (--task)."""
        per_row = sorted(set(self.item_settings) & set(ROW_SETTINGS))  # those a row's field can set
        return {"per_row": per_row, "detects": "detect_language" in self.options,
                "translates": "task" in self.options}

    def __post_init__(self) -> None:
        # Checked at registration, where a failure names the plugin rather than surfacing in a job.
        if not set(self.options) <= set(INFER_OPTIONS):
            unknown = ", ".join(sorted(set(self.options) - set(INFER_OPTIONS)))
            raise ValueError(f"backend {self.name!r}: {unknown} not in INFER_OPTIONS (declare it in extra_options)")
        if not set(self.item_settings) <= set(ITEM_SETTINGS):
            unknown = ", ".join(sorted(set(self.item_settings) - set(ITEM_SETTINGS)))
            raise ValueError(f"backend {self.name!r}: item settings {unknown} not in ITEM_SETTINGS")
        for name in self.extra_options:
            if not name.isidentifier() or name in INFER_OPTIONS:
                raise ValueError(f"backend {self.name!r}: extra option {name!r} must be an identifier "
                                 "that is not one of INFER_OPTIONS")


@dataclass(frozen=True)
class FormatSpec:
    """A dataset format, converted to and from manifest records (dicts with audio_filepath/duration/text)."""

    name: str
    description: str = ""
    # read(path, on_error) yields manifest records and passes each bad entry to on_error(LineError);
    # write(records, path) writes them and returns the count.
    read: Callable[[Path, Callable[[Any], None]], Iterator[dict[str, Any]]] | None = None
    write: Callable[[Iterable[dict[str, Any]], Path], int] | None = None
    # detect(path) says whether path looks like this format, so `--from` can be left out.
    detect: Callable[[Path], bool] | None = None


@dataclass(frozen=True)
class Setting:
    """A recipe setting a trainer reads, which users give in a recipe or as `--set NAME=VALUE`.

    `name` is its dotted key (`data.build_vocab`); a name ending in `.*` takes any key of that section,
    which the trainer's `check` validates (the hf trainer passes `training.*` on to TrainingArguments).
    `type` is what a value must be: bool, int, float (an int is taken too), str, list, a tuple of
    these, or object for anything.
    """

    name: str
    type: type | tuple[type, ...]
    help: str


@dataclass(frozen=True)
class TrainerSpec:
    """Fine-tunes the backends it names with the methods it supports ("sft", "lora").

    `train(recipe, resume=bool, quiet=bool)` gets the merged recipe (see asrctl.train.recipes) and
    returns the training summary dict it also writes to OUTPUT_DIR/training_summary.json.
    `recipes` maps recipe names to the YAML files shipped with the plugin. With several processes
    (`--nproc-per-node`, `--nnodes`), `launcher` says who starts them: "torchrun" (the command runs
    again in each process torchrun starts; `train` runs in every one and the summary of rank 0 is
    printed) or "self" (`train` runs once and reads recipe["distributed"], e.g. for Lightning's DDP,
    which starts the processes of this machine). A job of several machines runs under torchrun
    whatever the launcher: each node's processes then get their ranks from it (asrctl.api.in_torchrun).
    `check(recipe, resume=bool)`, when given, raises AsrctlError for mistakes found without loading
    anything; the core calls it before `train`, once before the processes start, so such an error is
    printed once, not by each.
    `settings` are the trainer's own, beyond those every trainer takes (asrctl.train.settings.COMMON_SETTINGS,
    in neutral names each trainer maps onto its library); the core refuses any other before loading.
    `mixing`: it takes several weighted training sources (data.train a list of {file, weight}, read
    with asrctl.train.recipes.train_sources); the core refuses a mix for a trainer without it.
    """

    name: str
    backends: tuple[str, ...]
    train: Callable[..., dict[str, Any]]
    methods: tuple[str, ...] = ("sft",)
    description: str = ""
    recipes: dict[str, Path] = field(default_factory=dict)
    launcher: str = "torchrun"
    check: Callable[..., None] | None = None
    settings: tuple[Setting, ...] = ()
    mixing: bool = False

    def __post_init__(self) -> None:
        for setting in self.settings:
            section, _, key = setting.name.partition(".")
            if section not in ("data", "training", "lora", "freeze", "augment") or \
                    not (key == "*" or key.isidentifier()):
                raise ValueError(f"trainer {self.name!r}: setting {setting.name!r} must be SECTION.KEY or "
                                 "SECTION.*, SECTION one of data, training, lora, freeze, augment")


@dataclass(frozen=True)
class EngineSpec:
    """Where a job runs: `run(job, spec, items)` executes it (this process, a Ray cluster, ...),
    and `segment(...)` finds the speech of long rows first, where `--segment` asks for it.

    `options` (name -> help text) are the engine's own settings, which users give as
    `-E NAME=VALUE` (value read as YAML) and the engine finds in `job.engine_options`.
    """

    name: str
    run: Callable[..., Any]
    description: str = ""
    options: dict[str, str] = field(default_factory=dict)
    # segment(job, spec, items) yields (item, spans) for each item, in any order: its speech
    # segments as (start, end) seconds from the item's start (asrctl.infer.steps.find_speech, run
    # where audio is decoded), or a string saying why its audio could not be searched.
    segment: Callable[..., Any] | None = None


@dataclass(frozen=True)
class SegmenterSpec:
    """A voice-activity detector for `asrctl infer --segment` and `asrctl manifest segment`:
    `load(**options)` returns a Segmenter. It runs where audio is decoded (DataLoader workers, Ray
    CPU tasks), on the CPU. `options` (name -> help text) are given as `-V NAME=VALUE`.
    """

    name: str
    load: Callable[..., Segmenter]
    description: str = ""
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExporterSpec:
    """Converts models of the backends in `sources` into what backend `target` loads (Whisper into
    CTranslate2 for faster-whisper, a CTC model into ONNX, ...): `export(model, out, quantize=...,
    allow_pickle=...)` writes the converted model, with the files the target needs beside it, into
    the folder `out`, which the core has made empty and renames into place when it returns (so a
    failed export leaves nothing behind). `model` is what `asrctl infer -m` takes for the source
    backend (a hub id, a folder, a fine-tuned output folder or LoRA adapter, merged on the way).
    `quantizations` are the weight types it can write (the first the default).
    """

    name: str
    sources: tuple[str, ...]
    target: str
    export: Callable[..., None]
    quantizations: tuple[str, ...] = ()
    description: str = ""
