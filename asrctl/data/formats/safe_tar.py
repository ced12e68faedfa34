"""Unpacking tar members without ever writing outside the target folder.

Only regular files are unpacked. A member is refused when its name is absolute or has a `..`
part, when it is a link (symbolic or hard), a device or a FIFO, or when the path it would land on
leaves the target through a link already there. The stdlib's own "data" filter (Python 3.12,
backported to 3.8.17+) is applied as well where it exists. Files are written atomically.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from asrctl.atomic import AtomicWriter
from asrctl.errors import AsrctlError

_DRIVE = re.compile(r"^[A-Za-z]:")  # C:\x or C:x would be absolute (or drive-relative) on Windows


class UnsafeMember(AsrctlError):
    """A tar member that would write outside the target folder, or is not a plain file."""


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why `member` must not be unpacked, or None."""
    name = member.name
    if not member.isfile():
        kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk() else
                "a device" if member.isdev() else "a directory" if member.isdir() else "not a regular file")
        return f"{name!r} is {kind}"
    if not name or name.startswith(("/", "\\")) or _DRIVE.match(name):
        return f"{name!r} is an absolute name"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return f"{name!r} climbs out with '..'"
    return None


def extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> Path:
    """Unpack one regular-file member under `target`; raises UnsafeMember for anything else."""
    problem = member_problem(member)
    if problem:
        raise UnsafeMember(problem)
    if hasattr(tarfile, "data_filter"):
        try:
            member = tarfile.data_filter(member, str(target))
        except tarfile.FilterError as exc:
            raise UnsafeMember(f"{member.name!r}: {exc}") from None
    root = os.path.realpath(target)
    destination = Path(root, member.name)
    if os.path.commonpath([root, os.path.realpath(destination.parent)]) != root:
        raise UnsafeMember(f"{member.name!r} would land outside {target} through a link")
    source = tar.extractfile(member)
    assert source is not None  # a regular file always has data
    with source, AtomicWriter(destination, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    return destination
