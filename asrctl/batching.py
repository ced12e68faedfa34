"""Group utterances into batches: longest first, bounded by count and by padded audio seconds."""

from __future__ import annotations

from collections.abc import Sequence


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
