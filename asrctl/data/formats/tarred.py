"""Tarred datasets as formats: NeMo tarred audio datasets and WebDataset shards.

Writing goes through `manifest shard`'s code (asrctl.data.formats.shards) with one shard per
ROWS_PER_SHARD rows; `asrctl manifest shard` gives control over shards and buckets. Reading takes a
dataset folder (bucket*/ folders included) or its manifest/tar file. With audio wanted, members are
unpacked into `extract_to` (safely: see asrctl.data.formats.safe_tar), one folder per tar; without,
records name their tar members, which is enough for durations and text.
"""

from __future__ import annotations

import json
import math
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from asrctl.data.formats.safe_tar import UnsafeMember, extract_member, member_problem
from asrctl.data.formats.shards import TARRED_MANIFEST, Item, with_durations, write_shards
from asrctl.data.inputs import AUDIO_EXTENSIONS
from asrctl.data.parallel import DEFAULT_WORKERS
from asrctl.data.paths import AUDIO_KEY, resolve_record
from asrctl.data.rows import ErrorSink, LineError, ManifestReader
from asrctl.errors import AsrctlError

ROWS_PER_SHARD = 1000
_SUB = re.compile(r"^(.*)-sub\d+(\.[^./]*)?$")  # NeMo's NAME-subN.ext names the member NAME.ext



def write_nemo_tarred(records: Iterable[dict], path: Path, *, on_error: ErrorSink | None = None) -> int:
    return _write(records, path, "nemo-tarred", on_error)


def write_webdataset(records: Iterable[dict], path: Path, *, on_error: ErrorSink | None = None) -> int:
    return _write(records, path, "webdataset", on_error)


def _write(records: Iterable[dict], path: Path, fmt: str, on_error: ErrorSink | None) -> int:
    sink = on_error or (lambda error: None)
    base = path.absolute().parent
    items = [Item(resolve_record(r, base), str(path), n) for n, r in enumerate(records, start=1)]
    items = with_durations(items, sink, DEFAULT_WORKERS)
    shards = max(1, math.ceil(len(items) / ROWS_PER_SHARD))
    return write_shards(items, path, num_shards=shards, fmt=fmt, on_error=sink).rows


def _needs_extract_to(path: Path, fmt: str) -> AsrctlError:
    return AsrctlError(f"{path}: {fmt} keeps its audio inside tar files: give --extract-to DIR to unpack it")


def read_nemo_tarred(path: Path, on_error: ErrorSink, *, extract_to: Path | None = None,
                     audio: bool = True) -> Iterator[dict]:
    manifests = _tarred_manifests(path)
    if not manifests:
        raise AsrctlError(f"{path}: no {TARRED_MANIFEST} here or in bucket*/ folders")
    if audio and extract_to is None:
        raise _needs_extract_to(path, "nemo-tarred")
    root = path if path.is_dir() else path.parent
    for manifest in manifests:
        unpacked: dict[object, dict[str, Path]] = {}
        for row in ManifestReader(manifest, on_error=on_error):
            record = row.record
            if not audio:
                yield record
                continue
            shard = record.get("shard_id")
            if shard not in unpacked:
                tar = manifest.parent / f"audio_{shard}.tar"
                unpacked[shard] = _unpack(tar, extract_to / manifest.parent.relative_to(root) / tar.stem, on_error)
            member = _SUB.sub(r"\1\2", record[AUDIO_KEY])
            file = unpacked[shard].get(member)
            if file is None:
                on_error(LineError(str(manifest), row.line, f"{member} is not in audio_{shard}.tar"))
                continue
            yield {AUDIO_KEY: str(file), **{k: v for k, v in record.items() if k not in (AUDIO_KEY, "shard_id")}}


