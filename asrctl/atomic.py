"""Output that appears whole or not at all: a file, a folder, or a path a library writes to, made
under a temporary name beside the target (asrctl.scratch) and renamed into place on success. An
error or Ctrl-C leaves an existing target as it was."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from asrctl.errors import AsrctlError
from asrctl.interrupts import raise_if_interrupted
from asrctl.scratch import scratch_dir, scratch_file


class AtomicWriter:
    """Write a file under a temporary name in the same folder and rename it into place on success.

    Readers never see a half-written file, and an error leaves an existing file as it was.
    """

    def __init__(self, path: str | os.PathLike, mode: str = "w") -> None:
        self.path = Path(path)
        self.mode = mode
        self._file: IO | None = None
        self._tmp: str | None = None

    def __enter__(self) -> IO:
        try:
            fd, tmp = scratch_file(self.path, ".tmp")
            self._tmp = str(tmp)
        except OSError as exc:
            raise AsrctlError(f"{self.path}: cannot write ({exc.strerror})") from None
        encoding = None if "b" in self.mode else "utf-8"
        self._file = os.fdopen(fd, self.mode, encoding=encoding)
        return self._file

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._file is not None and self._tmp is not None
        try:
            if exc_type is None:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            if exc_type is None:
                raise_if_interrupted()
                os.chmod(self._tmp, 0o666 & ~_umask())
                os.replace(self._tmp, self.path)
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Fill a temporary sibling folder, then swap it in for `path`; on error `path` stays as it was."""
    tmp = scratch_dir(path)
    try:
        yield tmp
        raise_if_interrupted()
        if path.exists():
            old = scratch_dir(path)
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file name in `path`'s folder, with its suffixes (libraries choose formats by them)."""
    folder = scratch_dir(path)
    try:
        yield folder / path.name
        raise_if_interrupted()
        os.replace(folder / path.name, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
