"""The `silero` segmenter: Silero VAD from the silero-vad package, whose models ship in its wheel
(nothing is downloaded). Its defaults are those faster-whisper's batched pipeline gives it.

The package's sequence model runs a block of 512 frames (16 s) in one ONNX Runtime call, where the
streaming model takes a Python step per 32-ms frame: the same speech regions, several times faster
(docs/benchmarks.md), which is what lets segmentation keep pace with a batched CTranslate2 model."""

from __future__ import annotations

from typing import Any

from asrctl.errors import AsrctlError
from asrctl.hookspecs import hookimpl
from asrctl.specs import SAMPLE_RATE, SegmenterSpec

OPTIONS = {
    "threshold": "speech probability above which a frame is speech (default 0.5)",
    "min_silence": "seconds of silence that end a speech region (default 0.16)",
    "min_speech": "shortest speech region kept, in seconds (default 0)",
    "speech_pad": "seconds of audio kept on each side of a region (default 0.4)",
}
DEFAULTS = {"threshold": 0.5, "min_silence": 0.16, "min_speech": 0.0, "speech_pad": 0.4}


class SileroSegmenter:
    def __init__(self, **settings: float) -> None:
        import torch

        threads = torch.get_num_threads()
        from silero_vad import get_speech_timestamps_sequence, load_silero_vad

        torch.set_num_threads(threads)  # silero_vad sets 1 on import: the model in this process would crawl
        self.find = get_speech_timestamps_sequence
        self.model = load_silero_vad(sequence=True)
        self.settings = settings

    def speech(self, audio, max_seconds: float) -> list[tuple[float, float]]:
        s = self.settings
        found = self.find(
            audio, self.model, threshold=s["threshold"], sampling_rate=SAMPLE_RATE,
            min_speech_duration_ms=int(s["min_speech"] * 1000), min_silence_duration_ms=int(s["min_silence"] * 1000),
            speech_pad_ms=int(s["speech_pad"] * 1000), max_speech_duration_s=max_seconds,
        )
        return [(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE) for r in found]


def load(**options: Any) -> SileroSegmenter:
    settings = dict(DEFAULTS)
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise AsrctlError(f"-V {name}={value}: expected a number >= 0")
        settings[name] = float(value)
    if not 0 < settings["threshold"] < 1:
        raise AsrctlError(f"-V threshold={settings['threshold']}: expected a probability between 0 and 1")
    try:
        return SileroSegmenter(**settings)
    except ImportError as exc:
        raise AsrctlError(f"the silero segmenter needs silero-vad 6.2.2 or later with onnxruntime ({exc}): "
                          "pip install 'asrctl[vad]'") from None


@hookimpl
def register_segmenters(register) -> None:
    register(SegmenterSpec(name="silero", load=load, options=OPTIONS,
                           description="Silero VAD (silero-vad package, model in the wheel), on the CPU"))
