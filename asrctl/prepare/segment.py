"""`asrctl manifest segment`: a manifest of the speech segments of each row, cut by the segmenter
and the rule `asrctl infer --segment` uses, so that the segments transcribed and joined per source
row give what `infer --segment vad` gives for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asrctl.atomic import AtomicWriter
from asrctl.data.paths import Rebaser
from asrctl.data.rows import LineError, ManifestReader, dumps
from asrctl.infer.segmentation import Segmentation
from asrctl.progress import progress


@dataclass
class SegmentReport:
    rows: int = 0
    segments: int = 0
    without_speech: int = 0
    source_seconds: float = 0.0
    segment_seconds: float = 0.0


def segment_manifest(path: Path, output: Path, segmentation: Segmentation, max_seconds: float, workers: int,
                     on_error: Callable[[LineError], None], quiet: bool = False) -> SegmentReport:
    """Write `output`: for each row of `path`, one row per speech segment, in order. A segment row
    keeps every field of its source, its span as `offset`/`duration` in the source's file, its
    place as `segment_index`, the source's `source_duration`; the source's `text` (which is the
    whole row's) becomes `source_text`."""
    from asrctl.infer.engines.local import find_all
    from asrctl.infer.plan import plan
    from asrctl.infer.segmentation import load_segmenter

    rows = list(ManifestReader(path, on_error=on_error))
    items, failed = plan(rows, set())
    for result in failed:
        on_error(LineError(str(path), rows[result.index].line, result.error))
    load_segmenter(segmentation)  # a bad option or missing package: one line, before the workers start
    found = {}
    with progress("segment", len(items), quiet) as advance:
        for item, spans in find_all(segmentation, max_seconds, items, workers):
            found[item.index] = (item, spans)
            advance()
    report, rebase = SegmentReport(), Rebaser(output)
    with AtomicWriter(output) as f:
        for index in sorted(found):
            item, spans = found[index]
            if isinstance(spans, str):
                on_error(LineError(str(path), item.line, spans))
                continue
            report.rows += 1
            report.source_seconds += item.duration
            report.without_speech += not spans
            record = dict(rebase(rows[index].record, rows[index].base_dir))
            if "text" in record:
                record["source_text"] = record.pop("text")
            for k, (start, end) in enumerate(spans):
                f.write(dumps({**record, "offset": round((item.offset or 0.0) + start, 3),
                               "duration": round(end - start, 3), "segment_index": k,
                               "source_duration": item.duration}) + "\n")
                report.segments += 1
                report.segment_seconds += end - start
    return report
