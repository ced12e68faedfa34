"""`manifest stats`: rows, hours, the duration distribution, words, characters and speakers, in one pass.

Memory: one float32 per row (4 bytes) keeps the median and histogram exact; the character and
speaker tables grow with distinct values only; rows are read one at a time.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from rich.console import Console
from rich.table import Table
from rich.text import Text


@dataclass
class Stats:
    speaker_key: str = "speaker"
    rows: int = 0
    seconds: float = 0.0
    durations: array = field(default_factory=lambda: array("f"))
    no_duration: int = 0
    words: int = 0
    characters: int = 0
    no_text: int = 0
    charset: Counter = field(default_factory=Counter)
    speakers: dict[str, list[float]] = field(default_factory=dict)  # speaker -> [rows, seconds]
    no_speaker: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.rows += 1
        duration = record.get("duration")
        if duration is None:
            self.no_duration += 1
            duration = 0.0
        else:
            self.durations.append(duration)
            self.seconds += duration
        text = record.get("text")
        if text:
            self.words += len(text.split())
            self.characters += len(text)
            self.charset.update(text)
        else:
            self.no_text += 1
        speaker = record.get(self.speaker_key)
        if speaker is None:
            self.no_speaker += 1
        else:
            entry = self.speakers.setdefault(str(speaker), [0, 0.0])
            entry[0] += 1
            entry[1] += duration


def collect(records: Iterable[dict[str, Any]], speaker_key: str = "speaker") -> Stats:
    stats = Stats(speaker_key)
    for record in records:
        stats.add(record)
    return stats


def summarize(stats: Stats, bins: int = 20) -> dict[str, Any]:
    import numpy as np

    durations = np.frombuffer(stats.durations, dtype=np.float32) if stats.durations else np.zeros(0, np.float32)
    counts, edges = np.histogram(durations, bins=bins) if durations.size else (np.zeros(0, int), np.zeros(0))
    speakers = sorted(stats.speakers.items(), key=lambda item: (-item[1][1], item[0]))
    return {
        "rows": stats.rows,
        "hours": stats.seconds / 3600,
        "duration": {  # float32 holds 7 digits: 0.1 ms below 1000 s, so 4 decimals are all it knows
            "min": round(float(durations.min()), 4) if durations.size else None,
            "median": round(float(np.median(durations)), 4) if durations.size else None,
            "mean": stats.seconds / durations.size if durations.size else None,
            "max": round(float(durations.max()), 4) if durations.size else None,
            "rows_without": stats.no_duration,
        },
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "words": stats.words,
        "characters": stats.characters,
        "rows_without_text": stats.no_text,
        "charset": "".join(sorted(stats.charset)),
        "character_counts": dict(stats.charset.most_common()),
        "speaker_key": stats.speaker_key,
        "speakers": len(stats.speakers),
        "rows_without_speaker": stats.no_speaker,
        "by_speaker": [{"speaker": s, "rows": int(n), "hours": sec / 3600} for s, (n, sec) in speakers],
    }


def text_bars(edges: list[float], counts: list[int], width: int = 40) -> list[str]:
    """A histogram as terminal lines: `  1.0 –   2.5 s │████▌ 123`."""
    top = max(counts, default=0) or 1
    eighths = " ▏▎▍▌▋▊▉█"
    lines = []
    for low, high, count in zip(edges, edges[1:], counts):
        full, part = divmod(round(8 * width * count / top), 8)
        bar = "█" * full + (eighths[part] if part else "")
        lines.append(f"{low:7.2f} – {high:7.2f} s │{bar} {count}")
    return lines


def svg_histogram(edges: list[float], counts: list[int], title: str) -> str:
    """A self-contained SVG bar chart of the duration histogram (no plotting library needed)."""
    width, height, left, bottom, top_margin = 720, 360, 60, 40, 30
    plot_w, plot_h = width - left - 20, height - bottom - top_margin
    top = max(counts, default=0) or 1
    bar_w = plot_w / max(1, len(counts))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 20}" y2="{height - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{top_margin}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
        f'<text x="{left - 6}" y="{top_margin + 4}" text-anchor="end">{top}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">0</text>',
        f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">duration (s)</text>',
    ]
    for i, count in enumerate(counts):
        h = plot_h * count / top
        x = left + i * bar_w
        parts.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                     f'height="{h:.1f}" fill="#4c72b0"><title>{edges[i]:.2f}–{edges[i + 1]:.2f} s: {count}'
                     '</title></rect>')
    step = max(1, len(counts) // 5)
    for i in range(0, len(edges), step):
        x = left + i * bar_w
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="middle">{edges[i]:.1f}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def render(summary: dict[str, Any], title: str, console: Console, top: int = 20) -> None:
    overview = Table(title=title, show_header=False)
    overview.add_column(style="bold")
    overview.add_column(justify="right")
    d = summary["duration"]
    rows = [("rows", str(summary["rows"])), ("hours", f"{summary['hours']:.3f}")]
    if d["min"] is not None:
        rows.append(("duration min / median / mean / max (s)",
                     f"{d['min']:.2f} / {d['median']:.2f} / {d['mean']:.2f} / {d['max']:.2f}"))
    rows += [("rows without duration", str(d["rows_without"])), ("words", str(summary["words"])),
             ("characters", str(summary["characters"])), ("rows without text", str(summary["rows_without_text"])),
             ("distinct characters", str(len(summary["charset"]))),
             (f"speakers ({summary['speaker_key']})", str(summary["speakers"])),
             ("rows without speaker", str(summary["rows_without_speaker"]))]
    for key, value in rows:
        overview.add_row(key, value)
    console.print(overview)
    histogram = summary["histogram"]
    if histogram["counts"]:
        console.print(Text("duration histogram", style="bold"))
        for line in text_bars(histogram["edges"], histogram["counts"]):
            console.print(line, highlight=False)
    if summary["charset"]:
        console.print(Text("character set: ", style="bold") + Text(repr(summary["charset"])), highlight=False)
    if summary["by_speaker"]:
        table = Table(title=f"speakers by hours (top {min(top, len(summary['by_speaker']))} of {summary['speakers']})")
        for column in ("speaker", "rows", "hours"):
            table.add_column(column, justify="left" if column == "speaker" else "right")
        for entry in summary["by_speaker"][:top]:
            table.add_row(Text(entry["speaker"]), str(entry["rows"]), f"{entry['hours']:.3f}")
        console.print(table)
