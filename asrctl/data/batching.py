"""Group utterances into batches bounded by count and by padded audio seconds: longest first for
inference, in duration buckets for training."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

from asrctl.errors import AsrctlError

DEFAULT_BUCKETS = 10  # duration buckets of training batches, where a recipe sets none


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
    of its own, as many of its longest utterance as `batch_seconds` holds (without batch_seconds,
    `batch_size` for all: batches of a fixed count). Each epoch shuffles the utterances within their
    buckets and the batches among themselves, from (`seed`, epoch), so a run resumed mid-epoch sees
    the batches the uninterrupted run saw, and every utterance comes once an epoch. The number of
    batches is the same every epoch, which the trainers plan steps by.

    With `sources` (each utterance's data file, 0..k-1) and their `weights`, an epoch mixes them:
    as many utterances as there are in all, the share of each source its weight's, each source's
    spread over the buckets as its own utterances are. A source takes its utterances in a shuffled
    order and starts a new shuffle when it runs out (a small one repeats, a large one is seen in
    part), and epochs go on where the last stopped: so the mix holds every epoch, and each epoch is
    drawn from the seed and its number alone, as without mixing.

    With `shard` (the nemo trainer; transformers' Accelerate shards batches itself), each of the
    processes of a distributed run takes every world-th batch, repeating some of the first so all
    take as many.
    """

    def __init__(self, durations: Sequence[float], *, batch_seconds: float | None = None,
                 batch_size: int | None = None, buckets: int = DEFAULT_BUCKETS, seed: int = 0, shard: bool = False,
                 sources: Sequence[int] | None = None, weights: Sequence[float] | None = None) -> None:
        longest = max(durations)
        if batch_seconds is not None and longest > batch_seconds:
            raise AsrctlError(f"batch seconds {batch_seconds:g} cannot hold the longest training utterance "
                              f"({longest:.1f} s): raise it, or leave such utterances out with --max-duration")
        if batch_seconds is None and not batch_size:
            raise ValueError("BucketBatches needs batch_seconds or batch_size")
        order = sorted(range(len(durations)), key=lambda i: durations[i])
        count = max(1, min(buckets, len(order)))
        edges = [round(k * len(order) / count) for k in range(count + 1)]
        buckets_ = [order[a:b] for a, b in zip(edges, edges[1:]) if b > a]
        self.sizes = [max(1, min(batch_size or len(bucket), int(batch_seconds // durations[bucket[-1]])))
                      if batch_seconds is not None else int(batch_size) for bucket in buckets_]
        sources = list(sources) if sources is not None else [0] * len(durations)
        weights = list(weights) if weights is not None else [1.0]
        # cells[b][s]: the utterances of source s in bucket b, and how many of them an epoch takes
        self.cells = [[[i for i in bucket if sources[i] == s] for s in range(len(weights))] for bucket in buckets_]
        takes = _shares(len(durations), weights)
        mine = [[len(cell) for cell in bucket] for bucket in self.cells]
        by_source = [_shares(takes[s], [row[s] for row in mine]) for s in range(len(weights))]
        self.takes = [[by_source[s][b] for s in range(len(weights))] for b in range(len(self.cells))]
        self.seed, self.shard, self.epoch = seed, shard, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """This epoch's batches, of every process, in order."""
        rng = random.Random(f"{self.seed}/{self.epoch}")
        batches = []
        for b, (cells, takes, size) in enumerate(zip(self.cells, self.takes, self.sizes)):
            items = [i for s, (cell, take) in enumerate(zip(cells, takes)) for i in self._draw(cell, take, b, s)]
            rng.shuffle(items)
            batches += [items[i:i + size] for i in range(0, len(items), size)]
        rng.shuffle(batches)
        return batches

    def _draw(self, cell: list[int], take: int, bucket: int, source: int) -> list[int]:
        """This epoch's `take` utterances of `cell`: the next ones of an endless run of shuffles of
        it, each shuffle drawn from the seed and its own number."""
        if not take:
            return []
        start = self.epoch * take
        drawn: list[int] = []
        round_ = start // len(cell)
        while len(drawn) < take:
            shuffle = random.Random(f"{self.seed}/{bucket}/{source}/{round_}").sample(cell, len(cell))
            drawn += shuffle[start - round_ * len(cell) if not drawn else 0:]
            round_ += 1
        return drawn[:take]

    def _world(self) -> tuple[int, int]:
        import torch.distributed as dist

        if self.shard and dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        total = sum(math.ceil(sum(takes) / size) for takes, size in zip(self.takes, self.sizes))
        return math.ceil(total / self._world()[1])

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._world()
        batches = self.batches()
        batches += batches[: len(self) * world - len(batches)]  # every process as many batches
        return iter(batches[rank::world])


def _shares(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights`, in whole numbers that add up to it (largest
    remainders first); a weight of zero gets nothing."""
    whole = sum(weights)
    exact = [total * w / whole if whole else 0.0 for w in weights]
    counts = [math.floor(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[: total - sum(counts)]:
        counts[i] += 1
    return counts


def bucketing(training: dict[str, Any], sources: Sequence[int] | None = None,
              weights: Sequence[float] | None = None) -> dict[str, Any] | None:
    """BucketBatches' settings from a recipe's training section where it batches by duration
    (batch_seconds) or mixes several weighted sources (batches of a fixed count then, in one
    bucket; the trainer fills in its batch_size when the recipe has none), else None. By duration,
    the count is capped only where the recipe sets batch_size: a trainer's default count would undo
    the point of batching by duration."""
    mixing = {"sources": list(sources), "weights": list(weights)} if weights and len(weights) > 1 else {}
    if training.get("batch_seconds"):
        return {"batch_seconds": float(training["batch_seconds"]), "batch_size": training.get("batch_size"),
                **({"buckets": int(training["buckets"])} if training.get("buckets") else {}), **mixing}
    if mixing:
        return {"batch_seconds": None, "batch_size": training.get("batch_size"), "buckets": 1, **mixing}
    return None
