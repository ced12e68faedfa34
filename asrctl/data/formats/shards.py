"""`manifest shard`: NeMo tarred audio datasets and WebDataset shards, written shard by shard.

nemo-tarred follows NeMo's convert_to_tarred_audio_dataset.py: `audio_0.tar` ... plus
`tarred_audio_manifest.json`, whose rows name their member (`audio_filepath`) and `shard_id`;
member names are the audio path (relative to the files' common folder) with `/` and `.` squashed
to `_`; a file used by several rows of a shard is stored once, the later rows naming it `NAME-subN.ext`;
rows with an offset or a channel are cut out and stored as mono FLAC (asrctl.data.clips), their offset and
channel kept as `source_audio_offset` and `source_audio_channel`.
Shards differ in size by at most one row (NeMo drops the remainder instead).
webdataset writes `shard-000000.tar` ... with `KEY.EXT` (the audio) and `KEY.json` (the fields).

Each shard is written to a temporary file and renamed when complete, and `.asrctl-shards.json`
records a fingerprint of each finished shard's rows: a re-run skips shards whose rows are unchanged.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import os
import random
import tarfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter
from asrctl.data.clips import clip_flac, clip_suffix, is_part
from asrctl.data.parallel import ordered_map
from asrctl.data.paths import AUDIO_KEY
from asrctl.data.probing import probe_or_error, probed_duration
from asrctl.data.rows import ErrorSink, LineError, dumps, read_manifest, write_manifest
from asrctl.errors import AsrctlError, AudioError

FORMATS = ("nemo-tarred", "webdataset")
TARRED_MANIFEST = "tarred_audio_manifest.json"
STATE_FILE = ".asrctl-shards.json"

Record = dict[str, Any]


@dataclass(frozen=True)
class Item:
    """A row to shard: its record (absolute audio path, known duration) and where it came from."""

    record: Record
    source: str  # the input file, and the row's line in it, for error lines
    line: int

    def error(self, reason: object) -> LineError:
        return LineError(self.source, self.line, str(reason))


@dataclass(frozen=True)
class Member:
    item: Item
    name: str  # the audio member's name in the tar
    shares: str | None = None  # NeMo's -subN rows: the earlier member of this shard that holds the audio
    clip: bool = False  # stored as a mono FLAC clip (a segment, a channel, or a down-mixed file), not the file

    @property
    def key(self) -> str:  # WebDataset's sample key: the name up to its first dot
        return self.name.split(".", 1)[0]


@dataclass
class ShardReport:
    written: int = 0
    skipped: int = 0
    rows: int = 0
    seconds: float = 0.0
    buckets: list[dict[str, Any]] = field(default_factory=list)


def with_durations(items: list[Item], on_error: ErrorSink, workers: int) -> list[Item]:
    """Items with a duration, probing the files of those without; unreadable ones are reported and dropped."""
    done: list[Item] = []
    for item, duration in ordered_map(_duration_if_needed, items, workers):
        if isinstance(duration, AudioError):
            on_error(item.error(duration))
        elif duration is not None:
            done.append(Item({**item.record, "duration": duration}, item.source, item.line))
        else:
            done.append(item)
    return done


def _duration_if_needed(item: Item) -> float | AudioError | None:
    return None if item.record.get("duration") is not None else probed_duration(item.record)


def write_shards(items: list[Item], out_dir: Path, *, num_shards: int, fmt: str, buckets: int = 1,
                 shuffle: bool = False, seed: int = 0, workers: int = 4, downmix: bool = False, on_error: ErrorSink,
                 advance: Callable[..., None] = lambda n=1: None) -> ShardReport:
    """Write items (all with durations) as `num_shards` shards per duration bucket under out_dir;
    with `downmix`, files of several channels are stored as mono clips (channels averaged)."""
    if fmt not in FORMATS:
        raise AsrctlError(f"unknown shard format {fmt!r}; choose {' or '.join(FORMATS)}")
    items = list(items)
    if shuffle:
        random.Random(seed).shuffle(items)
    root = os.path.commonpath([os.path.dirname(i.record[AUDIO_KEY]) for i in items]) if items else ""
    mixed = _multichannel(items, workers) if downmix else set()
    state = _State(out_dir / STATE_FILE)
    report = ShardReport()
    for folder, bucket in _buckets(items, out_dir, buckets):
        chunks = [c for c in _chunks(bucket, num_shards) if c]
        jobs = [_Job(folder, index, fmt, _members(chunk, root, fmt, mixed)) for index, chunk in enumerate(chunks)]
        with ThreadPoolExecutor(max(1, workers)) as pool:
            results = list(pool.map(lambda job: job.run(state, on_error, advance), jobs))
        if fmt == "nemo-tarred":
            write_manifest(folder / TARRED_MANIFEST, (row for result in results for row in result.rows))
        rows, seconds = sum(r.count for r in results), sum(r.seconds for r in results)
        lengths = [float(i.record["duration"]) for i in bucket]
        report.written += sum(not r.skipped for r in results)
        report.skipped += sum(r.skipped for r in results)
        report.rows += rows
        report.seconds += seconds
        report.buckets.append({"folder": str(folder), "shards": len(jobs), "rows": rows, "hours": seconds / 3600,
                               "min_duration": min(lengths, default=0.0), "max_duration": max(lengths, default=0.0)})
    return report


def _buckets(items: list[Item], out_dir: Path, count: int) -> list[tuple[Path, list[Item]]]:
    """(folder, items) per duration bucket: equal row counts, in `bucketN/` folders; empty ones left out."""
    if count <= 1:
        return [(out_dir, items)]
    durations = sorted(float(i.record["duration"]) for i in items)
    edges = [durations[len(durations) * k // count] for k in range(1, count)] if durations else []
    groups: list[list[Item]] = [[] for _ in range(count)]
    for item in items:
        groups[bisect.bisect_right(edges, float(item.record["duration"]))].append(item)
    return [(out_dir / f"bucket{n}", group) for n, group in enumerate(groups, start=1) if group]


def _chunks(items: list[Item], count: int) -> list[list[Item]]:
    size, extra = divmod(len(items), count)
    bounds = [k * size + min(k, extra) for k in range(count + 1)]
    return [items[bounds[k]:bounds[k + 1]] for k in range(count)]


def _multichannel(items: list[Item], workers: int) -> set[str]:
    """The files of items (without a channel of their own) that hold several channels."""
    files = {i.record[AUDIO_KEY] for i in items if i.record.get("channel") is None}
    return {file for file, info in ordered_map(probe_or_error, sorted(files), workers)
            if not isinstance(info, AudioError) and info.channels > 1}


def _members(chunk: list[Item], root: str, fmt: str, mixed: set[str]) -> list[Member]:
    """Member names for one shard: squashed paths, unique, NeMo's -subN for repeats."""
    members: list[Member] = []
    first: dict[tuple, str] = {}  # what a member holds -> its name
    repeats: dict[str, int] = {}
    taken: set[str] = set()
    for item in chunk:
        record = item.record
        path = record[AUDIO_KEY]
        base, ext = os.path.splitext(os.path.relpath(path, root) if root else path)
        base = (base.replace("/", "_").replace("\\", "_").replace(".", "_").replace("-sub", "_sub").lstrip("_")
                or "audio")
        content: tuple = (path,)
        clip = is_part(record) or path in mixed
        if clip:
            content = (path, record.get("offset"), record.get("duration"), record.get("channel"))
            base, ext = f"{base}{clip_suffix(record)}", ".flac"
        if content in first:  # NeMo names the stored member again; a WebDataset sample needs its own copy
            earlier = first[content]
            repeats[earlier] = repeats.get(earlier, 0) + 1
            stem, suffix = os.path.splitext(earlier)
            members.append(Member(item, f"{stem}-sub{repeats[earlier]}{suffix}",
                                  earlier if fmt == "nemo-tarred" else None, clip))
            continue
        name, n = f"{base}{ext.lower()}", 1
        while name in taken:  # another file squashed to the same name
            n += 1
            name = f"{base}_{n}{ext.lower()}"
        taken.add(name)
        first[content] = name
        members.append(Member(item, name, clip=clip))
    return members


