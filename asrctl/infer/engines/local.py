"""The local engine: the model in this process, audio decoded by DataLoader worker processes.

Batches are formed longest-first by duration; workers decode and resample the next batches while
the model runs on the current one (see asrctl.infer.steps for what each step does).
"""

from __future__ import annotations

import ctypes
import importlib
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from asrctl import interrupts
from asrctl.errors import AsrctlError
from asrctl.infer.job import InferJob, WorkItem, WorkResult
from asrctl.infer.segmentation import Segmentation
from asrctl.infer.steps import (
    Decoded,
    decode,
    load_model,
    plan_batches,
    preparation,
    speech_segments,
    transcribe_batch,
    worker_died,
)
from asrctl.specs import BackendSpec


class AudioDataset:
    """Map-style dataset (torch only needs __getitem__/__len__): decoded audio or the reason it failed."""

    def __init__(self, items: Sequence[WorkItem], prepare: Callable[[Any], Any] | None = None) -> None:
        self.items = items
        self.prepare = prepare  # the model's per-item step, run here in the worker (steps.preparation)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> Decoded:
        return decode(self.items[position], self.prepare)


def init_worker(_worker_id: int) -> None:
    """DataLoader worker init. Ctrl-C reaches every process of the terminal's job: the main process
    alone decides what it means (finish the batch, or stop), and stops its workers in order; a worker
    that took it would die mid-batch. On Linux, end this worker when the asrctl process ends, even by
    SIGKILL (it would otherwise linger, holding its batch, until it noticed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class SpeechDataset(AudioDataset):
    """Map-style dataset of the items' speech segments (see asrctl.infer.steps.speech_segments)."""

    def __init__(self, segmentation: Segmentation, max_seconds: float, items: Sequence[WorkItem]) -> None:
        super().__init__(items)
        self.segmentation, self.max_seconds = segmentation, max_seconds

    def __getitem__(self, position: int):
        return speech_segments(self.segmentation, self.max_seconds, self.items[position])


def keep_list(batch: list[Decoded]) -> list[Decoded]:
    """Collate function: batches stay lists of variable-length arrays (backends pad their own way)."""
    return batch


def segment(job: InferJob, spec: BackendSpec, items: list[WorkItem]) -> Iterator[tuple[WorkItem, list | str]]:
    """The speech segments of each item, found by the decoding workers."""
    return find_all(job.segmentation, job.segmentation.limit(spec.window), items, job.num_workers)


def find_all(segmentation: Segmentation, max_seconds: float, items: list[WorkItem],
             workers: int) -> Iterator[tuple[WorkItem, list | str]]:
    """(item, its speech segments or why they could not be found) for each item, longest first, by
    `workers` processes (`asrctl manifest segment` calls this too)."""
    longest_first = [[i] for i in sorted(range(len(items)), key=lambda i: -items[i].duration)]
    with _watching_workers():
        for found in _worker_results(SpeechDataset(segmentation, max_seconds, items), longest_first, workers):
            yield from found


def run(job: InferJob, spec: BackendSpec, items: list[WorkItem]) -> Iterator[list[WorkResult]]:
    if not items:
        return
    _import_torch()  # before the backend imports it, for Ctrl-C
    model = load_model(job, spec)
    batches = plan_batches(job, spec, items)
    dataset = AudioDataset(items, preparation(model, job.num_workers))
    with _watching_workers():
        for batch in _worker_results(dataset, batches, job.num_workers):
            yield transcribe_batch(model, batch, spec)


def _import_torch() -> None:
    with interrupts.deferred():
        importlib.import_module("torch.utils.data")


def _worker_results(dataset: AudioDataset, batches: list[list[int]], workers: int) -> Iterator[list]:
    """The dataset's entries, batch by batch, computed by `workers` DataLoader processes."""
    _import_torch()
    from torch.utils.data import DataLoader

    yield from DataLoader(
        dataset, batch_sampler=batches, collate_fn=keep_list, num_workers=workers, worker_init_fn=init_worker,
        prefetch_factor=2 if workers else None, persistent_workers=False,
    )


@contextmanager
def _watching_workers() -> Iterator[None]:
    """A worker that died (torch's SIGCHLD handler raises wherever the main thread is, also inside a
    backend) is one line saying what to do."""
    try:
        yield
    except RuntimeError as exc:
        if not worker_died(exc):
            raise
        raise AsrctlError(f"an audio-decoding worker stopped ({' '.join(str(exc).split())}); the rows finished "
                          "are kept: run the same command to resume "
                          "(--num-workers 0 decodes in this process)") from None
