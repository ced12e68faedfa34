"""Resumable row-wise output: results are appended (and fsync'd) to OUT.partial as they come,
then written to OUT in input order, atomically, when every row is done.

The first line of the partial file fingerprints the job (input file, model, options), so a re-run
of the same command resumes and a different command is refused instead of mixing results.
A line cut short by a crash is dropped on resume; every other row is kept and not redone.
A finished output keeps that fingerprint beside it (`.OUT.job`): the same command run again has
nothing to do, and with `retry_errors` it redoes only the rows that have no prediction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from asrctl.atomic import AtomicWriter
from asrctl.data.rows import dumps
from asrctl.errors import AsrctlError


def partial_path(output: Path) -> Path:
    return output.with_name(output.name + ".partial")


def job_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.job")


def file_identity(path: Path) -> dict[str, Any]:
    """What changes when a file is edited: used in job fingerprints."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class ResumableOutput:
    """Append-only store of finished rows keyed by input position; see the module docstring."""

    def __init__(self, output: Path, fingerprint: dict[str, Any], *, overwrite: bool = False,
                 retry_errors: bool = False, pred_key: str = "pred_text") -> None:
        self.output = output
        self.partial = partial_path(output)
        self.fingerprint = fingerprint
        self.rows: dict[int, str] = {}
        self.finished = False  # the output is this job's, complete: nothing to do
        if overwrite:
            self.partial.unlink(missing_ok=True)
            job_path(output).unlink(missing_ok=True)
        elif output.exists() and not self.partial.exists():
            if self._finished_job() != fingerprint:
                raise AsrctlError(f"{output}: already exists, written by another command (other input, model or "
                                  "options); pass --overwrite to replace it, or give another -o")
            rows = output.read_text(encoding="utf-8").splitlines()
            if not retry_errors:
                self.rows = dict(enumerate(rows))
                self.finished = True
                return
            self.partial.write_text(json.dumps({"job": fingerprint}) + "\n" + "".join(
                f"{i}\t{row}\n" for i, row in enumerate(rows) if json.loads(row).get(pred_key) is not None),
                encoding="utf-8")
        self._open()

    def _finished_job(self) -> dict[str, Any] | None:
        try:
            return json.loads(job_path(self.output).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _open(self) -> None:
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            if self.partial.exists():
                self._load()
            else:
                self.partial.write_text(json.dumps({"job": self.fingerprint}) + "\n", encoding="utf-8")
            self._file = open(self.partial, "ab", buffering=0)  # each batch one write, nothing held back
        except OSError as exc:
            raise AsrctlError(f"{self.output}: cannot write output ({exc.strerror})") from None

    def _load(self) -> None:
        data = self.partial.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a line cut short by a crash: drop it before appending
            with open(self.partial, "r+b") as f:
                f.truncate(end)
        lines = data[:end].decode("utf-8").splitlines()
        header = json.loads(lines[0]) if lines else {}
        if len(lines) <= 1:  # nothing finished yet (e.g. the model failed to load): start afresh
            self.partial.write_text(json.dumps({"job": self.fingerprint}) + "\n", encoding="utf-8")
            return
        if header.get("job") != self.fingerprint:
            raise AsrctlError(
                f"{self.partial}: unfinished output of a different job (other input, model or options); "
                "re-run that command to finish it, or pass --overwrite to start again"
            )
        for line in lines[1:]:
            index, _, row = line.partition("\t")
            self.rows[int(index)] = row

    def append(self, results: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Record finished rows durably: one write and fsync per batch.

        A write that fails (a full disk) is taken back whole, and the rows saved before it stay.
        """
        rows = {index: dumps(record) for index, record in results}
        if not rows:
            return
        data = "".join(f"{index}\t{line}\n" for index, line in rows.items()).encode("utf-8")
        size = os.fstat(self._file.fileno()).st_size
        try:
            written = 0
            while written < len(data):
                written += self._file.write(data[written:])
            os.fsync(self._file.fileno())
        except OSError as exc:
            os.ftruncate(self._file.fileno(), size)
            raise AsrctlError(f"{self.partial}: cannot save results ({exc.strerror}); the {len(self.rows)} rows "
                              "saved before are kept: make room and run the same command again") from None
        self.rows.update(rows)

    def finish(self, count: int) -> None:
        """Write OUT in input order once rows 0..count-1 are all done, then drop the partial file."""
        self.close()
        missing = [i for i in range(count) if i not in self.rows]
        if missing:
            raise AsrctlError(f"{self.output}: {len(missing)} rows are not done; re-run to finish them")
        try:
            with AtomicWriter(self.output) as f:
                for i in range(count):
                    f.write(self.rows[i] + "\n")
            with AtomicWriter(job_path(self.output)) as f:
                f.write(json.dumps(self.fingerprint))
        except OSError as exc:
            raise AsrctlError(f"{self.output}: cannot write ({exc.strerror}); every row is saved in {self.partial}: "
                              "make room and run the same command again") from None
        self.partial.unlink(missing_ok=True)  # close() removed it if there were no rows

    def errors(self, pred_key: str) -> Iterator[tuple[int, str]]:
        """(index, reason) of every finished row that has no prediction, in input order."""
        for index in sorted(self.rows):
            record = json.loads(self.rows[index])
            if record.get(pred_key) is None:
                yield index, record.get("error") or "no result"

    def close(self) -> None:
        if not self.finished and not self._file.closed:
            self._file.close()
            if not self.rows:  # nothing finished (the model failed to load): leave no file behind
                self.partial.unlink(missing_ok=True)
