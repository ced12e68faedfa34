"""Hugging Face datasets: a `save_to_disk` folder (hf-datasets) or a parquet file (hf-parquet).

Columns: `audio`, a datasets.Audio(sampling_rate=16000, decode=False) column holding the absolute
path (no audio decoding library is needed either way); audio_filepath, the manifest path, relative
to the output's folder where possible; then duration, text and every other field. Strings,
integers, floats and booleans become typed columns; lists, objects and fields with values of mixed
types become datasets.Json columns, so they read back as they were written. A column cannot tell a
missing field from a null: both read back as missing.

`save_to_disk` copies the audio bytes into the folder (what datasets does), so the folder loads on
any machine; parquet keeps paths only. Datasets that hold only embedded audio are unpacked into
--extract-to when read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from asrctl.paths import absolute_path
from asrctl.errors import AsrctlError
from asrctl.formats import Spool, atomic_dir, need
from asrctl.manifest import AUDIO_KEY, AtomicWriter, LineError
from asrctl.scratch import scratch_folder

AUDIO_COLUMN = "audio"
SAMPLING_RATE = 16000
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


def write_folder(records: Iterable[dict], path: Path) -> int:
    with _dataset(records, path, "hf-datasets") as (dataset, count), atomic_dir(path) as tmp:
        dataset.save_to_disk(str(tmp))
    return count


def write_parquet(records: Iterable[dict], path: Path) -> int:
    with _dataset(records, path, "hf-parquet") as (dataset, count), AtomicWriter(path, "wb") as f:
        dataset.to_parquet(f)
    return count


@contextmanager
def _dataset(records: Iterable[dict], path: Path, fmt: str) -> Iterator[tuple[Any, int]]:
    """A datasets.Dataset of the records, built in a temporary cache beside `path`."""
    datasets = need("datasets", fmt)
    datasets.disable_progress_bars()
    base = path.absolute().parent
    with Spool(records, near=path) as spool, scratch_folder(path, ".cache") as cache:
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
            gen_kwargs={"spool": str(spool.path), "columns": tuple(spool.kinds), "base": str(base)},
        )
        yield dataset.cast_column(AUDIO_COLUMN, datasets.Audio(sampling_rate=SAMPLING_RATE, decode=False)), spool.count


def _feature(datasets: Any, kinds: set[str]) -> Any:
    value_type = VALUE_TYPES.get(frozenset(kinds - {"null"}))
    return datasets.Value(value_type) if value_type else datasets.Json()


def _rows(spool: str, columns: tuple[str, ...], base: str) -> Iterator[dict]:
    import json

    with open(spool, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            audio = {"bytes": None, "path": absolute_path(record[AUDIO_KEY], base)}
            yield {AUDIO_COLUMN: audio, **{c: record.get(c) for c in columns}}


def read_folder(path: Path, on_error: Callable[[LineError], None], *, extract_to: Path | None = None,
                audio: bool = True) -> Iterator[dict]:
    datasets = need("datasets", "hf-datasets")
    dataset = datasets.load_from_disk(str(path))
    if not isinstance(dataset, datasets.Dataset):
        raise AsrctlError(f"{path}: a DatasetDict with splits {list(dataset)}: give one split's folder")
    audio_columns = [name for name, f in dataset.features.items() if isinstance(f, datasets.Audio)]
    for name in audio_columns:
        dataset = dataset.cast_column(name, datasets.Audio(decode=False))
    yield from _records(path, dataset.iter(batch_size=BATCH_ROWS), audio_columns, on_error, extract_to, audio)


def read_parquet(path: Path, on_error: Callable[[LineError], None], *, extract_to: Path | None = None,
                 audio: bool = True) -> Iterator[dict]:
    datasets = need("datasets", "hf-parquet")
    parquet = need("pyarrow.parquet", "hf-parquet")
    source = parquet.ParquetFile(path)
    features = datasets.Features.from_arrow_schema(source.schema_arrow)
    audio_columns = [name for name, f in features.items() if isinstance(f, datasets.Audio)]
    for name in audio_columns:
        features[name] = datasets.Audio(decode=False)
    batches = (features.decode_batch(b.to_pydict()) for b in source.iter_batches(batch_size=BATCH_ROWS))
    yield from _records(path, batches, audio_columns, on_error, extract_to, audio)


def _records(path: Path, batches: Iterable[dict[str, list]], audio_columns: list[str],
             on_error: Callable[[LineError], None], extract_to: Path | None, audio: bool) -> Iterator[dict]:
    number = 0
    for batch in batches:
        names = list(batch)
        for values in zip(*batch.values()):
            number += 1
            record = {k: v for k, v in zip(names, values) if v is not None}
            stored = [record.pop(name) for name in audio_columns if name in record]
            if AUDIO_KEY not in record:
                if not stored:
                    on_error(LineError(str(path), number, f"no {AUDIO_KEY} and no audio"))
                    continue
                record = {AUDIO_KEY: _audio_file(path, number, stored[0], extract_to, audio), **record}
            yield record


def _audio_file(path: Path, number: int, stored: dict, extract_to: Path | None, audio: bool) -> str:
    """A file for an Audio value: its path when that file exists, else its bytes unpacked."""
    name = stored.get("path") or ""
    if not audio:
        return name or f"row-{number}"  # only counted: a placeholder is enough
    if not stored.get("bytes") or (name and os.path.isfile(name)):
        return name
    if extract_to is None:
        raise AsrctlError(f"{path}: the audio is embedded in the dataset: give --extract-to DIR to unpack it")
    target = extract_to / f"{number:09d}-{os.path.basename(name) or 'audio'}"
    with AtomicWriter(target, "wb") as f:
        f.write(stored["bytes"])
    return str(target.absolute())


def detect_folder(path: Path) -> bool:
    return (path / "dataset_info.json").is_file() and (path / "state.json").is_file()


def detect_parquet(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".parquet"
