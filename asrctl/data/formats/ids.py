"""Utterance and recording ids for formats that key rows by id (Kaldi, Lhotse).

An id is the file's stem, made safe, plus a 64-bit digest of the resolved path (and offset), and the
channel where the row has one: the same row gets the same id on every run, and two files named
alike in different folders differ.
A speaker, when known, leads the utterance id, so sorting by id groups speakers as Kaldi wants.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import PurePath

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_") or "x"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def recording_id(path: str) -> str:
    """A name for a file's recording that is safe in paths and tells files of the same stem apart."""
    return f"{safe(PurePath(path).stem)}-{_digest(path)}"


def utterance_id(path: str, offset: float | None = None, speaker: str | None = None,
                 channel: int | None = None) -> str:
    stem = safe(PurePath(path).stem)
    lead = f"{safe(speaker)}-" if speaker else ""
    tail = f"-ch{channel}" if channel is not None else ""
    return f"{lead}{stem}-{_digest(f'{path}@{float(offset or 0)!r}')}{tail}"


def unique(ids: Iterable[str]) -> Iterator[str]:
    """The ids, with repeats (the same row twice) numbered -2, -3, ... in order."""
    seen: dict[str, int] = {}
    for id_ in ids:
        count = seen.get(id_, 0) + 1
        seen[id_] = count
        yield id_ if count == 1 else f"{id_}-{count}"
