"""`asrctl eval --report`: one self-contained HTML file (inline CSS and SVG charts, no scripts)."""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from asrctl.data.paths import AUDIO_KEY
from asrctl.score.evaluate import GROUP_INTERVAL_NOTE

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #1d2330; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { padding: .25rem .8rem; border-bottom: 1px solid #dde; }
th { text-align: left; background: #f3f4f8; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.big { font-size: 2rem; font-weight: 600; } .note { color: #566; font-size: .9rem; }
pre { background: #f6f7f9; padding: .6rem; overflow-x: auto; }
"""


def _num(value: Any, column: str = "") -> str:
    if isinstance(value, float):  # one precision per column: hours of a short test set are small
        return f"{value:.4f}" if column == "hours" else f"{value:.2f}"
    return escape(str(value))


def _table(rows: list[dict[str, Any]], columns: list[str], right: tuple[str, ...] = ()) -> str:
    """Numbers, and the columns named in `right` (numbers already formatted), align right."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{_num(r.get(c), c)}</td>' if isinstance(r.get(c), (int, float)) or c in right
            else f"<td>{_num(r.get(c, ''))}</td>"
            for c in columns
        ) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def bar_chart(labels: list[str], values: list[float], title: str, width: int = 640) -> str:
    """Horizontal bars, one per label, scaled to the largest value."""
    bar_h, label_w, top = 22, 160, 28
    height = top + bar_h * len(labels) + 10
    finite = [v for v in values if np.isfinite(v)]
    scale = (width - label_w - 70) / (max(finite) if finite and max(finite) > 0 else 1)
    parts = [f'<text x="0" y="18" font-weight="600">{escape(title)}</text>']
    for k, (label, value) in enumerate(zip(labels, values)):
        y = top + k * bar_h
        length = value * scale if np.isfinite(value) else 0
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label[:24])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{bar_h - 6}" fill="#4a78c2"/>')
        parts.append(f'<text x="{label_w + length + 5:.1f}" y="{y + 15}">{value:.2f}</text>')
    return _svg(width, height, parts)


