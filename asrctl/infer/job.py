"""The engine contract: a job (what to transcribe, with what), the work items an engine is given and
the results it gives back, and the checks of a job against its backend. Engines and the
orchestrator (asrctl.infer.run) both stand on this module; it stands on neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl import plugins
from asrctl.errors import AsrctlError
from asrctl.infer.resume import file_identity
from asrctl.infer.segmentation import Segmentation
from asrctl.registry import refuse_undeclared
from asrctl.specs import INFER_OPTIONS, BackendSpec, Transcriber, Transcript

DEFAULT_BATCH_SIZE = 16
# Padded audio seconds a batch holds by default: the default count of a Whisper's 30-s windows.
DEFAULT_BATCH_SECONDS = DEFAULT_BATCH_SIZE * 30.0


@dataclass
class InferJob:
    """Everything an engine needs to transcribe a manifest."""

    manifest: Path
    output: Path
    backend: str
    model: str
    engine: str = "local"
    engine_options: dict[str, Any] = field(default_factory=dict)  # -E KEY=VALUE; not fingerprinted
    device: str = "auto"
    dtype: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_seconds: float = DEFAULT_BATCH_SECONDS
    num_workers: int = 2
    pred_key: str = "pred_text"
    overwrite: bool = False
    retry_errors: bool = False  # a finished output: redo only its rows without a prediction
    segmentation: Segmentation = field(default_factory=Segmentation)
    item_keys: dict[str, str] = field(default_factory=dict)  # item setting -> the row field holding it
    align: bool = False  # place each row's known text (item_keys["text"]) instead of transcribing

    def fingerprint(self) -> dict[str, Any]:
        # Batch sizes, workers and device may change between a crash and its resume; these may not.
        return {
            "manifest": file_identity(self.manifest),
            "backend": self.backend,
            "model": self.model,
            "dtype": self.dtype,
            "options": self.options,
            "pred_key": self.pred_key,
            **({"item_keys": self.item_keys} if self.item_keys else {}),
            **({"segmentation": vars(self.segmentation)} if self.segmentation.mode != "none" else {}),
            **({"align": True} if self.align else {}),
        }

    @property
    def setting_keys(self) -> dict[str, str]:
        """The item settings a backend declares (the text an aligner is given is not one of them)."""
        return {name: key for name, key in self.item_keys.items() if not (self.align and name == "text")}


@dataclass(frozen=True)
class WorkItem:
    """One utterance to transcribe: the core's id for it (a row's position in the manifest, or a
    segment's id past them), and where its audio is."""

    index: int
    line: int
    audio_path: str
    offset: float | None  # None: the whole file; else the segment [offset, offset + duration]
    duration: float
    channel: int | None = None  # None: all channels averaged; else that one
    settings: dict[str, Any] = field(default_factory=dict)  # its row's own ITEM_SETTINGS ({"language": "de"})


@dataclass
class WorkResult:
    """What became of a WorkItem (same `index`): its transcript, or the error that stopped it."""

    index: int
    transcript: Transcript | None = None
    error: str | None = None


def check_options(spec: BackendSpec, options: dict[str, Any]) -> None:
    """Refuse, before anything loads, options the backend does not declare: flags, then -O keys."""
    flags = sorted(name for name in set(options) - set(spec.options) if name in INFER_OPTIONS)
    if flags:
        given = ", ".join("--" + name.replace("_", "-") for name in flags)
        takes = ", ".join("--" + n.replace("_", "-") for n in sorted(spec.options)) or "none of the model options"
        raise AsrctlError(f"backend {spec.name!r} does not take {given} (it takes {takes})")
    refuse_undeclared(f"backend {spec.name!r}", "-O", set(options) - set(spec.options), spec.extra_options)


def check_item_keys(spec: BackendSpec, item_keys: dict[str, str], model: tuple[str, Transcriber] | None = None) -> None:
    """Refuse per-row settings (--language-key) the backend cannot take per item: before it loads,
    by what the backend declares; once loaded, by what the `model` (its name, its Transcriber) takes."""
    takes = spec.item_settings if model is None else getattr(model[1], "item_settings", spec.item_settings)
    for name in sorted(set(item_keys) - set(takes)):
        flag = "--" + name.replace("_", "-") + "-key"
        what = f"{name.replace('_', ' ')} per row ({flag})"
        if model is not None:
            raise AsrctlError(f"{model[0]}: this {spec.name} model takes no {what}")
        able = [b.name for b in plugins.backends() if name in b.item_settings]
        raise AsrctlError(f"backend {spec.name!r} cannot take a {what}; "
                          + (f"backends that can: {', '.join(able)}" if able else "no installed backend can"))


