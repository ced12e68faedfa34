"""Kaldi data directories: wav.scp, text, utt2spk, spk2utt, utt2dur, and segments for offset rows.

Utterance ids come from asrctl.data.formats.ids (speaker first, then the file's stem and a digest of its
path), and every file is sorted by id as Kaldi's tools require, so rows read back in id order.
wav.scp holds absolute paths; relative ones in a data dir made elsewhere are taken, as Kaldi takes
them, against the working folder. Kaldi's files cannot hold other fields, nor what they would
change (a speaker with spaces, text with line breaks): those go to `asrctl_extra.jsonl` beside
them, keyed by utterance id, so that reading the folder back gives the records that were written.

Reading: every row of a `segments` file has an offset (0 included). A wav.scp entry that is a
command (`sph2pipe -f wav -p -c 1 a.sph |`) is run only when asked (`allow_commands`), as one
program with its arguments, never through a shell; its output is kept in `extract_to` as the
recording's audio. Kaldi archive entries (`feats.ark:123`) are refused.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter, atomic_dir
from asrctl.data.formats import ids
from asrctl.data.parallel import ordered_map
from asrctl.data.paths import AUDIO_KEY, resolve_record
from asrctl.data.probing import probed_duration
from asrctl.data.rows import LineError, dumps
from asrctl.errors import AudioError

EXTRA_FILE = "asrctl_extra.jsonl"
_ENTRY = re.compile(r"^(\S+)(?:[ \t](.*))?$")
_ARCHIVE = re.compile(r"\.ark:\d+$")
_SHELL_WORDS = frozenset({"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1", "$(", "`"})


def write(records: Iterable[dict], path: Path, *, on_error: Callable[[LineError], None] | None = None) -> int:
    base = path.absolute().parent
    rows = [resolve_record(r, base) for r in records]
    durations = _durations(rows, path, on_error)
    utts = ids.unique(ids.utterance_id(r[AUDIO_KEY], r.get("offset"), r.get("speaker"), r.get("channel"))
                      for r in rows)
    entries = sorted(((utt, row, durations[i]) for i, (utt, row) in enumerate(zip(utts, rows)) if i in durations),
                     key=lambda entry: entry[0])
    segmented = any("offset" in row for _, row, _ in entries)
    files: dict[str, list[str]] = {name: [] for name in
                                   ("wav.scp", "text", "utt2spk", "utt2dur", "segments", EXTRA_FILE)}
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
        dropped = [k for k in view if k not in row]  # a whole file in a segmented dir reads back with offset 0
        if extra or dropped:
            files[EXTRA_FILE].append(dumps({"id": utt, "fields": extra, **({"drop": dropped} if dropped else {})}))
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
    for i, probed in ordered_map(lambda i: probed_duration(rows[i]), missing):
        if isinstance(probed, AudioError):
            if on_error:
                on_error(LineError(str(path), i + 1, str(probed)))
        else:
            durations[i] = probed
    return durations


def _kaldi_view(utt: str, row: dict, duration: float, segmented: bool) -> dict[str, Any]:
    """The record that Kaldi's files will give back for `row` (what `read` rebuilds)."""
    view: dict[str, Any] = {AUDIO_KEY: row[AUDIO_KEY], "duration": duration}
    if "text" in row and isinstance(row["text"], str):
        view["text"] = " ".join(row["text"].splitlines())
    if row.get("speaker") is not None:
        view["speaker"] = ids.safe(str(row["speaker"]))
    if segmented:
        view["offset"] = float(row.get("offset") or 0)
    return view


def read(path: Path, on_error: Callable[[LineError], None], *, extract_to: Path | None = None,
         allow_commands: bool = False, audio: bool = True) -> Iterator[dict]:
    tables = {name: _table(path / name, on_error) for name in ("wav.scp", "text", "utt2spk", "utt2dur", "segments")}
    extra = _extra(path / EXTRA_FILE, on_error)
    wav, segments = tables["wav.scp"], tables["segments"]
    locate = _Locations(wav, extract_to, allow_commands, run=audio)
    for utt, (line, value) in (segments or wav).items():
        where = f"{path / ('segments' if segments else 'wav.scp')}"
        recording, start, end = (value.split() + ["", "", ""])[:3] if segments else (utt, "", "-1")
        try:
            location = locate(recording)
            record = _record(utt, location, float(start or 0), float(end), tables, segment=bool(segments))
        except (ValueError, AudioError, EntryError) as exc:
            on_error(LineError(where, line, f"{utt}: {exc}"))
            continue
        fields, dropped = extra.get(utt, ({}, []))
        yield {k: v for k, v in {**record, **fields}.items() if k not in dropped}


