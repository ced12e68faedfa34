"""Lhotse manifests: CutSets (cuts.jsonl.gz), and RecordingSets joined with their SupervisionSets.

Written with lhotse's own classes: a Recording per audio file (rate, channels and length from the
headers), a SupervisionSegment per row (text, speaker, gender, `lang` as its language, the row's
`channel`; every other field in `custom`), CutSet.from_manifests, then one cut per supervision.
Paths are written absolute, as lhotse resolves relative ones against the working folder (and so
are relative paths read).

Reading gives a row per supervision (a cut without any is one row): `offset` wherever it is a part
of its recording, 0 included; `channel` where it is one channel of several; custom fields of the
cut and the supervision. Audio asrctl cannot point at in the file itself (transformed recordings
such as perturb_speed, mixed or padded cuts, several or non-file sources, a subset of channels)
is rendered by Lhotse into --extract-to, or the row is refused saying why. A RecordingSet is read
with the SupervisionSet beside it (the name with `recordings` replaced by `supervisions`), or as
one row per recording where there is none; a SupervisionSet needs its RecordingSet beside it.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asrctl.atomic import AtomicWriter, atomic_path
from asrctl.data.formats import ids, need
from asrctl.data.parallel import ordered_map
from asrctl.data.paths import AUDIO_KEY, resolve_record
from asrctl.data.probing import probe_or_error
from asrctl.data.rows import ErrorSink, LineError
from asrctl.errors import AsrctlError, AudioError

if TYPE_CHECKING:
    from asrctl.data.audio import AudioInfo

# Row fields that are a supervision's own attributes (`lang` is its `language`); the rest go to custom.
SUPERVISION_FIELDS = {"text": "text", "speaker": "speaker", "gender": "gender", "lang": "language"}
NATIVE_FIELDS = (AUDIO_KEY, "duration", "offset", "channel", *SUPERVISION_FIELDS)
_TOLERANCE = 1e-6  # seconds: a span this close to the recording's length is all of it


SUFFIXES = (".jsonl.gz", ".jsonl")  # lhotse picks its serialisation by the name


def write(records: Iterable[dict], path: Path, *, on_error: ErrorSink | None = None) -> int:
    if not path.name.endswith(SUFFIXES):
        raise AsrctlError(f"{path}: a Lhotse CutSet is written to a .jsonl.gz (or .jsonl) file: "
                          f"give -o {path}.jsonl.gz")
    lhotse = need("lhotse", "lhotse")
    sink = on_error or (lambda error: None)
    base = path.absolute().parent
    rows = [resolve_record(r, base) for r in records]
    recordings: dict[str, Any] = {}
    failures: dict[str, AudioError] = {}
    for file, info in ordered_map(probe_or_error, list(dict.fromkeys(r[AUDIO_KEY] for r in rows))):
        if isinstance(info, AudioError):
            failures[file] = info
        else:
            recordings[file] = _recording(lhotse, file, info)
    supervisions, order = [], {}
    for number, (row, utt) in enumerate(zip(rows, ids.unique(_utterance_ids(rows))), start=1):
        recording = recordings.get(row[AUDIO_KEY])
        channel = row.get("channel")
        if recording is None:
            sink(LineError(str(path), number, str(failures[row[AUDIO_KEY]])))
        elif channel is not None and channel not in recording.channel_ids:
            sink(LineError(str(path), number, f"{row[AUDIO_KEY]}: no channel {channel} "
                                              f"(the file has {len(recording.channel_ids)}, numbered from 0)"))
        else:
            supervisions.append(_supervision(lhotse, utt, row, recording))
            order[utt] = number
    cuts = lhotse.CutSet.from_manifests(
        recordings=lhotse.RecordingSet.from_recordings(recordings.values()),
        supervisions=lhotse.SupervisionSet.from_segments(supervisions),
    ).trim_to_supervisions(keep_overlapping=False)
    cuts = lhotse.CutSet.from_cuts(sorted(cuts, key=lambda cut: order[cut.supervisions[0].id]))
    with atomic_path(path) as tmp:
        cuts.to_file(tmp)
    return len(supervisions)


def _utterance_ids(rows: list[dict]) -> Iterator[str]:
    for row in rows:
        yield ids.utterance_id(row[AUDIO_KEY], row.get("offset"), row.get("speaker"), row.get("channel"))


def _recording(lhotse: Any, file: str, info: AudioInfo) -> Any:
    samples = info.frames if info.frames is not None else round(info.duration * info.sample_rate)
    source = lhotse.audio.AudioSource(type="file", channels=list(range(info.channels)), source=file)
    return lhotse.Recording(id=ids.recording_id(file), sources=[source], sampling_rate=info.sample_rate,
                            num_samples=samples, duration=samples / info.sample_rate)


def _supervision(lhotse: Any, utt: str, row: dict, recording: Any) -> Any:
    start = float(row.get("offset") or 0)
    duration = row.get("duration")
    channels = recording.channel_ids
    channel = row.get("channel")
    if channel is None:
        channel = channels[0] if len(channels) == 1 else channels
    custom = {k: v for k, v in row.items() if k not in NATIVE_FIELDS}
    return lhotse.SupervisionSegment(
        id=utt, recording_id=recording.id, start=start,
        duration=float(duration) if duration is not None else recording.duration - start, channel=channel,
        **{attribute: row.get(key) for key, attribute in SUPERVISION_FIELDS.items()}, custom=custom or None,
    )


class Unsupported(Exception):
    """What keeps asrctl from pointing a row at the cut's audio in its file."""