def histogram(values: list[float], title: str, bins: int = 20, width: int = 640, height: int = 220) -> str:
    """Vertical bars of counts over equal-width bins of `values` (seconds)."""
    if not values:
        return ""
    counts, edges = np.histogram(values, bins=bins)
    left, bottom, top = 40, height - 30, 28
    bar_w = (width - left - 10) / len(counts)
    scale = (bottom - top) / max(counts.max(), 1)
    parts = [f'<text x="0" y="18" font-weight="600">{escape(title)}</text>',
             f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{counts.max()}</text>']
    for k, count in enumerate(counts):
        h = count * scale
        x = left + k * bar_w
        parts.append(f'<rect x="{x + 1:.1f}" y="{bottom - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                     'fill="#6a9f58"/>')
    for k, anchor in ((0, "start"), (len(edges) // 2, "middle"), (len(edges) - 1, "end")):  # edge labels stay inside
        parts.append(f'<text x="{left + k * bar_w:.1f}" y="{bottom + 18}" text-anchor="{anchor}">'
                     f'{edges[k]:.1f}s</text>')
    return _svg(width, height, parts)


def alignment(worst: dict[str, Any]) -> str:
    """REF / HYP lines of a worst utterance, aligned word by word with S/D/I marks (jiwer's)."""
    import jiwer

    aligned = jiwer.process_words(worst["ref"], worst["hyp"])
    return jiwer.visualize_alignment(aligned, show_measures=False).split("\n", 2)[-1].strip("\n")


def comparison_by(groups: list[dict[str, Any]], metric: str) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and formatted rows of a comparison's groups (compare()'s "by"), for the terminal and the report."""
    unit = "words" if metric == "wer" else "characters"
    a, b = f"{metric.upper()} A %", f"{metric.upper()} B %"
    columns = ["group", "rows", unit, a, b, "B − A", "95% CI", "B better"]
    rows = [
        {"group": g["group"], "rows": str(g["rows"]), unit: str(g["reference"]),
         a: f"{g[f'{metric}_a']:.2f}", b: f"{g[f'{metric}_b']:.2f}", "B − A": f"{g['difference']:+.2f}",
         "95% CI": f"{g['ci'][0]:+.2f} to {g['ci'][1]:+.2f}" if "ci" in g else "–",
         "B better": f"{100 * g['b_better_share']:.0f}%" if "b_better_share" in g else "–"}
        for g in groups
    ]
    return columns, rows


def _svg(width: int, height: int, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="system-ui, sans-serif" font-size="12">{"".join(parts)}</svg>')


def render(result: dict[str, Any], metrics: list[str], scoring_note: str) -> str:
    """The report page for one `evaluate()` result (and its comparison, when there is one)."""
    headline = " · ".join(f"{m.upper()} {result[m]['rate']:.2f}%" for m in metrics)
    summary_rows = [
        {"measure": "rows scored", "value": result["rows"]},
        {"measure": "audio hours", "value": result["hours"]},
        {"measure": "normaliser", "value": result["normalizer"]},
        {"measure": "rows without prediction", "value": result["no_prediction"]},
        {"measure": "rows with empty reference", "value": result["empty_reference"]},
        {"measure": "rows skipped", "value": len(result["skipped"])},
    ]
    for m in metrics:
        s = result[m]
        summary_rows += [
            {"measure": f"{m.upper()} %", "value": s["rate"]},
            {"measure": f"{m.upper()} substitutions / deletions / insertions %",
             "value": f"{s['substitution_rate']:.2f} / {s['deletion_rate']:.2f} / {s['insertion_rate']:.2f}"},
        ]
        if "ci" in s:
            summary_rows.append({"measure": f"{m.upper()} 95% CI %", "value": f"{s['ci'][0]:.2f} – {s['ci'][1]:.2f}"})
    body = [
        f"<h1>ASR evaluation: {escape(result['file'])}</h1>",
        f'<p class="big">{escape(headline)}</p>',
        f'<p class="note">{escape(scoring_note)}</p>',
        "<h2>Summary</h2>",
        _table(summary_rows, ["measure", "value"]),
    ]
    for spec, groups in result["by"].items():
        body.append(f"<h2>By {escape(spec)}</h2>")
        body.append(_table(groups, ["group", "rows", "hours", *metrics]))
        body.append(bar_chart([g["group"] for g in groups], [g[metrics[0]] for g in groups],
                              f"{metrics[0].upper()} % by {spec}"))
    body.append("<h2>Durations</h2>")
    body.append(histogram(result["durations"], "utterances per duration bin"))
    if result.get("worst"):
        body.append("<h2>Worst utterances</h2>")
        body.append(_table(result["worst"], ["line", AUDIO_KEY, metrics[0], "errors"]))
        body.extend(f"<p>line {w['line']}: {escape(str(w['audio_filepath']))}</p><pre>{escape(alignment(w))}</pre>"
                    for w in result["worst"])
    if result.get("comparison"):
        c = result["comparison"]
        m = metrics[0]
        body.append("<h2>Comparison</h2>")
        body.append(_table([
            {"system": f"A: {c['a']}", m: c[f"{m}_a"]},
            {"system": f"B: {c['b']}", m: c[f"{m}_b"]},
        ], ["system", m]))
        body.append(f"<p>B − A: {c['difference']:+.2f} points (95% CI {c['ci'][0]:+.2f} to {c['ci'][1]:+.2f}); "
                    f"B better in {100 * c['b_better_share']:.0f}% of bootstrap samples.</p>")
        for spec, groups in c["by"].items():
            columns, rows = comparison_by(groups, m)
            body.append(f"<h3>B against A by {escape(spec)}</h3>")
            body.append(_table(rows, columns, right=tuple(columns[1:])))
        if c["by"]:
            body.append(f'<p class="note">{escape(GROUP_INTERVAL_NOTE)}</p>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ASR evaluation</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