class EntryError(Exception):
    """A recording whose wav.scp entry gives no audio file: missing, an archive, a command not run or failed."""


class _Locations:
    """The audio file of each recording: its wav.scp path, or what its command wrote (run once)."""

    def __init__(self, wav: dict[str, tuple[int, str]], extract_to: Path | None, allow_commands: bool, *,
                 run: bool) -> None:
        self.wav = wav
        self.extract_to = extract_to
        self.allow_commands = allow_commands
        self.run = run  # False: only durations and text are wanted, a command's recording keeps its id
        self.done: dict[str, str | EntryError] = {}

    def __call__(self, recording: str) -> str:
        if recording not in self.wav:
            raise EntryError(f"recording {recording} is not in wav.scp")
        location = self.wav[recording][1].strip()
        if not location.endswith("|"):
            if _ARCHIVE.search(location):
                raise EntryError(f"{location}: Kaldi archive entries are not supported")
            return os.path.abspath(location)
        if not self.run:
            return recording
        if recording not in self.done:
            try:
                self.done[recording] = self._run(recording, location[:-1].strip())
            except EntryError as exc:
                self.done[recording] = exc
        found = self.done[recording]
        if isinstance(found, EntryError):
            raise found
        return found

    def _run(self, recording: str, command: str) -> str:
        if not self.allow_commands:
            raise EntryError(f"wav.scp entry is a command ({command} |): pass --allow-commands (it runs the "
                               "programs named in wav.scp) with --extract-to DIR for their audio")
        if self.extract_to is None:
            raise EntryError(f"wav.scp entry is a command ({command} |): give --extract-to DIR for its audio")
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise EntryError(f"cannot split the command {command!r}: {exc}") from None
        shell = [word for word in argv if word in _SHELL_WORDS]
        if shell or not argv:
            raise EntryError(f"{command!r} needs a shell ({shell[0] if shell else 'empty'}); only one program "
                               "with its arguments is run")
        target = self.extract_to / f"{ids.safe(recording)}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        with AtomicWriter(target, "wb") as out:
            try:
                done = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            except OSError as exc:
                raise EntryError(f"cannot run {argv[0]}: {exc.strerror}") from None
            if done.returncode != 0:
                reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
                raise EntryError(f"{command!r} failed with exit code {done.returncode} ({reason[0]})")
        return str(target.absolute())


def _record(utt: str, location: str, start: float, end: float, tables: dict[str, dict], *,
            segment: bool) -> dict[str, Any]:
    if utt in tables["utt2dur"]:
        duration = float(tables["utt2dur"][utt][1])
    elif end > start:
        duration = end - start
    else:  # no end, or Kaldi's -1: to the end of the file
        probed = probed_duration({AUDIO_KEY: location, "offset": start})
        if isinstance(probed, AudioError):
            raise probed
        duration = probed
    record: dict[str, Any] = {AUDIO_KEY: location, "duration": duration}
    if utt in tables["text"]:
        record["text"] = tables["text"][utt][1]
    speaker = tables["utt2spk"].get(utt, (0, utt))[1]
    if speaker != utt:
        record["speaker"] = speaker
    if segment:
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


def _extra(file: Path, on_error: Callable[[LineError], None]) -> dict[str, tuple[dict, list[str]]]:
    """Utterance id -> (fields to set, fields to drop) from asrctl_extra.jsonl."""
    extra: dict[str, tuple[dict, list[str]]] = {}
    if not file.is_file():
        return extra
    with open(file, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                entry = json.loads(line)
                extra[entry["id"]] = (dict(entry["fields"]), list(entry.get("drop", [])))
            except (ValueError, KeyError, TypeError):
                on_error(LineError(str(file), number, 'expected {"id": ..., "fields": {...}}'))
    return extra


def detect(path: Path) -> bool:
    return path.is_dir() and (path / "wav.scp").is_file()
