"""The `silero` segmenter: Silero VAD from the silero-vad package, whose model ships in its wheel
(nothing is downloaded). Its defaults are those faster-whisper's batched pipeline gives it."""

from __future__ import annotations

from typing import Any

from asrctl.errors import AsrctlError
from asrctl.hookspecs import hookimpl
from asrctl.specs import SegmenterSpec

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
        from silero_vad import get_speech_timestamps, load_silero_vad

        torch.set_num_threads(threads)  # silero_vad sets 1 on import: the model in this process would crawl
        self.torch, self.find = torch, get_speech_timestamps
        self.model = load_silero_vad()
        self.settings = settings

    def speech(self, audio, max_seconds: float) -> list[tuple[float, float]]:
        s = self.settings
        with self.torch.inference_mode():
            found = self.find(
                self.torch.from_numpy(audio), self.model, threshold=s["threshold"], sampling_rate=16000,
                min_speech_duration_ms=int(s["min_speech"] * 1000), min_silence_duration_ms=int(s["min_silence"] * 1000),
                speech_pad_ms=int(s["speech_pad"] * 1000), max_speech_duration_s=max_seconds,
            )
        return [(r["start"] / 16000, r["end"] / 16000) for r in found]


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
        raise AsrctlError(f"the silero segmenter needs torch and silero-vad ({exc}): pip install silero-vad") from None


@hookimpl
def register_segmenters(register) -> None:
    register(SegmenterSpec(name="silero", load=load, options=OPTIONS,
                           description="Silero VAD (silero-vad package, model in the wheel), on the CPU"))
