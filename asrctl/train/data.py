"""The training data every trainer reads: the records of TRAIN and VAL in any registered format, and
the row rules every trainer applies (a transcript, a readable file, the duration range)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from asrctl.data.paths import AUDIO_KEY
from asrctl.data.probing import probed_duration
from asrctl.data.records import detect_format, get_format, optional_kwargs, read_records
from asrctl.errors import AsrctlError, AudioError
from asrctl.plugins import formats


def read_training_rows(path: str, data_format: str | None, unpack_to: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of a training or validation file in any registered format (audio paths absolute),
    and the unreadable ones as "FILE:LINE: reason": what trainers read TRAIN and VAL with.

    Formats that keep audio inside archives (tarred shards) unpack it into `unpack_to` first.
    """
    source = Path(path)
    if not source.exists():
        raise AsrctlError(f"{path}: no such file or folder")
    if data_format is None:
        try:
            data_format = detect_format(source).name
        except AsrctlError:  # none or several formats claim it
            names = ", ".join(formats().names())
            raise AsrctlError(f"{path}: cannot tell its data format; pass --data-format (one of: {names})") from None
    unpack = optional_kwargs(get_format(data_format).read, extract_to=unpack_to)
    errors: list[str] = []
    _, records = read_records(source, data_format, lambda error: errors.append(str(error)), **unpack)
    return list(records), errors


def training_rows(records: Iterable[dict[str, Any]], *, min_duration: float | None = None,
                  max_duration: float | None = None) -> tuple[list[dict[str, Any]], Counter]:
    """The rows a trainer can learn from, each with its duration, and the others counted by reason
    ("no transcript", "shorter than 1 s", ...): the row rules every trainer applies. A row without a
    duration lasts its file's length less its offset (read_training_rows has set it already)."""
    kept: list[dict[str, Any]] = []
    dropped: Counter = Counter()
    for record in records:
        reason, row = _training_row(record, min_duration, max_duration)
        if row is None:
            dropped[reason] += 1
        else:
            kept.append(row)
    return kept, dropped


def _training_row(record: dict[str, Any], min_duration: float | None,
                  max_duration: float | None) -> tuple[str, dict[str, Any] | None]:
    if not (record.get("text") or "").strip():
        return "no transcript", None
    if not os.path.isfile(record[AUDIO_KEY]):
        return "audio file missing", None
    duration = record.get("duration")
    if duration is None:
        duration = probed_duration(record)
        if isinstance(duration, AudioError):
            return "unreadable audio", None
    if min_duration is not None and duration < min_duration:
        return f"shorter than {min_duration:g} s", None
    if max_duration is not None and duration > max_duration:
        return f"longer than {max_duration:g} s", None
    return "", {**record, "duration": float(duration)}
