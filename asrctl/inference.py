"""`asrctl infer` independent of where it runs: plan the rows, resume, hand batches to an engine,
turn results into output rows, report.

Engines (local, ray, ...) only execute: `run(job, spec, items)` yields lists of WorkResult for the
WorkItems given, in any order. Everything else (order, resume, errors, progress) lives here, so
every engine has the same semantics.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.errors import AsrctlError, AudioError
from asrctl.interrupts import between_batches, raise_if_interrupted
from asrctl.manifest import AUDIO_KEY, LineError, ManifestReader, Row
from asrctl.paths import Rebaser
from asrctl.probing import probed_duration
from asrctl.registry import refuse_undeclared
from asrctl.resume import ResumableOutput, file_identity
from asrctl.segmentation import Segmentation, Span, check_segmenter, join
from asrctl.specs import INFER_OPTIONS, BackendSpec, EngineSpec, Transcriber, Transcript


@dataclass
class InferJob:
    """Everything an engine needs to transcribe a manifest."""

    manifest: Path
    output: Path
    backend: str
    model: str
    engine: str = "local"
    engine_options: dict[str, Any] = field(default_factory=dict)  # -E KEY=VALUE; not fingerprinted
    device: str = "auto"
    dtype: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16
    batch_seconds: float = 300.0
    num_workers: int = 2
    pred_key: str = "pred_text"
    overwrite: bool = False
    retry_errors: bool = False  # a finished output: redo only its rows without a prediction
    segmentation: Segmentation = field(default_factory=Segmentation)
    item_keys: dict[str, str] = field(default_factory=dict)  # item setting -> the row field holding it

    def fingerprint(self) -> dict[str, Any]:
        # Batch sizes, workers and device may change between a crash and its resume; these may not.
        return {
            "manifest": file_identity(self.manifest),
            "backend": self.backend,
            "model": self.model,
            "dtype": self.dtype,
            "options": self.options,
            "pred_key": self.pred_key,
            **({"item_keys": self.item_keys} if self.item_keys else {}),
            **({"segmentation": vars(self.segmentation)} if self.segmentation.mode != "none" else {}),
        }


@dataclass(frozen=True)
class WorkItem:
    """One utterance to transcribe: the core's id for it (a row's position in the manifest, or a
    segment's id past them), and where its audio is."""

    index: int
    line: int
    audio_path: str
    offset: float | None  # None: the whole file; else the segment [offset, offset + duration]
    duration: float
    channel: int | None = None  # None: all channels averaged; else that one
    settings: dict[str, Any] = field(default_factory=dict)  # its row's own ITEM_SETTINGS ({"language": "de"})


@dataclass
class WorkResult:
    """What became of a WorkItem (same `index`): its transcript, or the error that stopped it."""

    index: int
    transcript: Transcript | None = None
    error: str | None = None


