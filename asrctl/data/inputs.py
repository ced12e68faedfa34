"""What `asrctl infer` is given on its command line: one manifest, or audio files, folders (searched
for audio files, recursively) and glob patterns. A file's kind is told from its content: JSON lines
make a manifest, audio that soundfile or PyAV can open is audio; anything else gets one line."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asrctl.data.probing import probe_or_error
from asrctl.errors import AsrctlError, AudioError

AUDIO_EXTENSIONS = ("wav", "flac", "mp3", "ogg", "opus", "m4a", "aac", "webm", "mp4", "wma", "aiff", "aif", "sph")
_GLOB_CHARS = ("*", "?", "[")


@dataclass
class Inputs:
    manifest: Path | None = None
    audio: list[Path] = field(default_factory=list)


def find_audio(root: Path, extensions: Iterable[str] = AUDIO_EXTENSIONS,
               keep: Iterable[str] = ()) -> tuple[list[Path], set[str]]:
    """Audio files under root, by extension (sorted, hidden ones skipped), and the files beside them
    whose extension is in `keep` (a transcript's .txt)."""
    wanted = {f".{e.lower().lstrip('.')}" for e in extensions}
    kept_suffixes = set(keep)
    audio: list[Path] = []
    kept: set[str] = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            suffix = os.path.splitext(name)[1].lower()
            if suffix in wanted:
                audio.append(Path(folder, name))
            elif suffix in kept_suffixes:
                kept.add(os.path.join(folder, name))
    return audio, kept


def is_manifest(path: Path) -> bool:
    """Whether the file's first line is a JSON object, as a manifest's (or a JSON record format's) is."""
    with open(path, "rb") as f:
        first = next((line for line in f if line.strip()), b"")
    try:
        return isinstance(json.loads(first.decode("utf-8-sig")), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def resolve_inputs(arguments: Iterable[str]) -> Inputs:
    """The manifest or the audio files the arguments name; one line for a name that is neither, and
    for a manifest given together with audio."""
    inputs = Inputs()
    seen: set[str] = set()
    manifests: list[Path] = []
    for argument in arguments:
        for path in _expand(argument):
            if path.is_dir():
                files, _ = find_audio(path)
                if not files:
                    raise AsrctlError(f"{path}: a folder without audio files ({', '.join(AUDIO_EXTENSIONS)})")
            elif _is_audio(path):
                files = [path]
            else:
                manifests.append(path)
                continue
            for file in files:
                if str(file.resolve()) not in seen:
                    seen.add(str(file.resolve()))
                    inputs.audio.append(file)
    if manifests and inputs.audio:
        raise AsrctlError(f"{manifests[0]} is a manifest and {inputs.audio[0]} is audio: give one manifest, "
                          "or audio files and folders, not both (asrctl manifest create makes a manifest of a folder)")
    if len(manifests) > 1:
        raise AsrctlError(f"{len(manifests)} manifests ({manifests[0]}, {manifests[1]}...): give one at a time, "
                          "or join them first with asrctl manifest merge")
    inputs.manifest = manifests[0] if manifests else None
    return inputs


def _expand(argument: str) -> list[Path]:
    path = Path(argument).expanduser()
    if path.exists():
        return [path]
    if any(char in argument for char in _GLOB_CHARS):
        matches = sorted(glob.glob(os.path.expanduser(argument), recursive=True))
        if not matches:
            raise AsrctlError(f"{argument}: no file matches this pattern")
        return [Path(match) for match in matches]
    raise AsrctlError(f"{argument}: no such file or folder")


def _is_audio(path: Path) -> bool:
    """Audio, told from the content: a manifest is not, whatever its name; a file named as audio that
    cannot be decoded is (its error names the reason); another file is audio when a probe opens it,
    text is taken for a manifest (whose reader names its format), and anything else gets one line."""
    if is_manifest(path):
        return False
    if path.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS:
        return True
    probed = probe_or_error(path)
    if not isinstance(probed, AudioError):
        return True
    with open(path, "rb") as f:
        head = f.read(4096)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not a multi-byte character cut at the end of the block
            raise AsrctlError(f"{path}: neither a manifest (JSON lines) nor audio that can be decoded "
                              f"({probed})") from None
    return False
