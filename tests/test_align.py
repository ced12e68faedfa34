"""`asrctl align` end to end on a tiny CTC model: every word of each row's text, as written, placed
in order inside its audio, sentences from them, error rows, resume, and backends that cannot align."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import srt
from probe_backend import read_jsonl

from asrctl.testing import run_cli

SPEECH = Path(__file__).parent / "data" / "speech"


def align(manifest: Path, out: Path, model: Path, *extra: str):
    return run_cli("align", str(manifest), "-b", "hf-ctc", "-m", str(model), "-o", str(out), "--device", "cpu",
                   "--num-workers", "0", *extra)


def test_every_word_placed_in_order_sentences_error_rows_and_resume(tmp_path, tiny_ctc):
    rows = [json.loads(line) for line in (SPEECH / "manifest.jsonl").read_text().splitlines()]
    rows = [{**r, "audio_filepath": str(SPEECH / r["audio_filepath"])} for r in rows[:2] + rows[-1:]]
    rows[0]["text"] = "In 1984, the fox (quick) jumped! 🙂"  # digits, brackets, an emoji: outside the vocabulary
    rows.append({"audio_filepath": str(tmp_path / "missing.flac"), "duration": 1.0, "text": "gone"})
    manifest = tmp_path / "in.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "aligned.jsonl"
    result = align(manifest, out, tiny_ctc)
    assert result.returncode == 3 and "missing.flac" in result.stderr, result.stderr
    aligned = read_jsonl(out)
    for row in aligned[:3]:
        duration = sf.info(row["audio_filepath"]).duration
        words = row["words"]
        assert [w["word"] for w in words] == row["text"].split()
        assert all(0 <= w["start"] <= w["end"] <= duration + 0.02 for w in words)
        assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:]))
        assert " ".join(s["text"] for s in row["segments"]) == row["text"]
        assert [s["start"] for s in row["segments"]][0] == words[0]["start"]
    first = aligned[0]["words"]
    assert first[1]["word"] == "1984," and first[1]["score"] > 0  # matched as "nineteen eighty four"
    assert first[4]["word"] == "(quick)" and first[4]["score"] > 0  # brackets left out of the matching only
    assert first[-1]["word"] == "🙂" and first[-1]["score"] == 0 and first[-1]["start"] == first[-2]["end"]
    assert len(aligned[2]["segments"]) >= 5  # long01: its sentences
    assert "words" not in aligned[3] and "missing.flac" in aligned[3]["error"] and aligned[3]["text"] == "gone"
    # run again: nothing to align; its subtitles written from the words (a transcript and its video)
    again = align(manifest, out, tiny_ctc, "-f", "srt", "--output-dir", str(tmp_path / "subs"))
    assert "already done" in again.stderr and read_jsonl(out) == aligned
    cues = list(srt.parse((tmp_path / "subs" / "long01.srt").read_text()))
    assert " ".join(c.content.replace("\n", " ") for c in cues) == aligned[2]["text"]
    assert cues[0].start.total_seconds() == aligned[2]["words"][0]["start"]
    assert not (tmp_path / "subs" / "missing.srt").exists()


def test_audio_too_short_for_its_text_fails_its_row_only(tmp_path, tiny_ctc):
    short = tmp_path / "short.flac"
    sf.write(short, sf.read(SPEECH / "utt01.flac", dtype="float32")[0][:8000], 16000)  # 0.5 s: 25 frames
    rows = [{"audio_filepath": str(short), "text": "this sentence has far more letters than half a second holds"},
            {"audio_filepath": str(short), "text": "ok"}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = align(tmp_path / "in.jsonl", tmp_path / "out.jsonl", tiny_ctc)
    assert result.returncode == 3
    first, second = read_jsonl(tmp_path / "out.jsonl")
    assert "too short for its text" in first["error"] and [w["word"] for w in second["words"]] == ["ok"]


def test_a_backend_that_cannot_align_is_one_line(tmp_path, probe_site):
    result = run_cli("align", str(SPEECH / "manifest.jsonl"), "-b", "probe", "-m", "none",
                     "-o", str(tmp_path / "out.jsonl"), pythonpath=probe_site)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "backend 'probe' cannot align a known text; backends that can: hf-ctc, hf-whisper" in line
    assert not (tmp_path / "out.jsonl").exists()


def test_whisper_aligns_a_long_recording_window_by_window(tmp_path, tiny_whisper):
    """A random tiny Whisper, whose decoder holds 64 positions: long01's 125 words go in windows,
    every word placed once, in order, inside the audio."""
    out = tmp_path / "out.jsonl"
    result = run_cli("align", str(SPEECH / "manifest.jsonl"), "-b", "hf-whisper", "-m", str(tiny_whisper),
                     "-o", str(out), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for row in read_jsonl(out):
        words = row["words"]
        assert [w["word"] for w in words] == row["text"].split()
        assert all(0 <= w["start"] <= w["end"] <= row["duration"] + 0.02 for w in words)
        assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))


ALIGNED = Path(__file__).parent / "data" / "aligned"


def laid_out(path: Path, names: list[str], gaps: list[float]) -> list[tuple[float, float]]:
    """The fixtures `names`, trimmed to their sound, after silences of `gaps` seconds (over a low noise
    floor): each sentence's true start and end."""
    parts, spans, clock = [], [], 0.0
    for name, gap in zip(names, gaps):
        audio = sf.read(SPEECH / f"{name}.flac", dtype="float32")[0]
        loud = np.flatnonzero(np.abs(audio) > 0.02)
        audio = audio[loud[0] : loud[-1] + 1]
        parts += [np.zeros(round(gap * 16000), "float32"), audio]
        clock += round(gap * 16000) / 16000
        spans.append((clock, clock + len(audio) / 16000))
        clock += len(audio) / 16000
    parts.append(np.zeros(16000, "float32"))
    recording = np.concatenate(parts)
    recording += np.random.default_rng(0).normal(0, 0.0005, len(recording)).astype("float32")
    sf.write(path, recording, 16000)
    return spans


