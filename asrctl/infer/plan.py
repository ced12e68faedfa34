"""From manifest rows to work items (durations, each row's own settings; long rows cut into segments),
and from results back to output rows (a row's segments joined, every input field kept, the
prediction added)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asrctl.data.paths import AUDIO_KEY, Rebaser
from asrctl.data.probing import probed_duration
from asrctl.data.rows import Row
from asrctl.errors import AsrctlError, AudioError
from asrctl.infer.job import InferJob, WorkItem, WorkResult
from asrctl.infer.segmentation import Span, join, load_segmenter
from asrctl.specs import BackendSpec, EngineSpec, Transcript


def output_record(row: Row, result: WorkResult, pred_key: str, rebase: Rebaser,
                  aligned: bool = False) -> dict[str, Any]:
    """The input row with the prediction added; every input field is kept (a relative audio path
    is re-expressed from the output's folder, so that it still points at the file). `aligned`: the
    row's own text was placed in its audio, and its `words` and `segments` are added (`pred_key` is
    then "words", which a failed row lacks)."""
    record = dict(rebase(row.record, row.base_dir))
    transcript = result.transcript
    if transcript is None:
        if aligned:  # times of an earlier alignment would say this one worked
            record.pop("words", None)
            record.pop("segments", None)
        else:
            record[pred_key] = None
        record["error"] = result.error or "no result"
        return record
    record.pop("error", None)  # a stale error from an earlier run on this file
    if aligned:
        record.update(words=transcript.words or [], segments=transcript.segments or [])
        return record
    record[pred_key] = transcript.text
    for key, value in (("segments", transcript.segments), ("words", transcript.words), ("lang", transcript.language),
                       ("lang_prob", transcript.language_probability)):
        if value is not None:
            record[f"pred_{key}"] = value
    return record


def _duration(row: Row) -> float | str:
    """The row's duration from the manifest, else from the file's header; a string is an error."""
    duration = row.record.get("duration")
    if duration is not None:
        return float(duration)
    probed = probed_duration({**row.record, AUDIO_KEY: str(row.audio_path)})
    return str(probed) if isinstance(probed, AudioError) else probed


def _settings(row: Row, item_keys: dict[str, str]) -> dict[str, Any] | str:
    """The row's own settings from the fields named for them; a string is an error."""
    settings = {}
    for name, key in item_keys.items():
        value = row.record.get(key)
        if value in (None, ""):  # the job's --language (or detection) for this row
            continue
        if not isinstance(value, str):
            expected = "text" if name == "text" else "a language code such as en"
            return f"field {key!r} is {value!r}: expected {expected}"
        settings[name] = value.strip()
    return settings


def plan(rows: list[Row], done: set[int], *, item_keys: dict[str, str] | None = None,
         threads: int = 8) -> tuple[list[WorkItem], list[WorkResult]]:
    """Work items for the rows not done yet, and error results for rows that cannot be read at all."""
    todo = [(i, row) for i, row in enumerate(rows) if i not in done]
    with ThreadPoolExecutor(threads) as pool:  # header probes are I/O bound
        durations = list(pool.map(lambda pair: _duration(pair[1]), todo))
    items, failed = [], []
    for (i, row), duration in zip(todo, durations):
        settings = _settings(row, item_keys or {})
        if isinstance(duration, str) or isinstance(settings, str):
            failed.append(WorkResult(i, error=duration if isinstance(duration, str) else settings))
        else:
            offset = row.record.get("offset")
            items.append(WorkItem(i, row.line, str(row.audio_path), None if offset is None else float(offset), duration,
                                  row.record.get("channel"), settings))
    return items, failed


class SegmentedRows:
    """Rows cut into speech segments: the segments as work items (ids from `first_id` on), and each
    row's result once all its segments are in (a row is written whole, so resume stays per row)."""

    def __init__(self, first_id: int) -> None:
        self.items: list[WorkItem] = []
        self._owner: dict[int, tuple[int, int]] = {}  # segment id -> (row, its part)
        self._spans: dict[int, list[Span]] = {}  # row -> its segments, seconds in the row's time
        self._parts: dict[int, list[WorkResult | None]] = {}
        self._next = first_id

    def cut(self, job: InferJob, engine: EngineSpec, spec: BackendSpec, rows: list[WorkItem]):
        """Find the segments of `rows` with the engine; yields, row by row, the results of those done
        on the way (no speech: an empty transcript; audio that cannot be read: an error)."""
        if engine.segment is None:
            raise AsrctlError(f"engine {engine.name!r} cannot segment long rows: use --segment none")
        load_segmenter(job.segmentation)
        for row, spans in engine.segment(job, spec, rows):
            if isinstance(spans, str) or not spans:
                yield [WorkResult(row.index, error=spans) if spans else WorkResult(row.index, Transcript(text=""))]
                continue
            self._parts[row.index], self._spans[row.index] = [None] * len(spans), spans
            for part, (start, end) in enumerate(spans):
                self.items.append(WorkItem(self._next, row.line, row.audio_path, (row.offset or 0.0) + start,
                                           round(end - start, 3), row.channel, row.settings))
                self._owner[self._next] = (row.index, part)
                self._next += 1
            yield []

    def collect(self, results: list[WorkResult]) -> list[WorkResult]:
        """The results of whole rows: those given, and those of rows whose last segment came in."""
        whole = []
        for result in results:
            if result.index not in self._owner:
                whole.append(result)
                continue
            row, part = self._owner.pop(result.index)
            parts = self._parts[row]
            parts[part] = result
            if all(p is not None for p in parts):
                del self._parts[row]
                whole.append(joined(row, self._spans.pop(row), parts))
        return whole


def joined(index: int, spans: list[Span], parts: list[WorkResult]) -> WorkResult:
    """The result of item `index` from its segments' (at `spans`, seconds in its own time): their
    transcripts joined, or the first segment's error, saying where it is."""
    for result, (start, end) in zip(parts, spans):
        if result.transcript is None:
            return WorkResult(index, error=f"{result.error} (segment {start:.1f}-{end:.1f} s)")
    return WorkResult(index, join([(start, r.transcript) for r, (start, _) in zip(parts, spans)]))
