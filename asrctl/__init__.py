"""asrctl: one command-line suite for speech recognition models, with model families as plugins.

The public API for plugins: the hook markers, the specs they register, and the core rooms.
"""

from asrctl.errors import AsrctlError, AudioError
from asrctl.hookspecs import hookimpl
from asrctl.hub import offline_unless_reachable
from asrctl.specs import (
    INFER_OPTIONS,
    BackendSpec,
    EngineSpec,
    FormatSpec,
    Segmenter,
    SegmenterSpec,
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
    "FormatSpec",
    "INFER_OPTIONS",
    "Segmenter",
    "SegmenterSpec",
    "TrainerSpec",
    "Transcriber",
    "Transcript",
    "__version__",
    "hookimpl",
    "offline_unless_reachable",
]
