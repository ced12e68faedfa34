"""Header probes that return their failure instead of raising it, for thread pools."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from asrctl.errors import AudioError

if TYPE_CHECKING:
    from asrctl.audio import AudioInfo


def try_probe(path: str | os.PathLike) -> AudioInfo | AudioError:
    from asrctl.audio import probe  # numpy and soundfile load when a probe runs, not with the plugins

    try:
        return probe(path)
    except AudioError as error:
        return error
