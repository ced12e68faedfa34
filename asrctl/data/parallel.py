"""Thread pools for I/O-bound work (header probes, file checks), results kept in input order."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WORKERS = min(16, 2 * (os.cpu_count() or 1))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = DEFAULT_WORKERS) -> Iterator[tuple[T, R]]:
    """Yield (item, fn(item)) in input order, running fn in threads.

    At most a few items per worker are in flight, so a stream of millions of items needs memory for
    a window, not the stream. `fn` should return its failures rather than raise them.
    """
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    window = 4 * workers
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= window:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
