"""The Python API: a model loaded once through any backend, transcribing files and arrays from any
number of threads at once, their audio batched together (asrctl.serve.batcher).

    from asrctl.serve import load

    model = load("faster-whisper", "base", device="auto", language="en")
    print(model.transcribe("talk.wav").text)
    texts = [t.text for t in model.transcribe_many(["a.wav", "b.flac", samples])]
    rows = model.transcribe_manifest("test.jsonl")  # the rows with pred_text, as `asrctl infer` writes them

Options are those of `asrctl infer`: `device`, `dtype`, `batch_size`, `batch_seconds`, `segment`
(none, auto, vad), `vad`, `vad_options`, `max_segment`, and the backend's own (language, task,
beam_size, timestamps, ... and its -O options by name). Audio that `segment` cuts goes to the
batches as its speech segments, beside everyone else's audio, and comes back joined.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from asrctl import plugins
from asrctl.data.audio import load_audio
from asrctl.data.paths import Rebaser
from asrctl.data.rows import ManifestReader
from asrctl.errors import AsrctlError, AudioError
from asrctl.infer.job import (
    DEFAULT_BATCH_SECONDS,
    DEFAULT_BATCH_SIZE,
    InferJob,
    WorkResult,
    check_item_keys,
    check_options,
)
from asrctl.infer.plan import joined, output_record, plan
from asrctl.infer.segmentation import Segmentation, Span, check_segmentation, find_segments, load_segmenter
from asrctl.infer.steps import decode, load_model
from asrctl.serve.batcher import Batcher, BatchStats, QueueFull
from asrctl.specs import SAMPLE_RATE, Transcript

# How long a batch waits for more callers' audio once it has some: a few milliseconds, next to a
# model's hundreds per batch.
DEFAULT_WAIT_SECONDS = 0.01

Audio = str | PathLike | np.ndarray


@dataclass
class Pending:
    """An input on its way through the batches: the futures of its parts, in order, each with where
    it lies in the input (seconds): one part for audio that goes whole, one per speech segment for
    audio the segmenter cut, none for audio without speech."""

    parts: list[tuple[Span, Future[WorkResult]]]
    whole: bool = True

    def done(self) -> bool:
        return all(future.done() for _, future in self.parts)

    def cancel(self) -> None:
        """Drop the parts not yet in a batch."""
        for _, future in self.parts:
            future.cancel()

    def outcome(self) -> Transcript | AsrctlError:
        """The transcript (the parts' joined), or the error that stopped it; waits for it."""
        results = [future.result() for _, future in self.parts]
        if self.whole:
            [result] = results
        else:
            result = joined(0, [span for span, _ in self.parts], results)
        return result.transcript if result.transcript is not None else AsrctlError(result.error or "no result")


class Model:
    """A loaded model; see the module docstring. Close it (or use it in a `with`) to stop its batch thread."""

    def __init__(self, backend: str, model: str, *, device: str = "auto", dtype: str = "auto",
                 batch_size: int = DEFAULT_BATCH_SIZE, batch_seconds: float = DEFAULT_BATCH_SECONDS,
                 wait_seconds: float = DEFAULT_WAIT_SECONDS, max_queued: int | None = None, segment: str = "none",
                 vad: str = "silero", vad_options: dict[str, Any] | None = None, max_segment: float | None = None,
                 **options: Any) -> None:
        spec = plugins.backends().get(backend)
        options = {key: value for key, value in options.items() if value is not None}
        check_options(spec, options)
        self.segmentation = Segmentation(segment, vad, dict(vad_options or {}), max_segment)
        check_segmentation(self.segmentation)
        cuts = segment == "vad" or (segment == "auto" and spec.window is not None)
        self._segmenter = load_segmenter(self.segmentation) if cuts else None
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
        pending = [self.submit(audio, **settings) for audio in inputs]
        return [p if isinstance(p, AsrctlError) else p.outcome() for p in pending]

    def transcribe_manifest(self, manifest: str | PathLike, *, language_key: str | None = None,
                            pred_key: str = "pred_text") -> list[dict[str, Any]]:
        """The manifest's rows (offsets, durations and channels as `asrctl infer` reads them), each with
        its transcript added as `infer` writes it (`pred_text`, and `pred_words`... where the model
        gives them), or `error` with the reason. Lines that are not rows are skipped with a warning.
        `language_key`: the field holding each row's language, as `--language-key`."""
        item_keys = {"language": language_key} if language_key else {}
        check_item_keys(self.spec, item_keys, (self.name, self._model))
        rows = list(ManifestReader(manifest, on_error=lambda error: warnings.warn(str(error), stacklevel=3)))
        items, failed = plan(rows, set(), item_keys=item_keys)
        results = {result.index: result for result in failed}
        pending: dict[int, Pending | AsrctlError] = {}
        for item in items:  # decoded one by one: the batches start while the rest are read
            _, samples, error = decode(item)
            pending[item.index] = AsrctlError(error) if error else self._submit_samples(samples, item.settings,
                                                                                     item.audio_path)
        for index, waiting in pending.items():
            outcome = waiting if isinstance(waiting, AsrctlError) else waiting.outcome()
            results[index] = (WorkResult(index, error=str(outcome)) if isinstance(outcome, AsrctlError)
                              else WorkResult(index, outcome))
        rebase = Rebaser(manifest)  # the rows' paths stay as the manifest wrote them
        return [output_record(row, results[i], pred_key, rebase) for i, row in enumerate(rows)]

    def submit(self, audio: Audio, **settings: Any) -> Pending | AsrctlError:
        """Queue one input for the next batches (cut into speech segments where `segment` says): what
        is pending, or why it cannot be read. Decoding, segmenting and the model's per-item preparation
        run here, in the caller's thread. With `max_queued` items waiting already, QueueFull is raised."""
        self._check_settings(settings)
        name = "<array>" if isinstance(audio, np.ndarray) else str(audio)
        try:
            samples = self._samples(audio)
        except AsrctlError as exc:
            return exc
        if samples.size == 0:
            return AudioError(f"{name}: audio is empty")
        return self._submit_samples(samples, {k: v for k, v in settings.items() if v is not None}, name)

    def _submit_samples(self, samples: np.ndarray, settings: dict[str, Any], name: str) -> Pending | AsrctlError:
        duration = samples.size / SAMPLE_RATE
        if self._segmenter is None or not self.segmentation.cuts(duration, self.spec.window):
            return self._queue_parts(samples, [(0.0, duration)], settings, name, whole=True)
        try:
            spans = find_segments(self._segmenter, lambda start, seconds: samples[
                round(start * SAMPLE_RATE):round((start + seconds) * SAMPLE_RATE)], duration,
                self.segmentation.limit(self.spec.window))
        except Exception as exc:  # the segmenter failing on this audio costs this input only
            return AsrctlError(f"{name}: finding its speech failed ({type(exc).__name__}: {exc})")
        return self._queue_parts(samples, spans, settings, name, whole=False)

    def _queue_parts(self, samples: np.ndarray, spans: list[Span], settings: dict[str, Any], name: str, *,
                     whole: bool) -> Pending | AsrctlError:
        parts = []
        for start, end in spans:
            audio = samples if whole else samples[round(start * SAMPLE_RATE):round(end * SAMPLE_RATE)]
            try:
                prepared = self._prepare(audio) if self._prepare is not None else audio
            except Exception as exc:  # the model's preparation failing on this audio costs this input only
                return AsrctlError(f"{name}: preparing it for the model failed ({type(exc).__name__}: {exc})")
            parts.append(((start, end), audio.size / SAMPLE_RATE, prepared))
        pending = Pending([], whole)
        try:
            for span, seconds, prepared in parts:
                pending.parts.append((span, self._batcher.submit(prepared, seconds, settings, name)))
        except QueueFull:
            pending.cancel()  # all of an input or none of it
            raise
        return pending

    def _check_settings(self, settings: dict[str, Any]) -> None:
        takes = self.item_settings
        unknown = sorted(set(settings) - takes)
        if unknown:
            raise AsrctlError(f"{self.name}: this {self.backend} model takes no {', '.join(unknown)} per input"
                              + (f" (it takes {', '.join(sorted(takes))})" if takes else ""))

    @staticmethod
    def _samples(audio: Audio) -> np.ndarray:
        if isinstance(audio, np.ndarray):
            if audio.ndim != 1:
                raise AsrctlError(f"an array of shape {audio.shape}: expected mono samples at {SAMPLE_RATE} Hz "
                                  "(one dimension)")
            return np.ascontiguousarray(audio, dtype=np.float32)
        return load_audio(audio)

    def close(self) -> None:
        self._batcher.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(backend: str, model: str, **options: Any) -> Model:
    """Load `model` through `backend` once, for transcribing from any thread (see Model)."""
    return Model(backend, model, **options)