@dataclass
class _Result:
    rows: list[Record]
    count: int
    seconds: float
    skipped: bool


@dataclass
class _Job:
    folder: Path
    index: int
    fmt: str
    members: list[Member]

    @property
    def tar_path(self) -> Path:
        name = f"audio_{self.index}.tar" if self.fmt == "nemo-tarred" else f"shard-{self.index:06d}.tar"
        return self.folder / name

    @property
    def manifest_path(self) -> Path:
        return self.folder / "sharded_manifests" / f"manifest_{self.index}.json"

    def fingerprint(self) -> str:
        plan = [self.fmt, [(m.name, m.shares, m.clip, m.item.record) for m in self.members]]
        return hashlib.sha256(dumps(plan).encode("utf-8")).hexdigest()

    def run(self, state: _State, on_error: ErrorSink, advance: Callable[..., None]) -> _Result:
        fingerprint = self.fingerprint()
        done = state.get(self.tar_path)
        finished = self.tar_path.is_file() and (self.fmt != "nemo-tarred" or self.manifest_path.is_file())
        if done and done["fingerprint"] == fingerprint and finished:
            advance(len(self.members))
            rows = [r.record for r in read_manifest(self.manifest_path)] if self.fmt == "nemo-tarred" else []
            return _Result(rows, done["rows"], done["seconds"], skipped=True)
        rows = self._write(on_error, advance)
        if self.fmt == "nemo-tarred":
            write_manifest(self.manifest_path, rows)
        seconds = sum(float(r["duration"]) for r in rows)
        state.set(self.tar_path, {"fingerprint": fingerprint, "rows": len(rows), "seconds": seconds})
        return _Result(rows, len(rows), seconds, skipped=False)

    def _write(self, on_error: ErrorSink, advance: Callable[..., None]) -> list[Record]:
        rows: list[Record] = []
        failed: set[str] = set()
        with AtomicWriter(self.tar_path, "wb") as f, tarfile.open(fileobj=f, mode="w",
                                                                  format=tarfile.PAX_FORMAT) as tar:
            for member in self.members:
                advance()
                if member.shares is not None:
                    if member.shares in failed:
                        on_error(member.item.error(f"{member.item.record[AUDIO_KEY]}: could not be stored (see above)"))
                        continue
                else:
                    try:
                        _add_audio(tar, member)
                    except (OSError, AudioError) as exc:
                        failed.add(member.name)
                        on_error(member.item.error(exc))
                        continue
                row = _output_record(member, self.index, self.fmt)
                if self.fmt == "webdataset":
                    _add_bytes(tar, f"{member.key}.json", dumps(row).encode("utf-8"))
                rows.append(row)
        return rows


