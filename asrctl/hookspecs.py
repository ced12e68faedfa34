"""The contracts plugins implement. Each hook receives a `register` callback (or the CLI group)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from asrctl.specs import BackendSpec, EngineSpec, ExporterSpec, FormatSpec, SegmenterSpec, TrainerSpec

PROJECT = "asrctl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_backends(register: Callable[[BackendSpec], None]) -> None:
    """Register speech recognition backends by calling register(BackendSpec(...)) for each."""


@hookspec
def register_formats(register: Callable[[FormatSpec], None]) -> None:
    """Register dataset formats by calling register(FormatSpec(...)) for each."""


@hookspec
def register_trainers(register: Callable[[TrainerSpec], None]) -> None:
    """Register fine-tuning trainers by calling register(TrainerSpec(...)) for each."""


@hookspec
def register_engines(register: Callable[[EngineSpec], None]) -> None:
    """Register job engines (where work runs) by calling register(EngineSpec(...)) for each."""


@hookspec
def register_segmenters(register: Callable[[SegmenterSpec], None]) -> None:
    """Register voice-activity detectors (for long recordings) by calling register(SegmenterSpec(...)) for each."""


@hookspec
def register_exporters(register: Callable[[ExporterSpec], None]) -> None:
    """Register model exporters (one backend's models into another's format) by calling register(ExporterSpec(...))."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the `asrctl` command-line group."""
