"""Score a predictions manifest: corpus WER/CER, breakdowns by field, intervals, comparisons.

How rows are scored (also printed with every result):
- a row whose prediction is missing or null (an inference error) is scored as an empty
  transcript, so each of its reference words is a deletion: failures cost, never vanish;
- a row whose reference is empty after normalisation adds its predicted words as insertions
  and no reference words (as NeMo does);
- a row without the reference field at all cannot be scored: it is skipped and listed.
Rates are in percent.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asrctl.data.paths import AUDIO_KEY
from asrctl.data.rows import LineError, ManifestReader, Row
from asrctl.errors import AsrctlError
from asrctl.score.metrics import DEL, INS, REF, SUB, bootstrap_ci, edit_counts, error_rate, paired_bootstrap, totals
from asrctl.score.normalizers import get_normalizer, normalize_many

UNITS = {"wer": "word", "cer": "char"}


@dataclass
class Scored:
    """Rows of one predictions file with their normalised texts and per-utterance counts."""

    path: Path
    rows: list[Row]
    refs: list[str]
    hyps: list[str]
    counts: dict[str, np.ndarray]  # metric -> (n, 4) counts
    no_prediction: list[int] = field(default_factory=list)  # positions in rows
    empty_reference: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # FILE:LINE: reason

    def key(self, i: int) -> tuple:
        record = self.rows[i].record
        return (str(self.rows[i].audio_path), record.get("offset"), record.get("duration"), record.get("channel"))


def load_scored(path: Path, *, ref_key: str, pred_key: str, normalizer: str, metrics: list[str]) -> Scored:
    get_normalizer(normalizer)  # an unknown name fails before reading
    skipped: list[str] = []
    reader = ManifestReader(path, on_error=lambda e: skipped.append(str(e)))
    rows, refs, hyps, no_pred = [], [], [], []
    for row in reader:
        ref = row.record.get(ref_key)
        if not isinstance(ref, str):
            reason = f"no reference field {ref_key!r}" if ref is None else f"{ref_key!r} is not a string"
            skipped.append(str(LineError(str(path), row.line, reason)))
            continue
        pred = row.record.get(pred_key)
        if not isinstance(pred, str):
            no_pred.append(len(rows))
            pred = ""
        rows.append(row)
        refs.append(ref)
        hyps.append(pred)
    refs, hyps = normalize_many(normalizer, refs), normalize_many(normalizer, hyps)
    empty_ref = [i for i, ref in enumerate(refs) if not ref]
    counts = {m: edit_counts(refs, hyps, UNITS[m]) for m in metrics}
    return Scored(path, rows, refs, hyps, counts, no_pred, empty_ref, skipped)


def percent(x: float) -> float:
    return 100.0 * x if math.isfinite(x) else x


def summary_of(counts: np.ndarray) -> dict[str, Any]:
    rates = totals(counts).as_dict()
    return {k: percent(v) if k.endswith("rate") else v for k, v in rates.items()}


def _duration(row: Row) -> float:
    value = row.record.get("duration")
    return float(value) if isinstance(value, (int, float)) else 0.0


def group_values(scored: Scored, field_spec: str) -> list[str]:
    """The group of each row: a field's value, or `duration:5` -> 5-second bins like "5-10s"."""
    name, _, width = field_spec.partition(":")
    values = []
    for row in scored.rows:
        value = row.record.get(name)
        if width:
            try:
                w = float(width)
                low = math.floor(float(value) / w) * w
                value = f"{low:g}-{low + w:g}s"
            except (TypeError, ValueError):
                value = None
        values.append("(missing)" if value is None else str(value))
    return values


def _natural_order(value: str) -> list[tuple[int, float | str]]:
    """Numbers inside group names compare as numbers: "5-10s" before "10-15s", SNR 5 before 10."""
    return [(0, float(part)) if index % 2 else (1, part)
            for index, part in enumerate(re.split(r"(\d+(?:\.\d+)?)", value)) if part]


def _members(values: list[str]) -> dict[str, np.ndarray]:
    """The positions of each group's rows, groups in natural order."""
    members: dict[str, list[int]] = {}
    for i, value in enumerate(values):
        members.setdefault(value, []).append(i)
    return {value: np.array(members[value]) for value in sorted(members, key=_natural_order)}


def breakdown(scored: Scored, field_spec: str, metrics: list[str]) -> list[dict[str, Any]]:
    hours = np.array([_duration(r) for r in scored.rows]) / 3600
    groups = []
    for value, idx in _members(group_values(scored, field_spec)).items():
        entry: dict[str, Any] = {"group": value, "rows": len(idx), "hours": float(hours[idx].sum())}
        for m in metrics:
            entry[m] = summary_of(scored.counts[m][idx])["rate"]
        groups.append(entry)
    return groups


def worst(scored: Scored, n: int, metric: str = "wer") -> list[dict[str, Any]]:
    """The n utterances with the highest error rate, ties broken by error count."""
    counts = scored.counts[metric]
    errors = counts[:, :3].sum(axis=1)
    rates = errors / np.maximum(counts[:, REF], 1)
    order = sorted(range(len(rates)), key=lambda i: (-rates[i], -errors[i], i))[:n]
    return [
        {
            "line": scored.rows[i].line,
            AUDIO_KEY: scored.rows[i].record[AUDIO_KEY],
            metric: percent(float(rates[i])),
            "errors": int(errors[i]),
            "ref": scored.refs[i],
            "hyp": scored.hyps[i],
        }
        for i in order
        if errors[i] > 0
    ]


