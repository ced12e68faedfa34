"""Scratch files and folders beside an output, and the ones that killed jobs left behind.

Each is named `.OUTPUT.HOST.PID.RANDOM.SUFFIX`. Creating one first removes those of the same
output that a process of this machine made and that no longer runs: a job killed with SIGKILL
cannot clean up after itself, so the next run over the same output does it.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_HOST = socket.gethostname().replace(os.sep, "_")


def scratch_file(near: Path, suffix: str) -> tuple[int, Path]:
    """A new empty file beside `near`, open for writing (file descriptor, path)."""
    while True:
        path = _new_name(near, suffix)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), path
        except FileExistsError:
            continue


def scratch_dir(near: Path, suffix: str = ".tmp") -> Path:
    """A new empty folder beside `near`, with the permissions a plain mkdir gives."""
    while True:
        path = _new_name(near, suffix)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


@contextmanager
def scratch_folder(near: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """scratch_dir, removed with what it holds on leaving."""
    path = scratch_dir(near, suffix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _new_name(near: Path, suffix: str) -> Path:
    near.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(near)
    return near.parent / f".{near.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"


def remove_leftovers(near: Path) -> None:
    """Remove the scratch files and folders of `near` whose process (on this machine) has ended."""
    prefix = f".{near.name}.{_HOST}."
    for name in glob.glob(glob.escape(str(near.parent / prefix)) + "*"):
        pid = Path(name).name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            if os.path.isdir(name) and not os.path.islink(name):
                shutil.rmtree(name, ignore_errors=True)
            else:
                Path(name).unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
