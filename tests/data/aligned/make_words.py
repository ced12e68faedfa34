"""Words synthesised one by one (espeak-ng), trimmed to their sound, laid out with known gaps: how
words.flac and words.json (each word's and sentence's true start and end) were made.

    cd tests/data/aligned && python make_words.py
"""

import io
import json
import subprocess

import numpy as np
import soundfile as sf
import soxr

RATE = 16000
SENTENCES = ["The old lighthouse keeper climbed the stairs every night.",
             "Ships passed safely along the rocky coast.",
             "One winter evening a storm broke the lamp.",
             "He carried a lantern to the top and waited until morning."]


def word_audio(word: str) -> np.ndarray:
    spoken = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "--stdout", word.strip(".,")],
                            capture_output=True, check=True).stdout
    audio, rate = sf.read(io.BytesIO(spoken), dtype="float32")
    audio = soxr.resample(audio, rate, RATE)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    return audio[loud[0] : loud[-1] + 1]


def silence(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    return np.zeros(round(rng.uniform(low, high) * RATE), "float32")


def main() -> None:
    rng = np.random.default_rng(3)
    parts, words, segments = [np.zeros(RATE // 2, "float32")], [], []
    for sentence in SENTENCES:
        first = len(words)
        for word in sentence.split():
            start = sum(map(len, parts)) / RATE
            parts.append(word_audio(word))
            words.append({"word": word, "start": round(start, 4), "end": round(sum(map(len, parts)) / RATE, 4)})
            parts.append(silence(rng, 0.12, 0.3))
        segments.append({"text": sentence, "start": words[first]["start"], "end": words[-1]["end"]})
        parts.append(silence(rng, 0.6, 1.0))
    audio = np.concatenate(parts)
    audio += rng.normal(0, 0.0005, len(audio)).astype("float32")
    sf.write("words.flac", audio, RATE)
    truth = {"audio_filepath": "words.flac", "duration": round(len(audio) / RATE, 4), "text": " ".join(SENTENCES),
             "true_words": words, "true_segments": segments}
    with open("words.json", "w") as f:
        json.dump(truth, f, indent=1)


if __name__ == "__main__":
    main()
