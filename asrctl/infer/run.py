"""`asrctl infer` independent of where it runs: plan the rows, resume, hand batches to an engine,
turn results into output rows, report.

Engines (local, ray, ...) only execute: `run(job, spec, items)` yields lists of WorkResult for the
WorkItems given, in any order (the contract is asrctl.infer.job). Everything else (order, resume,
errors, progress) lives here, so every engine has the same semantics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from asrctl import plugins
from asrctl.data.paths import Rebaser
from asrctl.data.rows import LineError, ManifestReader
from asrctl.errors import AsrctlError
from asrctl.infer.job import InferJob, WorkResult, check_item_keys, check_options
from asrctl.infer.plan import SegmentedRows, output_record, plan
from asrctl.infer.resume import ResumableOutput
from asrctl.infer.segmentation import check_segmentation
from asrctl.interrupts import between_batches, raise_if_interrupted
from asrctl.progress import InferProgress
from asrctl.registry import refuse_undeclared


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


def run_infer(job: InferJob, progress_factory=None) -> InferSummary:
    """Transcribe job.manifest into job.output; resumable, order-preserving, errors per row."""
    start = time.perf_counter()
    engine = plugins.engines().get(job.engine)
    spec = plugins.backends().get(job.backend)
    check_options(spec, job.options)
    check_item_keys(spec, job.setting_keys)
    if job.align and not spec.aligns:
        able = [b.name for b in plugins.backends() if b.aligns]
        raise AsrctlError(f"backend {spec.name!r} cannot align a known text; "
                          + (f"backends that can: {', '.join(able)}" if able else "no installed backend can"))
    refuse_undeclared(f"engine {engine.name!r}", "-E", job.engine_options, engine.options)
    check_segmentation(job.segmentation)
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

        def written(results: list[WorkResult]):
            return ((r.index, output_record(rows[r.index], r, job.pred_key, rebase, job.align)) for r in results)

        segmented = SegmentedRows(first_id=len(rows))
        with progress, between_batches():
            store.append(written(failed))
            cut, items = job.segmentation.split(items, spec.window)
            if cut:
                for done, found in enumerate(segmented.cut(job, engine, spec, cut), 1):
                    progress.segmenting(done, len(cut))
                    store.append(written(found))
                    progress.skip(len(found))
                    raise_if_interrupted()
                items += segmented.items
            for results in engine.run(job, spec, items):
                results = segmented.collect(results)
                store.append(written(results))
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
