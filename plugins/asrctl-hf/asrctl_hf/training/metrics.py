"""Validation WER for the Trainer's compute_metrics, scored as `asrctl eval` scores (corpus WER, normalised)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from asrctl.api import edit_counts, get_normalizer, totals
from asrctl_hf.training.collator import IGNORE


class ValidationWER:
    """Corpus WER of predicted ids against the validation transcripts, which come in dataset order."""

    def __init__(self, references: list[str], decode: Callable[[np.ndarray], list[str]], pad_id: int,
                 normalizer: str) -> None:
        self.normalize = get_normalizer(normalizer)
        self.references = [self.normalize(text) for text in references]
        self.decode = decode
        self.pad_id = pad_id

    def __call__(self, prediction) -> dict[str, float]:  # transformers.EvalPrediction
        ids = np.where(prediction.predictions == IGNORE, self.pad_id, prediction.predictions)  # padding between batches
        hypotheses = [self.normalize(text) for text in self.decode(ids)]
        return {"wer": totals(edit_counts(self.references, hypotheses)).rate}