@dataclass
class InferSummary:
    rows: int = 0
    resumed: int = 0  # rows the output had from an earlier run
    transcribed: int = 0  # rows given a prediction by this run
    ok: int = 0  # rows with a prediction in the output
    finished_before: bool = False  # the output was this job's already: nothing was run
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rtfx(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0


def check_options(spec: BackendSpec, options: dict[str, Any]) -> None:
    """Refuse, before anything loads, options the backend does not declare: flags, then -O keys."""
    flags = sorted(name for name in set(options) - set(spec.options) if name in INFER_OPTIONS)
    if flags:
        given = ", ".join("--" + name.replace("_", "-") for name in flags)
        takes = ", ".join("--" + n.replace("_", "-") for n in sorted(spec.options)) or "none of the model options"
        raise AsrctlError(f"backend {spec.name!r} does not take {given} (it takes {takes})")
    refuse_undeclared(f"backend {spec.name!r}", "-O", set(options) - set(spec.options), spec.extra_options)


def check_item_keys(spec: BackendSpec, item_keys: dict[str, str], model: tuple[str, Transcriber] | None = None) -> None:
    """Refuse per-row settings (--language-key) the backend cannot take per item: before it loads,
    by what the backend declares; once loaded, by what the `model` (its name, its Transcriber) takes."""
    from asrctl import plugins

    takes = spec.item_settings if model is None else getattr(model[1], "item_settings", spec.item_settings)
    for name in sorted(set(item_keys) - set(takes)):
        flag = "--" + name.replace("_", "-") + "-key"
        what = f"{name.replace('_', ' ')} per row ({flag})"
        if model is not None:
            raise AsrctlError(f"{model[0]}: this {spec.name} model takes no {what}")
        able = [b.name for b in plugins.backends() if name in b.item_settings]
        raise AsrctlError(f"backend {spec.name!r} cannot take a {what}; "
                          + (f"backends that can: {', '.join(able)}" if able else "no installed backend can"))


def output_record(row: Row, result: WorkResult, pred_key: str, rebase: Rebaser) -> dict[str, Any]:
    """The input row with the prediction added; every input field is kept (a relative audio path
    is re-expressed from the output's folder, so that it still points at the file)."""
    record = dict(rebase(row.record, row.base_dir))
    transcript = result.transcript
    if transcript is None:
        record[pred_key] = None
        record["error"] = result.error or "no result"
        return record
    record.pop("error", None)  # a stale error from an earlier run on this file
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
            return f"field {key!r} is {value!r}: expected a language code such as en"
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
        from asrctl.engines.steps import load_segmenter

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
                whole.append(self._joined(row, parts))
        return whole

    def _joined(self, row: int, parts: list[WorkResult]) -> WorkResult:
        spans = self._spans.pop(row)
        for result, (start, end) in zip(parts, spans):
            if result.transcript is None:
                return WorkResult(row, error=f"{result.error} (segment {start:.1f}-{end:.1f} s)")
        return WorkResult(row, join([(start, r.transcript) for r, (start, _) in zip(parts, spans)]))


def run_infer(job: InferJob, progress_factory=None) -> InferSummary:
    """Transcribe job.manifest into job.output; resumable, order-preserving, errors per row."""
    from asrctl import plugins
    from asrctl.progress import InferProgress

    start = time.perf_counter()
    engine = plugins.engines().get(job.engine)
    spec = plugins.backends().get(job.backend)
    check_options(spec, job.options)
    check_item_keys(spec, job.item_keys)
    refuse_undeclared(f"engine {engine.name!r}", "-E", job.engine_options, engine.options)
    if job.segmentation.mode != "none":
        check_segmenter(job.segmentation)
    elif job.segmentation.options:
        raise AsrctlError("-V options set the segmenter of --segment auto or vad; with --segment none there is none")
    if spec.check is not None:
        spec.check(job.model)

    summary = InferSummary()
    reader = ManifestReader(job.manifest, on_error=lambda e: summary.errors.append(str(e)))
    rows = list(reader)
    summary.rows = len(rows)
    store = ResumableOutput(job.output, job.fingerprint(), overwrite=job.overwrite, retry_errors=job.retry_errors,
                            pred_key=job.pred_key)
    if store.finished:
        failures = list(store.errors(job.pred_key))
        summary.errors.extend(str(LineError(str(job.manifest), rows[i].line, error)) for i, error in failures)
        summary.ok, summary.resumed, summary.finished_before = summary.rows - len(failures), summary.rows, True
        return summary
    try:
        summary.resumed = len(store.rows)
        items, failed = plan(rows, set(store.rows), item_keys=job.item_keys)
        seconds = {item.index: item.duration for item in items}
        progress = (progress_factory or InferProgress)(
            total=len(rows), done=summary.resumed + len(failed), audio_total=sum(seconds.values())
        )
        rebase = Rebaser(job.output)
        segmented = SegmentedRows(first_id=len(rows))
        with progress, between_batches():
            store.append((r.index, output_record(rows[r.index], r, job.pred_key, rebase)) for r in failed)
            cut, items = job.segmentation.split(items, spec.window)
            if cut:
                for done, found in enumerate(segmented.cut(job, engine, spec, cut), 1):
                    progress.segmenting(done, len(cut))
                    store.append((r.index, output_record(rows[r.index], r, job.pred_key, rebase)) for r in found)
                    progress.skip(len(found))
                    raise_if_interrupted()
                items += segmented.items
            for results in engine.run(job, spec, items):
                results = segmented.collect(results)
                store.append((r.index, output_record(rows[r.index], r, job.pred_key, rebase)) for r in results)
                done = [r for r in results if r.transcript is not None]
                audio = sum(seconds[r.index] for r in done)
                summary.transcribed += len(done)
                summary.audio_seconds += audio
                progress.update(len(results), audio)
                raise_if_interrupted()  # Ctrl-C asked to stop after this batch (or was swallowed in a finalizer)
        store.finish(len(rows))
    finally:
        store.close()
    failures = list(store.errors(job.pred_key))
    summary.errors.extend(str(LineError(str(job.manifest), rows[i].line, error)) for i, error in failures)
    summary.ok = summary.rows - len(failures)
    summary.wall_seconds = time.perf_counter() - start
    return summary
