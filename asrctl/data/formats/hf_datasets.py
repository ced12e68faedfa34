"""Hugging Face datasets: a `save_to_disk` folder (hf-datasets) or a parquet file (hf-parquet).

Columns: `audio`, a datasets.Audio(sampling_rate=16000, decode=False) column holding the audio the
row means: the absolute path of its file, or, for a segment or a channel of a file, that part cut
out as FLAC bytes (an HF user who decodes `audio` gets the utterance, not the whole recording); no
audio decoding library is needed either way. Then audio_filepath, the manifest path, relative to
the output's folder where possible; then duration, text and every other field. Strings,
integers, floats and booleans become typed columns; lists, objects and fields with values of mixed
types become datasets.Json columns, so they read back as they were written. A column cannot tell a
missing field from a null: both read back as missing.

`save_to_disk` copies the audio bytes into the folder (what datasets does), so the folder loads on
any machine; parquet keeps paths (and the bytes of cut clips).

Reading: a row's own `audio_filepath` is used where that file exists (its offset and channel apply).
Otherwise embedded bytes win, whatever the Audio value's path says: they are unpacked into
--extract-to, and as they are the row's audio already, its offset and channel are kept as
`source_audio_offset` and `source_audio_channel`. An Audio value without bytes names a file, taken
(as datasets opens it) against the working folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter, atomic_dir
from asrctl.data.clips import clip_flac, clip_suffix, is_part
from asrctl.data.formats import Spool, need
from asrctl.data.paths import AUDIO_KEY, absolute_path
from asrctl.data.rows import ErrorSink, LineError
from asrctl.errors import AsrctlError, AudioError
from asrctl.scratch import scratch_folder
from asrctl.specs import SAMPLE_RATE

AUDIO_COLUMN = "audio"
BATCH_ROWS = 1000
# Value kinds met in a field -> its Arrow type; anything else is a Json column.
VALUE_TYPES = {
    frozenset({"str"}): "string",
    frozenset({"int"}): "int64",
    frozenset({"float"}): "float64",
    frozenset({"int", "float"}): "float64",
    frozenset({"bool"}): "bool",
    frozenset(): "string",  # only nulls
}


def write_folder(records: Iterable[dict], path: Path, *, on_error: ErrorSink | None = None) -> int:
    with _dataset(records, path, "hf-datasets", on_error) as dataset, atomic_dir(path) as tmp:
        dataset.save_to_disk(str(tmp))
    return len(dataset)


def write_parquet(records: Iterable[dict], path: Path, *, on_error: ErrorSink | None = None) -> int:
    with _dataset(records, path, "hf-parquet", on_error) as dataset, AtomicWriter(path, "wb") as f:
        dataset.to_parquet(f)
    return len(dataset)


@contextmanager
def _dataset(records: Iterable[dict], path: Path, fmt: str, on_error: ErrorSink | None) -> Iterator[Any]:
    """A datasets.Dataset of the records, built in a temporary cache beside `path`; rows whose clip
    cannot be cut go to on_error."""
    datasets = need("datasets", fmt)
    datasets.disable_progress_bars()
    base = path.absolute().parent
    with Spool(records, near=path) as spool, scratch_folder(path, ".cache") as cache, \
            scratch_folder(path, ".failed") as failed:
        if AUDIO_COLUMN in spool.kinds:
            raise AsrctlError(f"format {fmt} keeps the audio in an {AUDIO_COLUMN!r} column; the records already "
                              f"have a field of that name: rename it first")
        # Audio's own encoder wants torchcodec: generate its storage struct, then cast (no decoding).
        features = datasets.Features({
            AUDIO_COLUMN: {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
            **{key: _feature(datasets, kinds) for key, kinds in spool.kinds.items()},
        })
        dataset = datasets.Dataset.from_generator(
            _rows, features=features, cache_dir=cache,
            # a list in gen_kwargs would be split into shards by datasets: pass a tuple
            gen_kwargs={"spool": str(spool.path), "columns": tuple(spool.kinds), "base": str(base),
                        "failed": str(failed / "rows.jsonl")},
        )
        failures = failed / "rows.jsonl"
        if on_error and failures.is_file():  # datasets runs the generator: its reports come back in a file
            for line in failures.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                on_error(LineError(str(path), entry["row"], entry["reason"]))
        yield dataset.cast_column(AUDIO_COLUMN, datasets.Audio(sampling_rate=SAMPLE_RATE, decode=False))


def _feature(datasets: Any, kinds: set[str]) -> Any:
    value_type = VALUE_TYPES.get(frozenset(kinds - {"null"}))
    return datasets.Value(value_type) if value_type else datasets.Json()


def _rows(spool: str, columns: tuple[str, ...], base: str, failed: str) -> Iterator[dict]:
    with open(spool, encoding="utf-8") as f, open(failed, "a", encoding="utf-8") as failures:
        for number, line in enumerate(f, start=1):
            record = json.loads(line)
            file = absolute_path(record[AUDIO_KEY], base)
            try:
                audio = _audio_value({**record, AUDIO_KEY: file})
            except AudioError as exc:
                failures.write(json.dumps({"row": number, "reason": str(exc)}) + "\n")
                continue
            yield {AUDIO_COLUMN: audio, **{c: record.get(c) for c in columns}}


def _audio_value(record: dict) -> dict:
    """The Audio column's value: the file, or the clip of the part of it the row means."""
    file = record[AUDIO_KEY]
    if not is_part(record):
        if not os.path.isfile(file):  # save_to_disk would stop the whole job on it
            raise AudioError(f"{file}: no such file")
        return {"bytes": None, "path": file}
    stem = os.path.splitext(os.path.basename(file))[0]
    return {"bytes": clip_flac(record), "path": f"{stem}{clip_suffix(record)}.flac"}


