"""`manifest filter`: keep the rows that pass every condition, streaming line by line.

`--where` takes `FIELD OP VALUE` (ops <= >= < > == !=), parsed here and never evaluated as code.
VALUE is a number, or a string (quoted or not). A number compares numerically with numeric fields;
a string field compares as text (so `speaker==1089` matches the string "1089" too). FIELD may name
a nested field with dots (`meta.snr>10`). A row without the field fails the condition; a field
that no row has is a mistake (a typo, most likely), reported instead of an empty output.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter
from asrctl.data.paths import Rebaser
from asrctl.data.rows import LineError, ManifestReader, dumps, no_such_field

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
}
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(<=|>=|==|!=|<|>)\s*(.*?)\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MISSING = object()


@dataclass(frozen=True)
class Condition:
    """One --where test. `number` is set when VALUE is numeric; `text` is VALUE as a string."""

    field: str
    op: str
    text: str
    number: float | None

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.text}"

    def __call__(self, record: dict[str, Any]) -> bool:
        value = _lookup(record, self.field)
        compare = OPERATORS[self.op]
        if self.number is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            return compare(value, self.number)
        if isinstance(value, str):
            return compare(value, self.text)
        return False


def parse_condition(text: str) -> Condition:
    """`wer<=20`, `speaker == "spk 1"`, `meta.snr>10`; raises ValueError for anything else."""
    match = _CONDITION.match(text)
    if not match:
        raise ValueError(f"expected FIELD OP VALUE with OP one of {' '.join(OPERATORS)}, got {text!r}")
    field, op, value = match.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return Condition(field, op, value[1:-1], None)
    if not value:
        raise ValueError(f"{text!r} has no value to compare with")
    return Condition(field, op, value, float(value) if _NUMBER.match(value) else None)


def _lookup(record: dict[str, Any], field: str) -> Any:
    value: Any = record
    for part in field.split(".") if field not in record else [field]:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


@dataclass(frozen=True)
class Test:
    """A named predicate: rows failing it are dropped and counted under its name."""

    name: str
    keep: Callable[[dict[str, Any]], bool]
    condition: Condition | None = None  # a --where condition, whose field some row must have


def duration_tests(low: float | None, high: float | None) -> list[Test]:
    tests = []
    if low is not None:
        tests.append(Test(f"duration < {low:g}", lambda r: (r.get("duration") is not None and r["duration"] >= low)))
    if high is not None:
        tests.append(Test(f"duration > {high:g}", lambda r: (r.get("duration") is not None and r["duration"] <= high)))
    return tests


def text_tests(include: re.Pattern[str] | None, field: str = "text") -> list[Test]:
    if include is None:
        return []
    return [Test(f"{field} does not match {include.pattern!r}", lambda r: bool(include.search(r.get(field) or "")))]


def where_tests(conditions: list[Condition]) -> list[Test]:
    return [Test(f"not {c}", c, c) for c in conditions]


@dataclass
class FilterReport:
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> rows
    changed: Counter = field(default_factory=Counter)  # substitution -> rows it changed


def filter_manifest(path: Path, output: Path, tests: list[Test], on_error: Callable[[LineError], None],
                    substitutions: list[tuple[str, Callable[[str], str]]] | None = None) -> FilterReport:
    """Stream `path` to `output`, keeping rows that pass every test; the first failing test names the drop.
    `substitutions` ((field, rewrite), in order) change rows before they are tested."""
    report = FilterReport()
    rebase = Rebaser(output)
    unseen = {t.condition.field: t.condition for t in tests if t.condition}  # --where fields no row had yet
    fields: set[str] = set()  # the rows' own fields, to suggest from
    with AtomicWriter(output) as f:
        for row in ManifestReader(path, on_error=on_error):
            record = row.record
            if unseen:
                fields.update(record)
                unseen = {name: c for name, c in unseen.items() if _lookup(record, name) is _MISSING}
            for name, rewrite in substitutions or []:
                value = record.get(name)
                if isinstance(value, str) and (new := rewrite(value)) != value:
                    record = {**record, name: new}
                    report.changed[str(rewrite)] += 1
            failed = next((t.name for t in tests if not t.keep(record)), None)
            if failed:
                report.dropped[failed] += 1
            else:
                report.kept += 1
                f.write(dumps(rebase(record, row.base_dir)) + "\n")
        if unseen and fields:  # raised inside: the output is not written
            name = sorted(unseen)[0]
            raise no_such_field(path, name, f"--where {unseen[name]}", fields)
    return report