def read(path: Path, on_error: ErrorSink, *, extract_to: Path | None = None, audio: bool = True) -> Iterator[dict]:
    lhotse = need("lhotse", "lhotse")
    for number, cut in _cuts(lhotse, path):
        try:
            yield from _cut_records(cut, number, extract_to, audio)
        except Unsupported as exc:
            on_error(LineError(str(path), number, f"cut {cut.id}: {exc}"))


def _cuts(lhotse: Any, path: Path) -> Iterator[tuple[int, Any]]:
    """(number, cut) for a CutSet file, or for the cuts of a RecordingSet and its SupervisionSet."""
    kind = _kind(path)
    if kind == "cuts":
        yield from enumerate(lhotse.CutSet.from_jsonl_lazy(path), start=1)
        return
    other = "supervisions" if kind == "recordings" else "recordings"
    sibling = path.with_name(path.name.replace(kind, other)) if kind in path.name else None
    if sibling is None or not sibling.is_file():
        if kind == "supervisions":
            raise AsrctlError(f"{path}: a Lhotse SupervisionSet; its RecordingSet (the same name with "
                              f"`recordings` for `supervisions`) is not beside it: convert that file")
        sibling = None
    recordings = lhotse.RecordingSet.from_file(path if kind == "recordings" else sibling)
    supervisions = None
    if sibling is not None:
        supervisions = lhotse.SupervisionSet.from_file(sibling if kind == "recordings" else path)
    yield from enumerate(lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions), start=1)


def _cut_records(cut: Any, number: int, extract_to: Path | None, audio: bool) -> Iterator[dict]:
    spans = [(sup, cut.start + sup.start, sup.duration, _channels(cut, sup)) for sup in cut.supervisions]
    if not spans:
        spans = [(None, cut.start, cut.duration, _channels(cut, None))]
    problem = _unsupported(cut)
    if not audio:  # only counted: durations and text
        yield from (_fields(cut, sup, {AUDIO_KEY: f"cut-{number}", "duration": length}) for sup, _, length, _ in spans)
        return
    if problem is None:
        file_channels = cut.recording.sources[0].channels
        problem = next(filter(None, (_channel_problem(channel, file_channels) for *_, channel in spans)), None)
    if problem is None:
        yield from (_fields(cut, sup, _span(cut, start, length, channel)) for sup, start, length, channel in spans)
    elif extract_to is None:
        raise Unsupported(f"{problem}; give --extract-to DIR to have Lhotse render its audio there")
    else:
        yield from _rendered(cut, number, extract_to)


