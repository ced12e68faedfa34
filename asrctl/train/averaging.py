"""The average of the last checkpoints' weights (`--average-last N`), for every trainer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def average_weights(states: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The mean of each floating-point tensor over `states` (checkpoints' weights, taken one at a
    time so only one is in memory beside the sum), in its own dtype; other tensors (counters,
    integer buffers) as in the last."""
    import torch

    total: dict[str, Any] = {}
    dtypes: dict[str, Any] = {}
    count = 0
    for state in states:
        if count and set(state) != set(total):
            raise ValueError(f"checkpoint {count + 1} holds other weights than the first: "
                             f"{sorted(set(state) ^ set(total))[:5]}")
        for key, value in state.items():
            if not value.is_floating_point():
                total[key] = value
            elif count:
                total[key] += value.to(torch.float32)
            else:
                dtypes[key], total[key] = value.dtype, value.to(torch.float32, copy=True)
        count += 1
    if count < 2:
        raise ValueError(f"an average takes at least 2 checkpoints, got {count}")
    return {key: (value / count).to(dtypes[key]) if key in dtypes else value for key, value in total.items()}