def _add_audio(tar: tarfile.TarFile, member: Member) -> None:
    record = member.item.record
    if not member.clip:
        tar.add(record[AUDIO_KEY], arcname=member.name, recursive=False, filter=_anonymous)
        return
    _add_bytes(tar, member.name, clip_flac(record))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""  # a published dataset need not name its builder's account
    info.mode = 0o644
    return info


def _output_record(member: Member, shard: int, fmt: str) -> Record:
    """The row as the dataset stores it: with member name and shard for NeMo, the fields alone for WebDataset."""
    record = member.item.record
    fields = {k: v for k, v in record.items() if k not in (AUDIO_KEY, "offset", "channel")}
    for key in ("offset", "channel"):  # the clip is that part already
        if record.get(key) is not None:
            fields[f"source_audio_{key}"] = record[key]
    return {AUDIO_KEY: member.name, **fields, "shard_id": shard} if fmt == "nemo-tarred" else fields


class _State:
    """Fingerprints of finished shards, saved atomically after each one (shards finish in threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._data = {}

    def _key(self, tar: Path) -> str:
        return os.path.relpath(tar, self.path.parent)

    def get(self, tar: Path) -> dict[str, Any] | None:
        return self._data.get(self._key(tar))

    def set(self, tar: Path, value: dict[str, Any]) -> None:
        with self._lock:
            self._data[self._key(tar)] = value
            with AtomicWriter(self.path) as f:
                json.dump(self._data, f, indent=1, sort_keys=True)