def per_utterance_records(scored: Scored, metrics: list[str]) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(scored.rows):
        record = dict(row.record)
        for m in metrics:
            c = scored.counts[m][i]
            record[m] = percent(float(c[:3].sum() / c[REF])) if c[REF] else (0.0 if not c[:3].sum() else None)
        c = scored.counts[metrics[0]][i]
        record.update({"sub": int(c[SUB]), "del": int(c[DEL]), "ins": int(c[INS]), "ref_len": int(c[REF])})
        out.append(record)
    return out


# A group's paired bootstrap needs rows to resample: with a handful, every draw repeats the same few
# rows and the interval comes out narrower than the uncertainty it should show. Ten is a round floor
# for that, a judgement rather than a derived bound.
MIN_INTERVAL_ROWS = 10
GROUP_INTERVAL_NOTE = (f"A group's 95% CI of B − A and the share of samples B is better in come from a paired "
                       f"bootstrap of its own rows, given for groups of at least {MIN_INTERVAL_ROWS} matched rows.")


def _versus(ca: np.ndarray, cb: np.ndarray, metric: str, *, interval: bool, resamples: int,
            seed: int) -> dict[str, Any]:
    """B's rate against A's on paired rows of counts, and the paired bootstrap's interval of B − A."""
    rate_a, rate_b = error_rate(ca), error_rate(cb)
    entry: dict[str, Any] = {f"{metric}_a": percent(rate_a), f"{metric}_b": percent(rate_b),
                             "difference": percent(rate_b - rate_a)}
    if interval:
        paired = paired_bootstrap(ca, cb, resamples=resamples, seed=seed)
        entry.update(ci=[percent(x) for x in paired.ci], b_better_share=paired.b_better_share)
    return entry


def compare(a: Scored, b: Scored, metric: str, *, by: list[str], resamples: int, seed: int,
            changed: int = 10) -> dict[str, Any]:
    """B against A on the utterances both scored, matched by audio path, offset and duration: over
    all of them, and per group of each `by` field (A's rows' values) with an interval where the
    group has MIN_INTERVAL_ROWS rows."""
    index_b = {b.key(i): i for i in range(len(b.rows))}
    pairs = [(i, index_b[a.key(i)]) for i in range(len(a.rows)) if a.key(i) in index_b]
    if not pairs:
        raise AsrctlError(f"{b.path}: no rows in common with {a.path} "
                          "(rows match by audio_filepath, offset, duration, channel)")
    ia, ib = (np.array(x) for x in zip(*pairs))
    ca, cb = a.counts[metric][ia], b.counts[metric][ib]
    delta = cb[:, :3].sum(axis=1) - ca[:, :3].sum(axis=1)
    most = sorted(range(len(pairs)), key=lambda k: (-abs(int(delta[k])), k))[:changed]
    groups: dict[str, list[dict[str, Any]]] = {}
    for spec in by:
        values = group_values(a, spec)
        groups[spec] = [
            {"group": value, "rows": len(idx), "reference": int(ca[idx, REF].sum()),
             **_versus(ca[idx], cb[idx], metric, interval=len(idx) >= MIN_INTERVAL_ROWS,
                       resamples=resamples, seed=seed)}
            for value, idx in _members([values[i] for i in ia]).items()
        ]
    return {
        "a": str(a.path), "b": str(b.path), "matched": len(pairs),
        "only_in_a": len(a.rows) - len(pairs), "only_in_b": len(b.rows) - len(pairs),
        **_versus(ca, cb, metric, interval=True, resamples=resamples, seed=seed),
        "changed_most": [
            {"line_a": a.rows[ia[k]].line, AUDIO_KEY: a.rows[ia[k]].record[AUDIO_KEY],
             "error_change": int(delta[k]), "ref": a.refs[ia[k]], "hyp_a": a.hyps[ia[k]], "hyp_b": b.hyps[ib[k]]}
            for k in most if delta[k] != 0
        ],
        "by": groups,
    }


def evaluate(scored: Scored, *, metrics: list[str], by: list[str], ci: bool, resamples: int, seed: int,
             worst_n: int, normalizer: str) -> dict[str, Any]:
    """Everything `asrctl eval` reports, as one JSON-able dict."""
    result: dict[str, Any] = {
        "file": str(scored.path),
        "normalizer": normalizer,
        "rows": len(scored.rows),
        "hours": sum(_duration(r) for r in scored.rows) / 3600,
        "no_prediction": len(scored.no_prediction),
        "empty_reference": len(scored.empty_reference),
        "skipped": scored.skipped,
        "durations": [_duration(r) for r in scored.rows],
    }
    for m in metrics:
        result[m] = summary_of(scored.counts[m])
        if ci:
            result[m]["ci"] = [percent(x) for x in bootstrap_ci(scored.counts[m], resamples=resamples, seed=seed)]
    result["by"] = {spec: breakdown(scored, spec, metrics) for spec in by}
    if worst_n:
        result["worst"] = worst(scored, worst_n, metrics[0])
    return result
