"""Audio paths in records: resolve them, re-express them from another folder, compare them.

A relative audio path means "relative to the folder of the file that holds the record". A row that
moves to a file in another folder must have its relative path re-expressed, or it points nowhere.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

AUDIO_KEY = "audio_filepath"  # the field of a record that names its audio file
Record = dict[str, Any]


def absolute_path(value: str, base_dir: str | os.PathLike) -> str:
    """`value` made absolute against base_dir and normalised (symlinks are not followed): `data/../a.wav`
    is `a.wav`. The one rule for what a row's audio path means; in os.path terms, for pathlib costs
    several times more per call, and this runs once per row over manifests of millions.
    """
    path = os.path.expanduser(value)
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base_dir, path))


def portable_path(path: str, out_dir: str | os.PathLike) -> str:
    """Absolute `path` relative to out_dir; as it is where no relative path exists (another drive)."""
    try:
        return os.path.relpath(path, out_dir)
    except ValueError:
        return path


def _with_audio(record: Record, value: str) -> Record:
    return record if record[AUDIO_KEY] == value else {**record, AUDIO_KEY: value}


def resolve_record(record: Record, base_dir: str | os.PathLike) -> Record:
    """The record with an absolute audio path (a copy only when it changes)."""
    return _with_audio(record, absolute_path(record[AUDIO_KEY], base_dir))


def relative_record(record: Record, out_dir: str | os.PathLike) -> Record:
    """The record with its (absolute) audio path relative to out_dir."""
    return _with_audio(record, portable_path(absolute_path(record[AUDIO_KEY], out_dir), out_dir))


class Rebaser:
    """Re-express relative audio paths of rows read in one folder for a file written in another.

    Absolute paths stay absolute: a user who wrote them meant them.
    """

    def __init__(self, out_file: str | os.PathLike) -> None:
        self.out_dir = Path(out_file).resolve().parent

    def __call__(self, record: Record, base_dir: Path) -> Record:
        value = record[AUDIO_KEY]
        if base_dir == self.out_dir or os.path.isabs(os.path.expanduser(value)):
            return record
        return _with_audio(record, portable_path(absolute_path(value, base_dir), self.out_dir))


def audio_key(record: Record, base_dir: str | os.PathLike) -> str:
    """What makes two rows the same utterance: the resolved audio file (symlinks followed), the offset
    and the channel."""
    offset = record.get("offset") or 0
    channel = record.get("channel")
    return (f"{real_path(absolute_path(record[AUDIO_KEY], base_dir))}\0{float(offset)!r}\0"
            f"{'' if channel is None else channel}")


def real_path(path: str) -> str:
    """os.path.realpath of a normalised absolute path, with folders resolved once: a manifest of millions
    of rows names a few thousand folders, and a full realpath costs a system call per path part."""
    if os.path.islink(path):
        return os.path.realpath(path)
    folder, name = os.path.split(path)
    return os.path.join(_real_folder(folder), name)


@lru_cache(maxsize=1 << 16)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)
