"""What plugins register: one small frozen record per backend, format, trainer and engine.

Plugins describe; the core decides. Each spec carries callables that the core calls lazily,
so registering a backend costs nothing until it is used (no torch at registration time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BackendSpec:
    """A model family: `load(model, device, dtype, **opts)` returns an object with `transcribe(batch)`."""

    name: str
    load: Callable[..., Any]
    description: str = ""
    # What it supports, e.g. {"timestamps", "long-form", "languages", "trainable", "peft"}.
    capabilities: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class FormatSpec:
    """A dataset format, converted to and from manifest records (dicts with audio_filepath/duration/text)."""

    name: str
    description: str = ""
    # read(path, on_error) yields manifest records and passes each bad entry to on_error(LineError);
    # write(records, path) writes them and returns the count.
    read: Callable[[Path, Callable[[Any], None]], Iterator[dict]] | None = None
    write: Callable[[Iterable[dict], Path], int] | None = None
    # detect(path) says whether path looks like this format, so `--from` can be left out.
    detect: Callable[[Path], bool] | None = None


@dataclass(frozen=True)
class TrainerSpec:
    """Fine-tunes the backends it names with the methods it supports ("sft", "lora")."""

    name: str
    backends: tuple[str, ...]
    train: Callable[..., Any]
    methods: tuple[str, ...] = ("sft",)
    description: str = ""


@dataclass(frozen=True)
class EngineSpec:
    """Where a job runs: `run(job)` executes it (this process, a Ray cluster, ...)."""

    name: str
    run: Callable[..., Any]
    description: str = ""
