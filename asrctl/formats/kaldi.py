"""Kaldi data directories: wav.scp, text, utt2spk, spk2utt, utt2dur, and segments for offset rows.

Utterance ids come from asrctl.formats.ids (speaker first, then the file's stem and a digest of its
path), and every file is sorted by id as Kaldi's tools require, so rows read back in id order.
wav.scp holds absolute paths; relative ones in a data dir made elsewhere are taken, as Kaldi takes
them, against the working folder. Kaldi's files cannot hold other fields, nor what they would
change (a speaker with spaces, text with line breaks): those go to `asrctl_extra.jsonl` beside
them, keyed by utterance id, so that reading the folder back gives the records that were written.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from asrctl.datatools.parallel import ordered_map
from asrctl.paths import resolve_record
from asrctl.datatools.probing import try_probe
from asrctl.errors import AudioError
from asrctl.formats import atomic_dir, ids
from asrctl.manifest import AUDIO_KEY, LineError, dumps

EXTRA_FILE = "asrctl_extra.jsonl"
_ENTRY = re.compile(r"^(\S+)(?:[ \t](.*))?$")


def write(records: Iterable[dict], path: Path, *, on_error: Callable[[LineError], None] | None = None) -> int:
    base = path.absolute().parent
    rows = [resolve_record(r, base) for r in records]
    durations = _durations(rows, path, on_error)
    utts = ids.unique(ids.utterance_id(r[AUDIO_KEY], r.get("offset"), r.get("speaker")) for r in rows)
    entries = sorted(((utt, row, durations[i]) for i, (utt, row) in enumerate(zip(utts, rows)) if i in durations),
                     key=lambda entry: entry[0])
    segmented = any("offset" in row for _, row, _ in entries)
    files: dict[str, list[str]] = {name: [] for name in ("wav.scp", "text", "utt2spk", "utt2dur", "segments", EXTRA_FILE)}
    speakers: dict[str, list[str]] = {}
    recordings: dict[str, str] = {}
    for utt, row, duration in entries:
        view = _kaldi_view(utt, row, duration, segmented)
        speaker = view.get("speaker", utt)
        speakers.setdefault(speaker, []).append(utt)
        files["utt2spk"].append(f"{utt} {speaker}")
        files["utt2dur"].append(f"{utt} {duration!r}")
        if "text" in view:
            files["text"].append(f"{utt} {view['text']}")
        if segmented:
            recording = ids.recording_id(row[AUDIO_KEY])
            recordings[recording] = row[AUDIO_KEY]
            start = view.get("offset", 0.0)
            files["segments"].append(f"{utt} {recording} {start!r} {start + duration!r}")
        else:
            files["wav.scp"].append(f"{utt} {row[AUDIO_KEY]}")
        extra = {k: v for k, v in row.items() if k not in view or view[k] != v}
        if extra:
            files[EXTRA_FILE].append(dumps({"id": utt, "fields": extra}))
    files["wav.scp"] += [f"{rec} {file}" for rec, file in sorted(recordings.items())]
    files["spk2utt"] = [f"{spk} {' '.join(utts)}" for spk, utts in sorted(speakers.items())]
    with atomic_dir(path) as tmp:
        for name, lines in files.items():
            if lines or name in ("wav.scp", "utt2spk", "spk2utt"):
                (tmp / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(entries)


def _durations(rows: list[dict], path: Path, on_error: Callable[[LineError], None] | None) -> dict[int, float]:
    """Row index -> duration, probing the files of rows without one; rows that fail are left out."""
    durations = {i: float(r["duration"]) for i, r in enumerate(rows) if r.get("duration") is not None}
    missing = [i for i in range(len(rows)) if i not in durations]
    for i, info in ordered_map(lambda i: try_probe(rows[i][AUDIO_KEY]), missing):
        if isinstance(info, AudioError):
            if on_error:
                on_error(LineError(str(path), i + 1, str(info)))
        else:
            durations[i] = info.duration - float(rows[i].get("offset") or 0)
    return durations


def _kaldi_view(utt: str, row: dict, duration: float, segmented: bool) -> dict[str, Any]:
    """The record that Kaldi's files will give back for `row` (what `read` rebuilds)."""
    view: dict[str, Any] = {AUDIO_KEY: row[AUDIO_KEY], "duration": duration}
    if "text" in row and isinstance(row["text"], str):
        view["text"] = " ".join(row["text"].splitlines())
    if row.get("speaker") is not None:
        view["speaker"] = ids.safe(str(row["speaker"]))
    if segmented and row.get("offset"):
        view["offset"] = float(row["offset"])
    return view


def read(path: Path, on_error: Callable[[LineError], None]) -> Iterator[dict]:
    tables = {name: _table(path / name, on_error) for name in ("wav.scp", "text", "utt2spk", "utt2dur", "segments")}
    extra = _extra(path / EXTRA_FILE, on_error)
    wav, segments = tables["wav.scp"], tables["segments"]
    for utt, (line, value) in (segments or wav).items():
        where = f"{path / ('segments' if segments else 'wav.scp')}"
        recording, start, end = (value.split() + ["", "", ""])[:3] if segments else (utt, "0", "-1")
        location = wav.get(recording, (0, ""))[1]
        if not location or location.endswith("|"):
            reason = f"recording {recording} is not in wav.scp" if not location else "piped commands are not supported"
            on_error(LineError(where, line, f"{utt}: {reason}"))
            continue
        try:
            record = _record(utt, os.path.abspath(location), float(start), float(end), tables)
        except (ValueError, AudioError) as exc:
            on_error(LineError(where, line, f"{utt}: {exc}"))
            continue
        yield {**record, **extra.get(utt, {})}


def _record(utt: str, location: str, start: float, end: float, tables: dict[str, dict]) -> dict[str, Any]:
    if utt in tables["utt2dur"]:
        duration = float(tables["utt2dur"][utt][1])
    elif end > start:
        duration = end - start
    else:
        from asrctl.audio import probe_duration

        duration = probe_duration(location) - start
    record: dict[str, Any] = {AUDIO_KEY: location, "duration": duration}
    if utt in tables["text"]:
        record["text"] = tables["text"][utt][1]
    speaker = tables["utt2spk"].get(utt, (0, utt))[1]
    if speaker != utt:
        record["speaker"] = speaker
    if start:
        record["offset"] = start
    return record


def _table(file: Path, on_error: Callable[[LineError], None]) -> dict[str, tuple[int, str]]:
    """A Kaldi table: first field -> (line number, the rest of the line)."""
    table: dict[str, tuple[int, str]] = {}
    if not file.is_file():
        return table
    with open(file, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            match = _ENTRY.match(line.rstrip("\r\n"))
            if not match:
                if line.strip():
                    on_error(LineError(str(file), number, "expected `ID VALUE`"))
                continue
            key, value = match.group(1), match.group(2) or ""
            if key in table:
                on_error(LineError(str(file), number, f"{key} repeats line {table[key][0]}"))
                continue
            table[key] = (number, value)
    return table


def _extra(file: Path, on_error: Callable[[LineError], None]) -> dict[str, dict]:
    fields: dict[str, dict] = {}
    if not file.is_file():
        return fields
    with open(file, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                entry = json.loads(line)
                fields[entry["id"]] = entry["fields"]
            except (ValueError, KeyError, TypeError):
                on_error(LineError(str(file), number, 'expected {"id": ..., "fields": {...}}'))
    return fields


def detect(path: Path) -> bool:
    return path.is_dir() and (path / "wav.scp").is_file()
