"""asrctl: one command-line suite for speech recognition models, with model families as plugins.

What a plugin registers: the hook marker, the specs, the errors. What its implementation uses
when it runs (audio, engine contract, training helpers, WER) is in `asrctl.api`.
"""

from asrctl.errors import AsrctlError, AudioError
from asrctl.hookspecs import hookimpl
from asrctl.hub import offline_unless_reachable
from asrctl.specs import (
    INFER_OPTIONS,
    SAMPLE_RATE,
    BackendSpec,
    EngineSpec,
    ExporterSpec,
    FormatSpec,
    Segmenter,
    SegmenterSpec,
    Setting,
    TrainerSpec,
    Transcriber,
    Transcript,
)

__version__ = "0.1.0"

__all__ = [
    "AsrctlError",
    "AudioError",
    "BackendSpec",
    "EngineSpec",
    "ExporterSpec",
    "FormatSpec",
    "INFER_OPTIONS",
    "SAMPLE_RATE",
    "Segmenter",
    "SegmenterSpec",
    "Setting",
    "TrainerSpec",
    "Transcriber",
    "Transcript",
    "__version__",
    "hookimpl",
    "offline_unless_reachable",
]
