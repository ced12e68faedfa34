"""Group utterances into batches bounded by count and by padded audio seconds: longest first for
inference, in duration buckets for training."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

from asrctl.errors import AsrctlError


def duration_batches(durations: Sequence[float], batch_size: int, batch_seconds: float) -> list[list[int]]:
    """Positions of `durations` grouped into batches, longest utterances first.

    Sorting by duration keeps padding small; a batch grows while it has fewer than `batch_size`
    items and its padded length (count x longest) stays within `batch_seconds`. An utterance
    longer than `batch_seconds` gets a batch of its own. Longest first makes an out-of-memory
    error show at once, and the progress estimate pessimistic rather than optimistic.
    """
    order = sorted(range(len(durations)), key=lambda i: durations[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = durations[current[0]] if current else durations[i]
        if current and (len(current) >= batch_size or (len(current) + 1) * longest > batch_seconds):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class BucketBatches:
    """Training batches of similar durations: a batch sampler (lists of dataset positions) that
    bounds each batch's padded audio (count x longest) by `batch_seconds` and its count by
    `batch_size`, so short utterances come many to a batch and long ones few, with little padding.

    The utterances are cut into `buckets` of equal count by duration. Each bucket has a batch size
    of its own, as many of its longest utterance as `batch_seconds` holds; each epoch shuffles the
    utterances within their buckets and the batches among themselves, from (`seed`, epoch), so a
    run resumed mid-epoch sees the batches the uninterrupted run saw, and every utterance comes once
    an epoch. The number of batches is the same every epoch, which the trainers plan steps by.

    With `shard` (the nemo trainer; transformers' Accelerate shards batches itself), each of the
    processes of a distributed run takes every world-th batch, repeating some of the first so all
    take as many.
    """

    def __init__(self, durations: Sequence[float], *, batch_seconds: float, batch_size: int | None = None,
                 buckets: int = 10, seed: int = 0, shard: bool = False) -> None:
        longest = max(durations)
        if longest > batch_seconds:
            raise AsrctlError(f"batch seconds {batch_seconds:g} cannot hold the longest training utterance "
                              f"({longest:.1f} s): raise it, or leave such utterances out with --max-duration")
        order = sorted(range(len(durations)), key=lambda i: durations[i])
        count = max(1, min(buckets, len(order)))
        edges = [round(k * len(order) / count) for k in range(count + 1)]
        self.buckets = [order[a:b] for a, b in zip(edges, edges[1:]) if b > a]
        self.sizes = [max(1, min(batch_size or len(bucket), int(batch_seconds // durations[bucket[-1]])))
                      for bucket in self.buckets]
        self.seed, self.shard, self.epoch = seed, shard, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """This epoch's batches, of every process, in order."""
        rng = random.Random(f"{self.seed}/{self.epoch}")
        batches = []
        for bucket, size in zip(self.buckets, self.sizes):
            items = rng.sample(bucket, len(bucket))
            batches += [items[i:i + size] for i in range(0, len(items), size)]
        rng.shuffle(batches)
        return batches

    def _world(self) -> tuple[int, int]:
        import torch.distributed as dist

        if self.shard and dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        total = sum(math.ceil(len(bucket) / size) for bucket, size in zip(self.buckets, self.sizes))
        return math.ceil(total / self._world()[1])

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._world()
        batches = self.batches()
        batches += batches[: len(self) * world - len(batches)]  # every process as many batches
        return iter(batches[rank::world])


def bucketing(training: dict[str, Any]) -> dict[str, Any] | None:
    """BucketBatches' settings from a recipe's training section where it batches by duration
    (batch_seconds), else None. The count is capped only where the recipe sets batch_size: a
    trainer's default count would undo the point of batching by duration."""
    if not training.get("batch_seconds"):
        return None
    return {"batch_seconds": float(training["batch_seconds"]), "batch_size": training.get("batch_size"),
            **({"buckets": int(training["buckets"])} if training.get("buckets") else {})}
