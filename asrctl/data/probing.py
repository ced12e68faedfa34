"""Header probes that return their failure instead of raising it, for thread pools."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from asrctl.data.paths import AUDIO_KEY
from asrctl.errors import AudioError

if TYPE_CHECKING:
    from asrctl.data.audio import AudioInfo


def probe_or_error(path: str | os.PathLike) -> AudioInfo | AudioError:
    """The file's header facts, or why they cannot be read."""
    from asrctl.data.audio import probe  # numpy and soundfile load when a probe runs, not with the plugins

    try:
        return probe(path)
    except AudioError as error:
        return error


def probed_duration(record: dict) -> float | AudioError:
    """The length of the audio a row without `duration` means: its file's, less its offset."""
    info = probe_or_error(record[AUDIO_KEY])
    if isinstance(info, AudioError):
        return info
    return max(info.duration - float(record.get("offset") or 0), 0.0)