@pytest.mark.real_model
def test_whisper_base_places_sentences_and_words(tmp_path, test_assets):
    texts = {json.loads(line)["audio_filepath"]: json.loads(line)["text"]
             for line in (SPEECH / "manifest.jsonl").read_text().splitlines()}
    names = ["utt01", "utt04", "utt02", "utt06"]
    sentences = laid_out(tmp_path / "talk.flac", names, [0.6, 1.4, 0.9, 2.2])
    words = json.loads((ALIGNED / "words.json").read_text())  # words synthesised one by one, known gaps
    rows = [{"audio_filepath": str(tmp_path / "talk.flac"), "text": " ".join(texts[f"{n}.flac"] for n in names)},
            {"audio_filepath": str(ALIGNED / "words.flac"), "text": words["text"]}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_cli("align", str(tmp_path / "in.jsonl"), "-b", "hf-whisper", "-m",
                     str(test_assets / "whisper-base-hf"), "-o", str(tmp_path / "out.jsonl"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    talk, spoken = read_jsonl(tmp_path / "out.jsonl")
    assert len(talk["segments"]) == len(sentences) and len(spoken["segments"]) == len(words["true_segments"])
    boundaries = [abs(s[key] - t[i]) for s, t in zip(talk["segments"], sentences)
                  for i, key in enumerate(("start", "end"))]
    boundaries += [abs(s[key] - t[key]) for s, t in zip(spoken["segments"], words["true_segments"])
                   for key in ("start", "end")]
    starts = [abs(w["start"] - t["start"]) for w, t in zip(spoken["words"], words["true_words"])]
    print(f"median sentence-boundary error {np.median(boundaries):.3f} s, word-start error {np.median(starts):.3f} s")
    assert np.median(boundaries) <= 0.1 and np.median(starts) <= 0.15


@pytest.mark.real_model
def test_cut_utterances_transcribe_as_their_own_clips_and_a_wrong_text_is_dropped(tmp_path, test_assets):
    import jiwer

    texts = {json.loads(line)["audio_filepath"]: json.loads(line)["text"]
             for line in (SPEECH / "manifest.jsonl").read_text().splitlines()}
    names = ["utt01", "utt02", "utt03", "utt04", "utt05", "utt06", "utt07", "utt08"]
    laid_out(tmp_path / "a.flac", names[:4], [0.5, 1.1, 0.8, 1.6])
    laid_out(tmp_path / "b.flac", names[4:], [0.7, 0.9, 1.3, 1.0])
    wrong = [texts[f"{n}.flac"] for n in names[4:]]
    wrong[2] = texts["utt01.flac"]  # a sentence swapped for one that is not in this recording
    rows = [{"audio_filepath": str(tmp_path / "a.flac"), "text": " ".join(texts[f"{n}.flac"] for n in names[:4])},
            {"audio_filepath": str(tmp_path / "b.flac"), "text": " ".join(wrong)}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_cli("align", str(tmp_path / "in.jsonl"), "-b", "hf-whisper", "-m",
                     str(test_assets / "whisper-base-hf"), "-o", str(tmp_path / "aligned.jsonl"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    result = run_cli("manifest", "cut", str(tmp_path / "aligned.jsonl"), "-o", str(tmp_path / "cut.jsonl"),
                     "--max-duration", "6")
    assert result.returncode == 0, result.stderr
    assert "align_score below 0.3" in result.stderr
    cut = read_jsonl(tmp_path / "cut.jsonl")
    from_a = " ".join(r["text"] for r in cut if r["audio_filepath"].endswith("a.flac"))
    from_b = " ".join(r["text"] for r in cut if r["audio_filepath"].endswith("b.flac"))
    assert from_a == rows[0]["text"]  # every sentence of the right text, in order
    assert texts["utt01.flac"] not in from_b and from_b  # the swapped sentence's utterance dropped, not the rest
    spoken = [n for n in names if texts[f"{n}.flac"] in from_a + " " + from_b]
    clips = tmp_path / "clips.jsonl"  # the same sentences' own recordings
    clips.write_text("".join(json.dumps({"audio_filepath": str(SPEECH / f"{n}.flac"), "text": texts[f"{n}.flac"]})
                             + "\n" for n in spoken))
    scores = {}
    for name, manifest in (("cut", tmp_path / "cut.jsonl"), ("clips", clips)):
        out = tmp_path / f"{name}.pred.jsonl"
        result = run_cli("infer", str(manifest), "-b", "faster-whisper", "-m", str(test_assets / "whisper-base-ct2"),
                         "--language", "en", "-o", str(out))
        assert result.returncode == 0, result.stderr
        predicted = read_jsonl(out)
        scores[name] = jiwer.wer([normalized(r["text"]) for r in predicted],
                                 [normalized(r["pred_text"]) for r in predicted])
    print(f"WER of the cut utterances {scores['cut']:.4f}, of the clips {scores['clips']:.4f}")
    assert abs(scores["cut"] - scores["clips"]) <= 0.02


def normalized(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def test_a_ctc_model_taught_the_words_places_their_starts(tmp_path):
    """A wav2vec2 CTC model of hidden size 96 taught the word fixture (as the finetune tests teach the
    fixtures) aligns its four sentences' words where they were spoken. Its teaching holds the sentences
    and every run of one to three of their words: a model taught whole sentences only may place a
    sentence's tokens anywhere that keeps their order (runs of it missed the words by 0.5 s), one that
    has heard words alone in their own clips places them where they sound."""
    from tiny_models import build_tiny_ctc

    truth = json.loads((ALIGNED / "words.json").read_text())

    def clip(words: list[dict]) -> dict:
        start, end = words[0]["start"] - 0.1, words[-1]["end"] + 0.1
        return {"audio_filepath": str(ALIGNED / "words.flac"), "offset": round(start, 3),
                "duration": round(end - start, 3), "text": " ".join(w["word"] for w in words),
                "true_starts": [w["start"] - start for w in words]}

    sentences, line = [], 0
    for sentence in truth["true_segments"]:
        count = len(sentence["text"].split())
        sentences.append(truth["true_words"][line : line + count])
        line += count
    spans = [words[i : i + size] for words in sentences for size in (1, 2, 3) for i in range(len(words) - size + 1)]
    train, own = tmp_path / "train.jsonl", tmp_path / "sentences.jsonl"
    train.write_text("".join(json.dumps(clip(words)) + "\n" for words in sentences + spans))
    own.write_text("".join(json.dumps(clip(words)) + "\n" for words in sentences))
    untaught = build_tiny_ctc(tmp_path / "ctc96", hidden_size=96, intermediate_size=192,
                              **dict.fromkeys(("hidden_dropout", "attention_dropout", "activation_dropout",
                                               "feat_proj_dropout", "final_dropout", "layerdrop"), 0.0))
    result = run_cli("finetune", "--quiet", "-b", "hf-ctc", "-m", str(untaught), "--train", str(train), "-o",
                     str(tmp_path / "taught"), "--build-vocab", "--freeze-feature-encoder", "--learning-rate", "5e-3",
                     "--max-steps", "800", "--batch-size", "4", "--set", "training.warmup_steps=20",
                     "--set", "training.spec_augment=false", env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    out = tmp_path / "aligned.jsonl"
    result = align(own, out, tmp_path / "taught")
    assert result.returncode == 0, result.stderr
    errors = [abs(w["start"] - true) for row in read_jsonl(out) for w, true in zip(row["words"], row["true_starts"])]
    print(f"median word-start error {np.median(errors):.3f} s")
    assert len(errors) == len(truth["true_words"]) and np.median(errors) <= 0.1
