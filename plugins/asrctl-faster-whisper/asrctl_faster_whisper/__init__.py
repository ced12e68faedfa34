"""asrctl-faster-whisper: Whisper on CTranslate2 through faster-whisper, as a third-party plugin.

It uses asrctl's public API only. faster_whisper and ctranslate2 are imported when the backend is
loaded, not here: this module is imported by every `asrctl` command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asrctl import BackendSpec, Transcriber, hookimpl, offline_unless_reachable


def load(model: str, **options: Any) -> Transcriber:
    from asrctl_faster_whisper import package_index

    if not model.startswith(package_index.PREFIX):  # a package index's model needs no Hub
        offline_unless_reachable(model)  # before the hub client reads HF_HUB_OFFLINE
    from asrctl_faster_whisper import backend

    return backend.load(model, **options)


@hookimpl
def register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(BackendSpec(
        name="faster-whisper",
        load=load,
        description="Whisper on CTranslate2 (faster-whisper): int8/float16 compute types, VAD, timestamps, long-form; "
                    "-m pypi:base takes Whisper base from a package index",
        options=frozenset({"language", "task", "detect_language", "beam_size", "timestamps"}),
        item_settings=frozenset({"language", "task"}),  # a prompt per item, in either way through the model
        window=30.0,  # Whisper's input window
        pads_to_window=True,
        extra_options={
            "compute_type": "CTranslate2 compute type: int8, int8_float16, int8_float32, float16, bfloat16, "
                            "float32... [default: --dtype]",
            "vad": "true: drop non-speech with Silero VAD before decoding (faster-whisper's vad_filter)",
            "batched": "true: decode a batch's utterances of up to 30 s in one generate() call "
                       "[default: true on GPUs; false on CPU, where it measured slower]",
        },
    ))
