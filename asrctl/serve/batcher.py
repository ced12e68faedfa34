"""Batches across callers: audio from any thread goes to one queue, and one thread forms batches of it
(by count and by padded audio seconds, as `asrctl infer` does, within a short wait for more) and runs
the model on them, one batch at a time; each item's result goes back to its caller.

A failing batch is retried in halves (asrctl.infer.steps), so it fails only the items that fail
alone; an item whose caller gave up (its future cancelled) is dropped before it reaches the model.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from asrctl.errors import AsrctlError
from asrctl.infer.job import WorkItem, WorkResult
from asrctl.infer.steps import transcribe_batch
from asrctl.specs import BackendSpec, Transcriber


@dataclass
class BatchStats:
    """What the batches were: for metrics, and for tests that batching happened."""

    batches: int = 0
    items: int = 0
    padded_seconds: float = 0.0


@dataclass
class _Queued:
    item: WorkItem
    audio: Any  # the decoded array, or what the model's prepare() made of it
    future: Future[WorkResult]


class QueueFull(AsrctlError):
    """More items wait than the batcher takes."""


class Batcher:
    """One thread running `model` on batches of what `submit` is given from any thread."""

    def __init__(self, model: Transcriber, spec: BackendSpec, *, batch_size: int, batch_seconds: float,
                 wait_seconds: float, max_queued: int | None = None,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.model, self.spec = model, spec
        self.batch_size, self.batch_seconds, self.wait_seconds = batch_size, batch_seconds, wait_seconds
        self.on_batch = on_batch
        self.max_queued = max_queued
        self._submitting = threading.Lock()  # the check of the queue's length and the put, as one
        self.stats = BatchStats()
        self._floor = spec.window if spec.pads_to_window and spec.window else 0.0
        self._queue: queue.Queue[_Queued | None] = queue.Queue()
        self._held: _Queued | None = None  # the item that would have overfilled the last batch: the next one's first
        self._ids = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="asrctl-batcher", daemon=True)
        self._thread.start()

    def submit(self, audio: Any, duration: float, settings: dict[str, Any] | None = None,
               name: str = "<audio>") -> Future[WorkResult]:
        """Queue one item (`audio` as the model takes it, `duration` its seconds); its result comes in the
        future, an error result for an item that failed. QueueFull when `max_queued` items wait."""
        if self._closed:
            raise AsrctlError("the model is closed")
        future: Future[WorkResult] = Future()
        item = WorkItem(next(self._ids), 0, name, None, duration, None, settings or {})
        with self._submitting:
            if self.max_queued is not None and self.queued >= self.max_queued:
                raise QueueFull(f"{self.queued} inputs are waiting for a batch")
            self._queue.put(_Queued(item, audio, future))
        return future

    @property
    def queued(self) -> int:
        return self._queue.qsize() + (self._held is not None)

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _padded(self, batch: list[_Queued]) -> float:
        return len(batch) * max(max(q.item.duration, self._floor) for q in batch)

    def _next_batch(self) -> list[_Queued] | None:
        first = self._held or self._queue.get()
        self._held = None
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.wait_seconds
        while len(batch) < self.batch_size:
            try:
                queued = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if queued is None:
                self._queue.put(None)  # stop once this batch is done
                break
            if self._padded([*batch, queued]) > self.batch_seconds:
                self._held = queued
                break
            batch.append(queued)
        return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [q for q in batch if q.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                results = transcribe_batch(self.model, [(q.item, q.audio, None) for q in live], self.spec)
            except BaseException as exc:  # the model failing beyond a batch: every caller hears of it
                for q in live:
                    q.future.set_exception(exc)
                continue
            by_index = {r.index: r for r in results}
            for q in live:
                q.future.set_result(by_index[q.item.index])
            padded = self._padded(live)
            self.stats.batches += 1
            self.stats.items += len(live)
            self.stats.padded_seconds += padded
            if self.on_batch is not None:
                self.on_batch(len(live), padded)