def read_folder(path: Path, on_error: ErrorSink, *, extract_to: Path | None = None,
                audio: bool = True) -> Iterator[dict]:
    datasets = need("datasets", "hf-datasets")
    dataset = datasets.load_from_disk(str(path))
    if not isinstance(dataset, datasets.Dataset):
        splits = list(dataset)
        raise AsrctlError(f"{path}: a DatasetDict with splits {splits}: give one split's folder "
                          f"({path / splits[0]})" if splits else f"{path}: a DatasetDict without splits")
    audio_columns = [name for name, f in dataset.features.items() if isinstance(f, datasets.Audio)]
    json_columns = [name for name, f in dataset.features.items() if isinstance(f, datasets.Json)]
    for name in audio_columns:
        dataset = dataset.cast_column(name, datasets.Audio(decode=False))
    for name in json_columns:
        dataset = dataset.cast_column(name, datasets.Json(decode=False))
    batches = (_json_decoded(batch, json_columns) for batch in dataset.iter(batch_size=BATCH_ROWS))
    yield from _records(path, batches, audio_columns, on_error, extract_to, audio)


def read_parquet(path: Path, on_error: ErrorSink, *, extract_to: Path | None = None,
                 audio: bool = True) -> Iterator[dict]:
    datasets = need("datasets", "hf-parquet")
    parquet = need("pyarrow.parquet", "hf-parquet")
    source = parquet.ParquetFile(path)
    features = datasets.Features.from_arrow_schema(source.schema_arrow)
    audio_columns = [name for name, f in features.items() if isinstance(f, datasets.Audio)]
    json_columns = [name for name, f in features.items() if isinstance(f, datasets.Json)]
    for name in audio_columns:
        features[name] = datasets.Audio(decode=False)
    for name in json_columns:
        features[name] = datasets.Json(decode=False)
    batches = (_json_decoded(features.decode_batch(b.to_pydict()), json_columns)
               for b in source.iter_batches(batch_size=BATCH_ROWS))
    yield from _records(path, batches, audio_columns, on_error, extract_to, audio)


def _json_decoded(batch: dict[str, list], columns: list[str]) -> dict[str, list]:
    """Json columns parsed by the standard library: datasets' ujson rounds floats (1.66 -> 1.6600000000000001)."""
    for name in columns:
        batch[name] = [json.loads(v) if isinstance(v, (str, bytes)) else v for v in batch[name]]
    return batch


def _records(path: Path, batches: Iterable[dict[str, list]], audio_columns: list[str],
             on_error: ErrorSink, extract_to: Path | None, audio: bool) -> Iterator[dict]:
    base = path.absolute().parent  # where the records' relative paths start (the manifest convention)
    number = 0
    for batch in batches:
        names = list(batch)
        for values in zip(*batch.values()):
            number += 1
            record = {k: v for k, v in zip(names, values) if v is not None}
            stored = [record.pop(name) for name in audio_columns if name in record]
            if not audio:  # only counted: the row's own path, or a placeholder, is enough
                yield {AUDIO_KEY: f"row-{number}", **record}
                continue
            own = record.get(AUDIO_KEY)
            if own is not None and os.path.isfile(absolute_path(own, base)):
                yield record
            elif stored and stored[0].get("bytes"):
                yield _unpacked(path, number, stored[0], record, extract_to)
            elif stored and stored[0].get("path"):
                yield {**record, AUDIO_KEY: os.path.abspath(stored[0]["path"])}
            elif own is not None:
                yield record  # a missing file, reported as such where the row is used
            else:
                on_error(LineError(str(path), number, f"no {AUDIO_KEY} and no audio"))


def _unpacked(path: Path, number: int, stored: dict, record: dict, extract_to: Path | None) -> dict:
    """The row pointing at its embedded audio, unpacked; the offset and channel it had are applied already."""
    if extract_to is None:
        raise AsrctlError(f"{path}: the audio is embedded in the dataset: give --extract-to DIR to unpack it")
    target = extract_to / f"{number:09d}-{os.path.basename(stored.get('path') or '') or 'audio'}"
    with AtomicWriter(target, "wb") as f:
        f.write(stored["bytes"])
    moved = {f"source_audio_{key}": record.pop(key) for key in ("offset", "channel") if key in record}
    return {**record, **moved, AUDIO_KEY: str(target.absolute())}


def detect_folder(path: Path) -> bool:
    # A DatasetDict folder too, so that reading it can say which split folders it holds.
    return (path / "dataset_info.json").is_file() and (path / "state.json").is_file() or \
        (path / "dataset_dict.json").is_file()


def detect_parquet(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".parquet"
