"""Training audio augmentation, the same for every trainer: speed perturbation and additive noise.

Applied to training utterances only, as they are decoded (in the data-loader workers), never to
validation. Each process draws from a generator seeded by the recipe's seed and the seed torch
gives the process (a worker's own, which torch draws from the run's seed), so a run with the same
seed and settings hears the same augmented audio.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from asrctl.data.audio import SAMPLE_RATE, load_audio
from asrctl.errors import AsrctlError
from asrctl.train.settings import default

DEFAULT_SNR: tuple[float, float] = default("augment.snr")
DEFAULT_NOISE_PROB: float = default("augment.noise_prob")


@dataclass(frozen=True)
class NoiseClip:
    audio: str
    offset: float = 0.0
    duration: float | None = None


@dataclass
class Augmentation:
    """`speeds`: one drawn per utterance, 1.1 playing it 10% faster (and higher, as sox's `speed`
    and Kaldi's perturbation do); a speed that would make it longer than `max_seconds` (a model's
    input window) is not drawn for it. `noise`: clips, one added to a share `noise_prob` of the
    utterances at a signal-to-noise ratio drawn from `snr` (dB), looped where shorter."""

    speeds: tuple[float, ...] = ()
    noise: tuple[NoiseClip, ...] = ()
    snr: tuple[float, float] = DEFAULT_SNR
    noise_prob: float = DEFAULT_NOISE_PROB
    seed: int = 0
    max_seconds: float | None = None
    _generator: tuple[int, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        rng = self._rng()
        if self.speeds:
            fits = [s for s in self.speeds
                    if self.max_seconds is None or len(audio) / s <= self.max_seconds * SAMPLE_RATE]
            speed = fits[rng.integers(len(fits))] if fits else 1.0
            if speed != 1.0:
                import soxr

                audio = soxr.resample(audio, SAMPLE_RATE * speed, SAMPLE_RATE, quality="HQ")
        if self.noise and rng.random() < self.noise_prob:
            clip = self.noise[rng.integers(len(self.noise))]
            audio = add_noise(audio, _noise(clip), float(rng.uniform(*self.snr)), rng)
        return np.ascontiguousarray(audio, dtype=np.float32)

    def _rng(self) -> np.random.Generator:
        """This process's generator: made on first use in each (a forked worker gets its own)."""
        pid = os.getpid()
        if self._generator is None or self._generator[0] != pid:
            self._generator = (pid, np.random.default_rng([self.seed, _process_seed()]))
        return self._generator[1]


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`audio` with a random stretch of `noise` (looped where shorter) added at `snr_db`; silent
    audio or noise leaves it as it is."""
    if not len(audio) or not len(noise):
        return audio
    start = int(rng.integers(len(noise)))
    span = np.resize(np.roll(noise, -start), len(audio))  # resize repeats it
    signal, power = float(np.mean(audio.astype(np.float64) ** 2)), float(np.mean(span.astype(np.float64) ** 2))
    if signal == 0 or power == 0:
        return audio
    return audio + span * math.sqrt(signal / (power * 10 ** (snr_db / 10)))


@lru_cache(maxsize=64)  # per process; noise sets are many short clips, or few long ones
def _noise(clip: NoiseClip) -> np.ndarray:
    return load_audio(clip.audio, offset=clip.offset, duration=clip.duration)


def _process_seed() -> int:
    import torch

    worker = torch.utils.data.get_worker_info()
    return int(worker.seed if worker is not None else torch.initial_seed()) % 2**63


def augmentation(augment: dict[str, Any], *, seed: int, unpack_to: Path,
                 max_seconds: float | None = None) -> Augmentation | None:
    """The recipe's augment section as an Augmentation (None when it asks for none), its noise
    manifest read in any registered format."""
    speeds, snr, prob = checked(augment)
    noise = noise_clips(augment["noise"], unpack_to) if augment.get("noise") else ()
    if not speeds and not noise:
        return None
    return Augmentation(speeds, noise, snr, prob, seed, max_seconds)


def checked(augment: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, float], float]:
    """The speeds, SNR range and noise share of a recipe's augment section; a wrong value is one line."""
    try:
        speeds = tuple(float(s) for s in _listed(augment.get("speeds")))
    except ValueError:
        raise AsrctlError(f"augment.speeds={augment.get('speeds')!r}: expected factors such as 0.9,1.0,1.1") from None
    if any(not 0.5 <= s <= 2.0 for s in speeds):
        raise AsrctlError(f"augment.speeds={list(speeds)}: speeds are factors between 0.5 and 2 (0.9, 1.0, 1.1)")
    try:
        snr = tuple(float(x) for x in _listed(augment.get("snr") or DEFAULT_SNR))
    except ValueError:
        raise AsrctlError(f"augment.snr={augment.get('snr')!r}: expected LOW,HIGH in dB, e.g. 5,20") from None
    if len(snr) == 1:
        snr = (snr[0], snr[0])
    if len(snr) != 2 or snr[0] > snr[1]:
        raise AsrctlError(f"augment.snr={list(snr)}: expected LOW,HIGH in dB, e.g. 5,20")
    prob = float(augment.get("noise_prob") if augment.get("noise_prob") is not None else DEFAULT_NOISE_PROB)
    if not 0 <= prob <= 1:
        raise AsrctlError(f"augment.noise_prob={prob}: expected a share between 0 and 1")
    return speeds, (snr[0], snr[1]), prob


def noise_clips(path: str, unpack_to: Path) -> tuple[NoiseClip, ...]:
    """The audio of a noise manifest in any registered format (no transcripts needed): each row's
    file, or its segment."""
    from asrctl.data.paths import AUDIO_KEY
    from asrctl.train.data import read_training_rows

    records, _ = read_training_rows(path, None, unpack_to)
    clips = tuple(NoiseClip(r[AUDIO_KEY], float(r.get("offset") or 0.0), r.get("duration"))
                  for r in records if os.path.isfile(r[AUDIO_KEY]))
    if not clips:
        raise AsrctlError(f"{path}: no noise audio (augment.noise needs rows whose audio files exist)")
    return clips


def _listed(value: Any) -> Sequence[Any]:
    """A list setting given as a list, one number, or "0.9,1.0,1.1"."""
    if value is None:
        return ()
    if isinstance(value, str):
        return [part for part in value.replace(" ", "").split(",") if part]
    return list(value) if isinstance(value, (list, tuple)) else [value]
