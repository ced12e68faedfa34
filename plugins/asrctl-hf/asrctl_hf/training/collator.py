"""Batches: model inputs padded by the feature extractor, labels padded with -100 (ignored by the losses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

IGNORE = -100


@dataclass
class SpeechCollator:
    feature_extractor: Any

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        items = [dict(item) for item in items]
        labels = [item.pop("labels") for item in items]
        extra = {key: torch.tensor([item.pop(key) for item in items]) for key in ("input_lengths",) if key in items[0]}
        batch = self.feature_extractor.pad(items, return_tensors="pt")
        padded = torch.full((len(labels), max(map(len, labels))), IGNORE, dtype=torch.long)
        for row, ids in zip(padded, labels):
            row[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        return {**batch, **extra, "labels": padded}