def _tarred_manifests(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    top = path / TARRED_MANIFEST
    return [top] if top.is_file() else sorted(path.glob(f"bucket*/{TARRED_MANIFEST}"), key=_natural)


def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def _unpack(tar_path: Path, target: Path, on_error: ErrorSink) -> dict[str, Path]:
    """Every safe regular file of a tar unpacked under target: member name -> file."""
    files: dict[str, Path] = {}
    try:
        with tarfile.open(tar_path) as tar:
            for number, member in enumerate(tar, start=1):
                if member.isdir():
                    continue
                try:
                    files[member.name] = extract_member(tar, member, target)
                except UnsafeMember as exc:
                    on_error(LineError(str(tar_path), number, f"member refused: {exc}"))
    except (OSError, tarfile.TarError) as exc:
        on_error(LineError(str(tar_path), 0, f"cannot read the tar file: {exc}"))
    return files


def read_webdataset(path: Path, on_error: ErrorSink, *, extract_to: Path | None = None,
                    audio: bool = True) -> Iterator[dict]:
    tars = [path] if path.is_file() else sorted(path.rglob("*.tar"), key=_natural)
    if not tars:
        raise AsrctlError(f"{path}: no .tar shards here")
    if audio and extract_to is None:
        raise _needs_extract_to(path, "webdataset")
    root = path.parent if path.is_file() else path
    for tar_path in tars:
        target = extract_to / tar_path.relative_to(root).with_suffix("") if audio and extract_to else None
        try:
            with tarfile.open(tar_path) as tar:
                yield from _samples(tar, tar_path, target, on_error)
        except (OSError, tarfile.TarError) as exc:
            on_error(LineError(str(tar_path), 0, f"cannot read the tar file: {exc}"))


def _samples(tar: tarfile.TarFile, tar_path: Path, target: Path | None, on_error: ErrorSink) -> Iterator[dict]:
    """WebDataset samples: consecutive members sharing a key (the name up to the first dot of its last part)."""
    sample: _Sample | None = None
    for number, member in enumerate(tar, start=1):
        if member.isdir():
            continue
        problem = member_problem(member)
        if problem:
            on_error(LineError(str(tar_path), number, f"member refused: {problem}"))
            continue
        folder, _, name = member.name.rpartition("/")
        key = f"{folder}/{name.split('.', 1)[0]}" if folder else name.split(".", 1)[0]
        if sample is None or sample.key != key:
            if sample is not None:
                yield from sample.record(tar_path, on_error)
            sample = _Sample(key, number)
        try:
            sample.add(tar, member, target)
        except (UnsafeMember, ValueError) as exc:
            on_error(LineError(str(tar_path), number, f"{member.name}: {exc}"))
    if sample is not None:
        yield from sample.record(tar_path, on_error)


# Member extensions (after the key's first dot) by what they hold, as webdataset's decoders name them.
TEXT_EXTENSIONS = frozenset({"txt", "text", "transcript"})


class _Sample:
    """One WebDataset sample: `.json` fields, a transcript (`.txt`, `.text`, `.transcript`) and an
    audio member; other members (features, images) are not rows' business and are passed over."""

    def __init__(self, key: str, number: int) -> None:
        self.key = key
        self.number = number
        self.fields: dict = {}
        self.text: str | None = None
        self.audio: str | None = None

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path | None) -> None:
        extension = member.name.rpartition("/")[2].split(".", 1)[1].lower() if "." in member.name else ""
        last = extension.rpartition(".")[2]
        if extension == "json":
            fields = json.load(_read(tar, member))
            if not isinstance(fields, dict):
                raise ValueError("expected a JSON object")
            self.fields = fields
        elif last in TEXT_EXTENSIONS:
            self.text = _read(tar, member).read().decode("utf-8").strip()
        elif last in AUDIO_EXTENSIONS and self.audio is None:
            self.audio = str(extract_member(tar, member, target)) if target is not None else member.name

    def record(self, tar_path: Path, on_error: ErrorSink) -> Iterator[dict]:
        if self.audio is None:
            on_error(LineError(str(tar_path), self.number, f"sample {self.key}: no audio member"))
            return
        fields = {k: v for k, v in self.fields.items() if k != AUDIO_KEY}
        if self.text is not None and fields.get("text") is None:
            fields["text"] = self.text
        yield {AUDIO_KEY: self.audio, **fields}


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo):
    source = tar.extractfile(member)
    assert source is not None  # members are regular files (member_problem refused the rest)
    return source


def detect_nemo_tarred(path: Path) -> bool:
    if path.is_file():
        return path.name.startswith("tarred_audio_manifest") and path.suffix == ".json"
    return path.is_dir() and bool(_tarred_manifests(path))


def detect_webdataset(path: Path) -> bool:
    if path.is_file():
        return path.suffix == ".tar"
    return path.is_dir() and not _tarred_manifests(path) and any(path.rglob("*.tar"))
