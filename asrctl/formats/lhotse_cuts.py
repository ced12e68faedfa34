"""Lhotse CutSet manifests (jsonl.gz): one cut per row, each with its recording and supervision.

Written with lhotse's own classes: a Recording per audio file (rate, channels and length from the
headers), a SupervisionSegment per row (text, speaker, language; every other field in `custom`),
CutSet.from_manifests, then one cut per supervision. Paths are written absolute, as lhotse resolves
relative ones against the working folder. Reading gives a record per supervision; `offset` is set
where the segment does not start at the top of the file.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asrctl.datatools.parallel import ordered_map
from asrctl.paths import resolve_record
from asrctl.datatools.probing import try_probe
from asrctl.errors import AudioError
from asrctl.formats import atomic_path, ids, need
from asrctl.manifest import AUDIO_KEY, LineError

if TYPE_CHECKING:
    from asrctl.audio import AudioInfo

NATIVE_FIELDS = (AUDIO_KEY, "duration", "offset", "text", "speaker", "language")


def write(records: Iterable[dict], path: Path, *, on_error: Callable[[LineError], None] | None = None) -> int:
    lhotse = need("lhotse", "lhotse")
    base = path.absolute().parent
    rows = [resolve_record(r, base) for r in records]
    recordings: dict[str, Any] = {}
    failures: dict[str, AudioError] = {}
    for file, info in ordered_map(try_probe, list(dict.fromkeys(r[AUDIO_KEY] for r in rows))):
        if isinstance(info, AudioError):
            failures[file] = info
        else:
            recordings[file] = _recording(lhotse, file, info)
    supervisions, order = [], {}
    for number, (row, utt) in enumerate(zip(rows, ids.unique(_utterance_ids(rows))), start=1):
        recording = recordings.get(row[AUDIO_KEY])
        if recording is None:
            if on_error:
                on_error(LineError(str(path), number, str(failures[row[AUDIO_KEY]])))
            continue
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
        yield ids.utterance_id(row[AUDIO_KEY], row.get("offset"), row.get("speaker"))


def _recording(lhotse: Any, file: str, info: AudioInfo) -> Any:
    samples = info.frames if info.frames is not None else round(info.duration * info.sample_rate)
    source = lhotse.audio.AudioSource(type="file", channels=list(range(info.channels)), source=file)
    return lhotse.Recording(id=ids.recording_id(file), sources=[source], sampling_rate=info.sample_rate,
                            num_samples=samples, duration=samples / info.sample_rate)


def _supervision(lhotse: Any, utt: str, row: dict, recording: Any) -> Any:
    start = float(row.get("offset") or 0)
    duration = row.get("duration")
    channels = recording.channel_ids
    custom = {k: v for k, v in row.items() if k not in NATIVE_FIELDS}
    return lhotse.SupervisionSegment(
        id=utt, recording_id=recording.id, start=start,
        duration=float(duration) if duration is not None else recording.duration - start,
        channel=channels[0] if len(channels) == 1 else channels,
        text=row.get("text"), speaker=row.get("speaker"), language=row.get("language"), custom=custom or None,
    )


def read(path: Path, on_error: Callable[[LineError], None]) -> Iterator[dict]:
    lhotse = need("lhotse", "lhotse")
    for number, cut in enumerate(lhotse.CutSet.from_jsonl_lazy(path), start=1):
        recording = getattr(cut, "recording", None)
        sources = recording.sources if recording is not None else []
        if len(sources) != 1 or sources[0].type != "file":
            on_error(LineError(str(path), number, f"cut {cut.id}: only cuts of one audio file are supported"))
            continue
        file = sources[0].source
        if not cut.supervisions:
            yield _with_offset({AUDIO_KEY: file, "duration": cut.duration}, cut.start)
        for sup in cut.supervisions:
            record = _with_offset({AUDIO_KEY: file, "duration": sup.duration}, cut.start + sup.start)
            for key in ("text", "speaker", "language"):
                if getattr(sup, key) is not None:
                    record[key] = getattr(sup, key)
            yield {**record, **(sup.custom or {})}


def _with_offset(record: dict, offset: float) -> dict:
    return {**record, "offset": offset} if offset else record


def detect(path: Path) -> bool:
    if not (path.is_file() and path.name.endswith((".jsonl.gz", ".jsonl"))):
        return False
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        first = f.readline()
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and "recording" in record and "supervisions" in record
