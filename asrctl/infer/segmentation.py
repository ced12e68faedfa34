"""Long recordings cut into segments a model takes at once, and the segments' transcripts joined.

A segmenter (a voice-activity detector, registered by a plugin) finds the speech regions of a row's
audio; consecutive regions are merged into segments of up to `max_seconds`, silences between them
included, as faster-whisper's batched pipeline merges its VAD regions into chunks. The segments of
every row then travel through the same duration-sorted batches as short rows, and a row's
transcript is its segments' texts in order, times moved into the row's own time.

Audio is scanned in blocks of BLOCK_SECONDS, so memory stays bounded for files of hours.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from asrctl import plugins
from asrctl.errors import AsrctlError
from asrctl.registry import refuse_undeclared
from asrctl.specs import SAMPLE_RATE, Segmenter, SegmenterSpec, Transcript

MODES = ("none", "auto", "vad")
BLOCK_SECONDS = 600.0
DEFAULT_MAX_SECONDS = 30.0  # for a backend that declares no window
EDGE = 0.05  # regions this close to a block's edge on both sides are one region cut by the block

Span = tuple[float, float]


@dataclass(frozen=True)
class Segmentation:
    """How a job cuts its rows: `mode` auto (rows longer than the backend's window), vad (every row)
    or none; the segmenter by name with its options; segments of at most `max_seconds`."""

    mode: str = "none"
    segmenter: str = "silero"
    options: dict[str, Any] = field(default_factory=dict)
    max_seconds: float | None = None  # None: the backend's window

    def split(self, items: list, window: float | None) -> tuple[list, list]:
        """(the items to cut into segments, those that go whole), by their `duration`."""
        cut: list = []
        whole: list = []
        for item in items:
            (cut if self.cuts(item.duration, window) else whole).append(item)
        return cut, whole

    def cuts(self, duration: float, window: float | None) -> bool:
        """Whether audio of `duration` seconds is cut into segments."""
        return self.mode == "vad" or (self.mode == "auto" and window is not None and duration > window)

    def limit(self, window: float | None) -> float:
        return self.max_seconds or window or DEFAULT_MAX_SECONDS


def blocks(duration: float) -> list[Span]:
    """The blocks a row of `duration` seconds is read in."""
    count = max(1, math.ceil(duration / BLOCK_SECONDS))
    return [(i * BLOCK_SECONDS, min(duration, (i + 1) * BLOCK_SECONDS)) for i in range(count)]


def stitch(regions: list[Span], edges: list[float]) -> list[Span]:
    """Regions in order, those cut in two by a block edge joined again."""
    joined: list[Span] = []
    for start, end in regions:
        if joined and any(abs(joined[-1][1] - e) <= EDGE and abs(start - e) <= EDGE for e in edges):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def merge(regions: list[Span], max_seconds: float) -> list[Span]:
    """Consecutive speech regions merged into segments of at most `max_seconds`; a region longer
    than that (a segmenter should have split it) is cut into equal parts."""
    segments: list[Span] = []
    for start, end in regions:
        parts = max(1, math.ceil((end - start) / max_seconds - 1e-9))
        step = (end - start) / parts
        for k in range(parts):
            a, b = start + k * step, end if k == parts - 1 else start + (k + 1) * step
            if segments and b - segments[-1][0] <= max_seconds:
                segments[-1] = (segments[-1][0], b)
            else:
                segments.append((a, b))
    return segments


def find_segments(segmenter: Segmenter, read, duration: float, max_seconds: float) -> list[Span]:
    """Segments of a row's audio, in seconds from its start. `read(start, seconds)` gives the row's
    audio from `start` (mono float32 at SAMPLE_RATE)."""
    regions: list[Span] = []
    parts = blocks(duration)
    for start, end in parts:
        audio = read(start, end - start)
        length = len(audio) / SAMPLE_RATE
        for a, b in segmenter.speech(audio, max_seconds):
            a, b = max(0.0, float(a)), min(length, float(b))
            if b > a:
                regions.append((round(start + a, 3), round(start + b, 3)))
    return merge(stitch(regions, [end for _, end in parts[:-1]]), max_seconds)


def join(parts: list[tuple[float, Transcript]]) -> Transcript:
    """One transcript from its segments' (start in the row's time, transcript), in order."""
    texts = [t.text.strip() for _, t in parts if t.text.strip()]
    joined = Transcript(text=" ".join(texts))
    if any(t.segments is not None for _, t in parts):
        joined.segments = [shifted(s, start) for start, t in parts for s in t.segments or []]
    if any(t.words is not None for _, t in parts):
        joined.words = [shifted(w, start) for start, t in parts for w in t.words or []]
    languages = Counter(t.language for _, t in parts if t.language)
    if languages:
        joined.language = languages.most_common(1)[0][0]
        sure = [t.language_probability for _, t in parts
                if t.language == joined.language and t.language_probability is not None]
        if sure:  # how sure the detector was of it, over the segments it heard it in
            joined.language_probability = round(sum(sure) / len(sure), 4)
    return joined


def shifted(timed: dict, seconds: float) -> dict:
    return {**timed, "start": round(timed["start"] + seconds, 2), "end": round(timed["end"] + seconds, 2)}


def check_segmentation(segmentation: Segmentation) -> None:
    """A job's segmentation, checked before anything loads: its mode, segmenter and -V options."""
    if segmentation.mode not in MODES:
        raise AsrctlError(f"segment={segmentation.mode!r}: expected one of {', '.join(MODES)}")
    if segmentation.mode != "none":
        check_segmenter(segmentation)
    elif segmentation.options:
        raise AsrctlError("-V options set the segmenter of --segment auto or vad; with --segment none there is none")


def check_segmenter(segmentation: Segmentation) -> SegmenterSpec:
    """The job's segmenter, its -V options checked against those it declares (nothing loads)."""
    spec = plugins.segmenters().get(segmentation.segmenter)
    refuse_undeclared(f"segmenter {spec.name!r}", "-V", segmentation.options, spec.options)
    return spec


_segmenters: dict[str, Segmenter] = {}  # per process: loaded once, used for every item


def load_segmenter(segmentation: Segmentation) -> Segmenter:
    """The job's segmenter, loaded once per process (the core loads it before any worker starts, so
    that a bad option or a missing package is one line, and forked workers inherit it)."""
    key = repr((segmentation.segmenter, sorted(segmentation.options.items())))
    if key not in _segmenters:
        _segmenters[key] = check_segmenter(segmentation).load(**segmentation.options)
    return _segmenters[key]
