"""Training audio augmentation (asrctl.train.augment): speed, noise at a signal-to-noise ratio, the seed."""

import numpy as np
import pytest

from asrctl import AsrctlError
from asrctl.train.augment import Augmentation, NoiseClip, add_noise, augmentation, checked


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_a_speed_changes_the_length_by_its_factor_and_none_makes_audio_longer_than_the_window():
    audio = tone(2.0)
    fast = Augmentation(speeds=(1.25,))(audio)
    assert abs(len(fast) - len(audio) / 1.25) <= 2
    slow = Augmentation(speeds=(0.8,))(audio)
    assert abs(len(slow) - len(audio) / 0.8) <= 2
    # 0.8 would make 2 s into 2.5 s, past a 2.2 s window: only 1.25 can be drawn
    assert all(len(Augmentation(speeds=(0.8, 1.25), seed=s, max_seconds=2.2)(audio)) < len(audio) for s in range(8))


def test_noise_is_added_at_the_drawn_signal_to_noise_ratio():
    rng = np.random.default_rng(0)
    audio, noise = tone(1.0), rng.normal(0, 1, 8000).astype(np.float32)  # shorter: looped
    mixed = add_noise(audio, noise, 10.0, rng)
    added = mixed - audio
    snr = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01) and len(mixed) == len(audio)
    assert not add_noise(np.zeros(100, np.float32), noise, 10.0, rng).any()  # silence stays silent


def test_the_same_seed_draws_the_same_and_another_seed_not(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "n.wav", np.random.default_rng(1).normal(0, 0.1, 16000), 16000)
    make = lambda seed: Augmentation(speeds=(0.9, 1.0, 1.1), noise=(NoiseClip(str(tmp_path / "n.wav")),),  # noqa: E731
                                     noise_prob=0.5, seed=seed)
    audio = [tone(1.0 + i / 10) for i in range(6)]
    first, again, other = ([a(x) for x in audio] for a in (make(3), make(3), make(4)))
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other))
    assert any(not np.array_equal(x, y) for x, y in zip(first, audio))


def test_settings_are_read_as_lists_or_comma_lists_and_wrong_ones_are_one_line(tmp_path):
    assert checked({"speeds": "0.9,1.0,1.1", "snr": [0, 10], "noise_prob": 0.3}) == ((0.9, 1.0, 1.1), (0.0, 10.0), 0.3)
    assert checked({}) == ((), (5.0, 20.0), 0.5)
    assert augmentation({}, seed=0, unpack_to=tmp_path) is None
    for augment, message in [({"speeds": "fast"}, "expected factors"), ({"speeds": [3]}, "between 0.5 and 2"),
                             ({"snr": "20,5"}, "expected LOW,HIGH"), ({"noise_prob": 2}, "between 0 and 1")]:
        with pytest.raises(AsrctlError, match=message):
            checked(augment)
    empty = tmp_path / "noise.jsonl"
    empty.write_text('{"audio_filepath": "missing.wav", "duration": 1.0}\n')
    with pytest.raises(AsrctlError, match="no noise audio"):
        augmentation({"noise": str(empty)}, seed=0, unpack_to=tmp_path)
