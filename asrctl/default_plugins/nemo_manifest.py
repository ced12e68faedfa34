"""The native format: NeMo JSONL manifests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from asrctl.data.rows import LineError, ManifestReader, write_manifest
from asrctl.hookspecs import hookimpl
from asrctl.specs import FormatSpec


def read(path: Path, on_error: Callable[[LineError], None]) -> Iterator[dict]:
    for row in ManifestReader(path, on_error=on_error):
        yield row.record


def write(records: Iterable[dict], path: Path) -> int:
    return write_manifest(path, records)


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix in (".json", ".jsonl")


@hookimpl
def register_formats(register) -> None:
    register(
        FormatSpec(
            name="nemo",
            description="NeMo JSONL manifest: one JSON object per line (audio_filepath, duration, text, ...)",
            read=read,
            write=write,
            detect=detect,
        )
    )