def _unsupported(cut: Any) -> str | None:
    """Why the cut's audio is not a span of one audio file as it is, or None."""
    kind = type(cut).__name__
    if kind not in ("MonoCut", "MultiCut"):
        return f"a {kind} (mixed, padded or composed audio)"
    recording = getattr(cut, "recording", None)
    if recording is None:
        return "it has no recording (features only)"
    if recording.transforms:
        names = ", ".join(f"{t['name']}({', '.join(f'{k}={v}' for k, v in t.get('kwargs', {}).items())})"
                          for t in (t if isinstance(t, dict) else t.to_dict() for t in recording.transforms))
        return f"its recording is transformed by {names}"
    if len(recording.sources) != 1:
        return f"its recording has {len(recording.sources)} sources"
    if recording.sources[0].type != "file":
        return f"its audio source is of type {recording.sources[0].type!r}, not a file"
    return None


def _channels(cut: Any, sup: Any) -> list[int]:
    """The recording channels a supervision's audio is on: its own, within the cut's."""
    def listed(channel: Any) -> list[int]:
        return [channel] if isinstance(channel, int) else list(channel or [])

    of_cut = listed(getattr(cut, "channel", None))
    of_sup = listed(sup.channel) if sup is not None else []
    return [c for c in of_sup if c in of_cut or not of_cut] or of_cut


def _channel_problem(chosen: list[int], file_channels: list[int]) -> str | None:
    if len(chosen) <= 1 or sorted(chosen) == sorted(file_channels):
        return None
    return f"a supervision on channels {chosen} of {file_channels} (a row reads one channel, or all)"


def _span(cut: Any, start: float, length: float, chosen: list[int]) -> dict:
    """The row for `length` seconds from `start` of the cut's file, on the recording channels `chosen`."""
    source = cut.recording.sources[0]
    row: dict[str, Any] = {AUDIO_KEY: os.path.abspath(source.source), "duration": length}
    if start > _TOLERANCE or length < cut.recording.duration - _TOLERANCE:
        row["offset"] = start
    if len(source.channels) > 1 and len(chosen) == 1:
        row["channel"] = source.channels.index(chosen[0])  # the file's channel that holds it
    return row


def _rendered(cut: Any, number: int, extract_to: Path) -> Iterator[dict]:
    """Rows pointing at the audio Lhotse renders for each supervision of the cut (float WAV: exact)."""
    import soundfile as sf

    parts = cut.trim_to_supervisions(keep_overlapping=False) if cut.supervisions else [cut]
    for part in parts:
        samples = part.load_audio()  # channels x samples
        target = extract_to / f"{number:09d}-{ids.safe(part.id)}.wav"
        with AtomicWriter(target, "wb") as f:
            sf.write(f, samples.T, part.sampling_rate, format="WAV", subtype="FLOAT")
        sup = part.supervisions[0] if part.supervisions else None
        yield _fields(cut, sup, {AUDIO_KEY: str(target.absolute()), "duration": samples.shape[1] / part.sampling_rate})


def _fields(cut: Any, sup: Any, row: dict) -> dict:
    """The row with the cut's and the supervision's custom fields and the supervision's own."""
    fields = {**(getattr(cut, "custom", None) or {}), **((sup.custom or {}) if sup is not None else {})}
    if sup is not None:
        fields.update({key: getattr(sup, attribute) for key, attribute in SUPERVISION_FIELDS.items()
                       if getattr(sup, attribute, None) is not None})
    return {**row, **{key: value for key, value in fields.items() if key not in row}}


def _kind(path: Path) -> str | None:
    """cuts, recordings or supervisions, from the first line of a Lhotse JSONL manifest."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            record = json.loads(f.readline())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict):
        return None
    if "type" in record and str(record["type"]).endswith("Cut") or "tracks" in record or \
            ("recording" in record and "supervisions" in record):
        return "cuts"
    if "sources" in record and "sampling_rate" in record:
        return "recordings"
    if "recording_id" in record and "start" in record:
        return "supervisions"
    return None


def detect(path: Path) -> bool:
    return path.is_file() and path.name.endswith(SUFFIXES) and _kind(path) is not None
