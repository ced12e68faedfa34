"""Training data: rows from any registered format, kept or dropped (with the reason), decoded on the fly.

Rows are read through asrctl's format registry (NeMo JSONL, or whatever `asrctl manifest convert`
reads), so TRAIN and VAL may be any of them. Audio is decoded and resampled by asrctl.data.audio in the
Dataset's __getitem__, that is in DataLoader worker processes while the model trains.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from asrctl import AsrctlError, AudioError
from asrctl.api import AUDIO_KEY, load_audio, training_rows


@dataclass(frozen=True)
class Utterance:
    audio: str  # absolute path
    text: str
    labels: list[int]
    duration: float
    offset: float = 0.0
    segment: bool = False  # a part of the file (offset/duration), as NeMo manifests allow
    channel: int | None = None  # one channel of a multi-channel file; None: all averaged


@dataclass
class Split:
    """The utterances of one data file that the model can learn from, and what was left out, by reason."""

    path: str
    utterances: list[Utterance] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # unreadable records, "FILE:LINE: reason"

    @property
    def hours(self) -> float:
        return sum(u.duration for u in self.utterances) / 3600

    def report(self) -> dict[str, Any]:
        return {"file": self.path, "rows": len(self.utterances), "hours": round(self.hours, 4),
                "dropped": sum(self.dropped.values()), "dropped_by_reason": dict(self.dropped)}


def select(path: str, records: Iterable[dict[str, Any]], errors: list[str], *, labels: Callable[[str], list[int]],
           unfit: Callable[[float, list[int]], str | None], min_duration: float | None,
           max_duration: float | None) -> Split:
    """The records a model can learn from, as Utterances; the others counted by reason."""
    split = Split(path, errors=errors)
    split.dropped.update({"unreadable record": len(errors)} if errors else {})
    rows, dropped = training_rows(records, min_duration=min_duration, max_duration=max_duration)
    split.dropped.update(dropped)
    for record in rows:
        text, offset = record["text"].strip(), record.get("offset")
        ids = labels(text)
        reason = unfit(record["duration"], ids)  # what this model cannot take: labels longer than its frames, ...
        if reason:
            split.dropped[reason] += 1
        else:
            split.utterances.append(Utterance(record[AUDIO_KEY], text, ids, record["duration"], float(offset or 0.0),
                                              segment=offset is not None, channel=record.get("channel")))
    return split


class SpeechDataset(torch.utils.data.Dataset):
    """Utterances decoded to the model's inputs on access, through `augment` where given (training
    only); `lengths` (seconds) group batches by length."""

    def __init__(self, utterances: list[Utterance], features: Callable[[Any], dict[str, Any]],
                 augment: Callable[[Any], Any] | None = None) -> None:
        self.utterances = utterances
        self.features = features
        self.augment = augment

    @property
    def lengths(self) -> list[float]:
        return [u.duration for u in self.utterances]

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict[str, Any]:
        u = self.utterances[index]
        segment = {"offset": u.offset, "duration": u.duration} if u.segment else {}
        try:
            audio = load_audio(u.audio, **segment, channel=u.channel)
        except AudioError as exc:  # probed fine, failed to decode: nothing sensible to train on instead
            raise AsrctlError(f"{exc} (remove it from the training data)") from exc
        if self.augment is not None:
            audio = self.augment(audio)
        return {**self.features(audio), "labels": u.labels}
