"""The audio a row means, as a file of its own: its segment (offset, duration) and channel cut out.

Consumers that cannot read a part of a file (a Hugging Face Audio column, a tar member, NeMo's
loaders for a channel) get the clip instead: mono, at the file's own rate, as 24-bit FLAC.
"""

from __future__ import annotations

import io
from typing import Any

from asrctl.data.paths import AUDIO_KEY


def is_part(record: dict[str, Any]) -> bool:
    """Whether the row means less than its whole file: a segment, or one channel."""
    return record.get("offset") is not None or record.get("channel") is not None


def clip_suffix(record: dict[str, Any]) -> str:
    """What tells a part's clip from the others of its file in a name: `_OFFSET_DURATION`, `_chN`."""
    suffix = ""
    if record.get("offset") is not None:
        suffix += f"_{_number(record['offset'])}_{_number(record['duration'])}"
    if record.get("channel") is not None:
        suffix += f"_ch{record['channel']}"
    return suffix


def _number(value: float) -> str:
    return str(value).replace(".", "_").replace("-", "m")


def clip_flac(record: dict[str, Any]) -> bytes:
    """The row's audio (absolute audio_filepath) as FLAC bytes."""
    import soundfile as sf

    from asrctl.data.audio import load_audio, probe

    path = record[AUDIO_KEY]
    rate = probe(path).sample_rate
    offset = record.get("offset")
    audio = load_audio(path, rate, offset=float(offset or 0),
                       duration=float(record["duration"]) if offset is not None else None,
                       channel=record.get("channel"))
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="FLAC", subtype="PCM_24")
    return buffer.getvalue()
