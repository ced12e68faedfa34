"""The Python API: a model loaded once through any backend, transcribing files and arrays from any
number of threads at once, their audio batched together (asrctl.serve.batcher).

    from asrctl.serve import load

    model = load("faster-whisper", "base", device="auto", language="en")
    print(model.transcribe("talk.wav").text)
    texts = [t.text for t in model.transcribe_many(["a.wav", "b.flac", samples])]

Options are those of `asrctl infer`: `device`, `dtype`, `batch_size`, `batch_seconds`, and the
backend's own (language, task, beam_size, timestamps, ... and its -O options by name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from asrctl import plugins
from asrctl.data.audio import load_audio
from asrctl.errors import AsrctlError, AudioError
from asrctl.infer.job import (
    DEFAULT_BATCH_SECONDS,
    DEFAULT_BATCH_SIZE,
    InferJob,
    WorkResult,
    check_item_keys,
    check_options,
)
from asrctl.infer.steps import load_model
from asrctl.serve.batcher import Batcher, BatchStats
from asrctl.specs import SAMPLE_RATE, Transcript

# How long a batch waits for more callers' audio once it has some: a few milliseconds, next to a
# model's hundreds per batch.
DEFAULT_WAIT_SECONDS = 0.01

Audio = str | PathLike | np.ndarray


class Model:
    """A loaded model; see the module docstring. Close it (or use it in a `with`) to stop its batch thread."""

    def __init__(self, backend: str, model: str, *, device: str = "auto", dtype: str = "auto",
                 batch_size: int = DEFAULT_BATCH_SIZE, batch_seconds: float = DEFAULT_BATCH_SECONDS,
                 wait_seconds: float = DEFAULT_WAIT_SECONDS, max_queued: int | None = None, **options: Any) -> None:
        spec = plugins.backends().get(backend)
        options = {key: value for key, value in options.items() if value is not None}
        check_options(spec, options)
        if spec.check is not None:
            spec.check(model)
        job = InferJob(manifest=Path(), output=Path(), backend=backend, model=model, device=device, dtype=dtype,
                       options=options, batch_size=batch_size, batch_seconds=batch_seconds)
        self.backend, self.name, self.spec = backend, model, spec
        self._model = load_model(job, spec)
        prepare = getattr(self._model, "prepare", None)
        self._prepare = prepare if callable(prepare) else None
        self._batcher = Batcher(self._model, spec, batch_size=batch_size, batch_seconds=batch_seconds,
                                wait_seconds=wait_seconds, max_queued=max_queued)

    @property
    def item_settings(self) -> frozenset[str]:
        """The settings an input may have of its own (language=...), as this model takes them."""
        return frozenset(getattr(self._model, "item_settings", self.spec.item_settings))

    @property
    def queued(self) -> int:
        """Inputs waiting for a batch."""
        return self._batcher.queued

    def on_batch(self, callback: Callable[[int, float], None]) -> None:
        """Call `callback(items, padded_seconds)` after each batch (for metrics)."""
        self._batcher.on_batch = callback

    @property
    def stats(self) -> BatchStats:
        """Batches run so far, the items in them and their padded audio seconds."""
        return self._batcher.stats

    def transcribe(self, audio: Audio, **settings: Any) -> Transcript:
        """One file (any format ffmpeg reads) or a mono float32 array at 16 kHz; an AsrctlError with the
        reason when it cannot be transcribed. `settings`: the item's own (language=...) where the
        backend takes them per item."""
        result = self.transcribe_many([audio], **settings)[0]
        if isinstance(result, AsrctlError):
            raise result
        return result

    def transcribe_many(self, inputs: Sequence[Audio], **settings: Any) -> list[Transcript | AsrctlError]:
        """Each input's transcript, in order, or the error that stopped it (the others go on)."""
        check_item_keys(self.spec, dict.fromkeys(settings, ""), (self.name, self._model))
        pending = [self.submit(audio, **settings) for audio in inputs]
        return [self._outcome(p) for p in pending]

    def submit(self, audio: Audio, **settings: Any) -> Future[WorkResult] | AsrctlError:
        """Queue one input for the next batches: the future of its result, or why it cannot be read.
        Decoding (and the model's per-item preparation) runs here, in the caller's thread. With
        `max_queued` inputs waiting already, QueueFull is raised."""
        name = "<array>" if isinstance(audio, np.ndarray) else str(audio)
        try:
            samples = self._samples(audio)
        except AsrctlError as exc:
            return exc
        if samples.size == 0:
            return AudioError(f"{name}: audio is empty")
        try:
            prepared = self._prepare(samples) if self._prepare is not None else samples
        except Exception as exc:  # the model's preparation failing on this audio costs this input only
            return AsrctlError(f"{name}: preparing it for the model failed ({type(exc).__name__}: {exc})")
        return self._batcher.submit(prepared, samples.size / SAMPLE_RATE, {k: v for k, v in settings.items()
                                                                           if v is not None}, name)

    @staticmethod
    def _samples(audio: Audio) -> np.ndarray:
        if isinstance(audio, np.ndarray):
            if audio.ndim != 1:
                raise AsrctlError(f"an array of shape {audio.shape}: expected mono samples at {SAMPLE_RATE} Hz "
                                  "(one dimension)")
            return np.ascontiguousarray(audio, dtype=np.float32)
        return load_audio(audio)

    @staticmethod
    def _outcome(pending: Future[WorkResult] | AsrctlError) -> Transcript | AsrctlError:
        if isinstance(pending, AsrctlError):
            return pending
        result = pending.result()
        return result.transcript if result.transcript is not None else AsrctlError(result.error or "no result")

    def close(self) -> None:
        self._batcher.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(backend: str, model: str, **options: Any) -> Model:
    """Load `model` through `backend` once, for transcribing from any thread (see Model)."""
    return Model(backend, model, **options)
