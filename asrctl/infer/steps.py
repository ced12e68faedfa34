"""The steps every engine runs, wherever it runs them: load the model, decode a work item,
transcribe a decoded batch. Engines differ only in where these run and how batches travel.

A batch that fails is retried in halves, so one bad utterance (or an out-of-memory batch)
costs only itself.
"""

from __future__ import annotations

import gc
import multiprocessing
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from asrctl.data.audio import load_audio
from asrctl.data.batching import duration_batches
from asrctl.devices import resolve_device, resolve_dtype
from asrctl.errors import AsrctlError
from asrctl.infer.job import InferJob, WorkItem, WorkResult, check_item_keys
from asrctl.infer.segmentation import Segmentation, Span, find_segments, load_segmenter
from asrctl.progress import stderr
from asrctl.specs import BackendSpec, Transcriber

Decoded = tuple[WorkItem, Any, "str | None"]  # the item, its audio (or what `prepare` made of it), or why not


def load_model(job: InferJob, spec: BackendSpec) -> Transcriber:
    """The job's model on this machine's device (`--device auto` resolves where the model runs)."""
    device = resolve_device(job.device)
    aligning = {"align": True} if job.align else {}
    model = spec.load(job.model, device=device, dtype=resolve_dtype(job.dtype, device), **job.options, **aligning)
    check_item_keys(spec, job.setting_keys, (job.model, model))
    return model


def plan_batches(job: InferJob, spec: BackendSpec, items: list[WorkItem]) -> list[list[int]]:
    """The items' positions in batches, longest first, bounded by the job's count and by padded audio
    seconds as the model sees them (a shorter item fills a padding backend's whole window)."""
    floor = spec.window if spec.pads_to_window and spec.window else 0.0
    return duration_batches([max(item.duration, floor) for item in items], job.batch_size, job.batch_seconds)


def decode(item: WorkItem, prepare: Callable[[np.ndarray], Any] | None = None) -> Decoded:
    """The item's audio at 16 kHz mono, made ready for the model by `prepare` where given, or the
    reason it cannot be read."""
    try:
        audio = load_audio(item.audio_path, offset=item.offset or 0.0,
                           duration=item.duration if item.offset is not None else None, channel=item.channel)
    except AsrctlError as exc:
        return item, None, str(exc)
    if audio.size == 0:
        return item, None, f"{item.audio_path}: audio is empty"
    if prepare is not None:
        try:
            return item, prepare(audio), None
        except Exception as exc:  # the model's preparation failing on this audio costs this row only
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            return item, None, f"{item.audio_path}: preparing it for the model failed ({reason})"
    return item, audio, None


def preparation(model: Transcriber, workers: int) -> Callable[[np.ndarray], Any] | None:
    """The model's per-item CPU step (Transcriber.prepare) for the decoding workers, where they start
    by fork and so share the loaded model; a spawned worker would be sent a pickled model instead."""
    prepare = getattr(model, "prepare", None)
    forked = workers == 0 or multiprocessing.get_start_method(allow_none=False) == "fork"
    return prepare if callable(prepare) and forked else None


def find_speech(job: InferJob, spec: BackendSpec, item: WorkItem) -> tuple[WorkItem, list[Span] | str]:
    """The item's speech segments (seconds from its start) for the job's backend, or the reason its
    audio cannot be read."""
    return speech_segments(job.segmentation, job.segmentation.limit(spec.window), item)


def speech_segments(segmentation: Segmentation, max_seconds: float,
                    item: WorkItem) -> tuple[WorkItem, list[Span] | str]:
    """The item's speech segments of up to `max_seconds`, or the reason its audio cannot be read."""
    segmenter = load_segmenter(segmentation)

    def read(start: float, seconds: float) -> np.ndarray:
        return load_audio(item.audio_path, offset=(item.offset or 0.0) + start, duration=seconds, channel=item.channel)

    try:
        return item, find_segments(segmenter, read, item.duration, max_seconds)
    except AsrctlError as exc:
        return item, str(exc)
    except Exception as exc:  # a segmenter's failure on this audio costs this row only
        return item, (f"{item.audio_path}: finding its speech failed "
                      f"({type(exc).__name__}: {' '.join(str(exc).split())})")


def transcribe_batch(model: Transcriber, batch: list[Decoded], spec: BackendSpec) -> list[WorkResult]:
    """One result per item: its decoding error, or its transcript (or transcription error)."""
    results = [WorkResult(item.index, error=error) for item, audio, error in batch if audio is None]
    good = [(item, audio) for item, audio, _ in batch if audio is not None]
    groups: dict[str, list[tuple[WorkItem, np.ndarray]]] = {}
    for item, audio in good:  # a backend that cannot mix items' settings gets one batch per setting
        groups.setdefault("" if spec.mixed_batches else repr(sorted(item.settings.items())), []).append((item, audio))
    for group in groups.values():
        results += transcribe_safely(model, [item for item, _ in group], [audio for _, audio in group])
    return results


def item_settings(items: list[WorkItem]) -> dict[str, list[Any]]:
    """The items' own settings as transcribe() takes them: each a list, one value per item (None: not set)."""
    names = sorted({name for item in items for name in item.settings})
    return {name: [item.settings.get(name) for item in items] for name in names}


def transcribe_safely(model: Transcriber, items: list[WorkItem], audios: list[np.ndarray]) -> list[WorkResult]:
    """Transcribe a batch; on failure retry each half, down to single utterances. The halves run once
    the failure is let go: its traceback holds the failed call's frames, and with them the batch's
    tensors, whose memory an out-of-memory batch's halves need."""
    try:
        transcripts = model.transcribe(audios, **item_settings(items))
    except Exception as exc:
        if worker_died(exc):
            raise
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    else:
        if len(transcripts) == len(audios):
            return [WorkResult(item.index, transcript=t) for item, t in zip(items, transcripts)]
        reason = f"RuntimeError: backend returned {len(transcripts)} results for {len(audios)} inputs"
    release_memory()
    if len(items) == 1:
        return [WorkResult(items[0].index, error=f"{items[0].audio_path}: transcription failed ({reason})")]
    stderr.print(f"warning: a batch of {len(items)} failed ({reason[:200]}); retrying it in halves", style="yellow")
    half = len(items) // 2
    return (transcribe_safely(model, items[:half], audios[:half])
            + transcribe_safely(model, items[half:], audios[half:]))


def worker_died(exc: BaseException) -> bool:
    """torch's error for a DataLoader worker that died (the OOM killer, a kill). Its SIGCHLD handler
    raises it wherever the main thread is, so also from inside a backend's transcribe(): taken there
    for a failed batch, the job would go on to wait for the dead worker's batch forever."""
    return isinstance(exc, RuntimeError) and "DataLoader worker" in str(exc)


def release_memory() -> None:
    """Give back what a failed batch held: objects in reference cycles (a failure's frames often are),
    then the accelerator's cached blocks, so that the retry can allocate them again."""
    gc.collect()
    torch = sys.modules.get("torch")  # only a backend that imported torch can have GPU memory to give back
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
