"""`manifest split`: seeded train/val/test splits by hours, optionally keeping each speaker in one split.

Two passes over the manifest, so memory holds a weight and a group per row (or per group), never
the rows. Groups (rows, or all rows of a speaker with --group-by) are shuffled with the seed, then
each goes to the split furthest below its target hours; with --stratify-duration this is done
within duration quantile bins, so each split gets its share of short and long audio. Ratios are of
hours when every row has a duration, of rows otherwise.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter
from asrctl.data.paths import Rebaser
from asrctl.data.rows import LineError, ManifestReader, dumps
from asrctl.errors import AsrctlError

DEFAULT_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}


def parse_ratios(text: str) -> list[float]:
    try:
        ratios = [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"expected numbers separated by commas, got {text!r}") from None
    if len(ratios) < 2 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError("give two or more non-negative ratios, e.g. 0.8,0.1,0.1")
    total = sum(ratios)
    return [r / total for r in ratios]


def default_names(count: int) -> tuple[str, ...]:
    return DEFAULT_NAMES.get(count, tuple(f"split{i + 1}" for i in range(count)))


def assign(weights: Sequence[float], ratios: Sequence[float], order: Sequence[int]) -> list[int]:
    """Greedy: each group in `order` goes to the split furthest below its target; the splits, in order."""
    total = sum(weights[g] for g in order)
    targets = [r * total for r in ratios]
    filled = [0.0] * len(ratios)
    chosen = []
    for group in order:
        split = max(range(len(ratios)), key=lambda s: (targets[s] - filled[s], ratios[s]))
        filled[split] += weights[group]
        chosen.append(split)
    return chosen


def strata(values: Sequence[float], count: int) -> list[int]:
    """Quantile bin (0..count-1) of each value."""
    ranked = sorted(range(len(values)), key=values.__getitem__)
    bins = [0] * len(values)
    for rank, index in enumerate(ranked):
        bins[index] = rank * count // max(1, len(values))
    return bins


@dataclass
class SplitReport:
    names: tuple[str, ...]
    ratios: list[float]
    by: str  # "hours" or "rows"
    groups: int
    ungrouped: int  # rows without the --group-by field: each is a group of its own
    rows: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        measure = self.seconds if self.by == "hours" else self.rows
        total = sum(measure) or 1
        return {
            "ratios_of": self.by, "groups": self.groups, "rows_without_group": self.ungrouped,
            "splits": [{"name": n, "target": r, "rows": rows, "hours": sec / 3600, "share": m / total}
                       for n, r, rows, sec, m in zip(self.names, self.ratios, self.rows, self.seconds, measure)],
        }


@dataclass
class _Groups:
    """Pass 1: a group per row, and each group's rows and seconds."""

    of_row: array = field(default_factory=lambda: array("l"))
    rows: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    ids: dict[Any, int] = field(default_factory=dict)
    ungrouped: int = 0
    undurated: int = 0

    def add(self, record: dict[str, Any], group_by: str | None) -> None:
        key = record.get(group_by) if group_by else None
        if key is None:
            self.ungrouped += group_by is not None
            group = len(self.rows)
        else:
            group = self.ids.setdefault(key if isinstance(key, (str, int, float)) else dumps(key), len(self.rows))
        if group == len(self.rows):
            self.rows.append(0)
            self.seconds.append(0.0)
        duration = record.get("duration")
        self.undurated += duration is None
        self.rows[group] += 1
        self.seconds[group] += duration or 0.0
        self.of_row.append(group)


def split_manifest(path: Path, out_dir: Path, ratios: list[float], names: tuple[str, ...], *, seed: int = 0,
                   group_by: str | None = None, stratify: int = 0,
                   on_error: Callable[[LineError], None]) -> SplitReport:
    groups = _Groups()
    for row in ManifestReader(path, on_error=on_error):
        groups.add(row.record, group_by)
    if not groups.of_row:
        raise AsrctlError(f"{path}: no rows to split")
    by_hours = groups.undurated == 0
    weights = groups.seconds if by_hours else [float(n) for n in groups.rows]
    order = list(range(len(groups.rows)))
    random.Random(seed).shuffle(order)
    bins = strata([s / n for s, n in zip(groups.seconds, groups.rows)], stratify) if stratify > 1 else [0] * len(order)
    split_of = array("b", bytes(len(order)))
    for b in sorted(set(bins)):
        members = [g for g in order if bins[g] == b]
        for group, split in zip(members, assign(weights, ratios, members)):
            split_of[group] = split

    # Pass 2: each row to its group's split (bad lines were reported in pass 1).
    report = SplitReport(names, ratios, "hours" if by_hours else "rows", len(groups.rows), groups.ungrouped,
                         [0] * len(names), [0.0] * len(names))
    with ExitStack() as stack:
        outputs = [out_dir / f"{name}.jsonl" for name in names]
        files = [stack.enter_context(AtomicWriter(o)) for o in outputs]
        rebase = Rebaser(outputs[0])
        for index, row in enumerate(ManifestReader(path, on_error=lambda error: None)):
            split = split_of[groups.of_row[index]]
            files[split].write(dumps(rebase(row.record, row.base_dir)) + "\n")
            report.rows[split] += 1
            report.seconds[split] += row.record.get("duration") or 0.0
    return report
