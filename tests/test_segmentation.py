"""Long rows cut into speech segments by a voice-activity detector, batched, and joined again."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from manifest_helpers import write_jsonl
from probe_backend import read_jsonl

from asrctl.data.audio import load_audio
from asrctl.infer.segmentation import BLOCK_SECONDS, find_segments, merge, stitch
from asrctl.testing import make_plugin_dist

SPEECH = Path(__file__).parent / "data" / "speech"


def voiced(audio):
    """Where an utterance's voice starts and ends (10 ms frames above 3% of its loudest)."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    on = np.nonzero(rms > 0.03 * rms.max())[0]
    return on[0] * 0.01, (on[-1] + 1) * 0.01


def recording(path, layout, seed=1):
    """Utterances of the fixtures between silences of known length, over a low noise floor:
    `layout` is [(seconds of silence, fixture name or None)]; returns the voiced spans."""
    parts, truth, t = [], [], 0.0
    for gap, name in layout:
        parts.append(np.zeros(int(gap * 16000), np.float32))
        t += gap
        if name:
            audio = load_audio(str(SPEECH / f"{name}.flac"))
            start, end = voiced(audio)
            truth.append((t + start, t + end))
            parts.append(audio)
            t += len(audio) / 16000
    audio = np.concatenate(parts)
    audio += np.random.default_rng(seed).normal(0, 0.002, len(audio)).astype(np.float32)
    sf.write(path, audio, 16000)
    return truth


LAYOUT = [(1.5, "utt01"), (4.0, "utt03"), (2.0, "utt08"), (6.0, "utt02"), (3.0, "utt05"), (1.0, None)]


def test_silero_finds_the_speech_between_known_silences(tmp_path):
    from asrctl.default_plugins.silero import load

    truth = recording(tmp_path / "talk.wav", LAYOUT)
    found = load(min_silence=0.5, speech_pad=0.0).speech(load_audio(str(tmp_path / "talk.wav")), 60.0)
    assert len(found) == len(truth), found
    for (start, end), (true_start, true_end) in zip(found, truth):
        assert abs(start - true_start) <= 0.2 and abs(end - true_end) <= 0.2, (found, truth)


def test_regions_merge_into_segments_up_to_the_window():
    assert merge([(0.0, 4.0), (6.0, 20.0), (25.0, 31.0), (40.0, 41.0)], 30.0) == [(0.0, 20.0), (25.0, 41.0)]
    assert merge([(0.0, 70.0)], 30.0) == [(0.0, 70 / 3), (70 / 3, 140 / 3), (140 / 3, 70.0)]  # too long: cut evenly
    assert stitch([(550.0, 600.0), (600.0, 610.0), (620.0, 630.0)], [600.0]) == [(550.0, 610.0), (620.0, 630.0)]


class Every:
    """A segmenter that calls every second half of each `period` speech."""

    def __init__(self, period):
        self.period = period
        self.calls = []

    def speech(self, audio, max_seconds):
        self.calls.append(len(audio))
        length = len(audio) / 16000
        return [(t + self.period / 2, min(length, t + self.period)) for t in np.arange(0, length, self.period)]


def test_hours_long_audio_is_read_in_blocks_and_regions_cut_by_a_block_edge_joined():
    every = Every(period=100.0)
    duration = 2.5 * BLOCK_SECONDS
    read = lambda start, seconds: np.zeros(int(round(seconds * 16000)), np.float32)  # noqa: E731
    segments = find_segments(every, read, duration, max_seconds=80.0)
    assert every.calls == [int(BLOCK_SECONDS * 16000)] * 2 + [int(BLOCK_SECONDS * 8000)]  # never all of it at once
    assert segments == [(50.0 + 100 * k, 100.0 + 100 * k) for k in range(15)]


@pytest.fixture
def long_rows(tmp_path):
    """Three recordings of 25-40 s (two speakers, silences of 2-6 s) and two short utterances."""
    rows = []
    for i, layout in enumerate([LAYOUT, [(0.5, "utt04"), (5.0, "utt06"), (2.0, "utt07"), (0.5, None)],
                                [(2.0, "utt02"), (3.0, "utt01"), (2.5, "utt03"), (4.0, "utt08"), (1.0, None)]]):
        recording(tmp_path / f"talk{i}.wav", layout, seed=i)
        rows.append({"audio_filepath": f"talk{i}.wav", "id": f"talk{i}"})
    rows.insert(1, {"audio_filepath": str(SPEECH / "utt05.flac"), "id": "short0"})
    rows.append({"audio_filepath": str(SPEECH / "utt07.flac"), "id": "short1"})
    return write_jsonl(tmp_path / "talks.jsonl", rows)


def segment_texts(manifest, max_seconds):
    """What the probe says for each segment of each row, found by the segmenter directly."""
    from asrctl.default_plugins.silero import load

    silero, texts = load(), {}
    for row in read_jsonl(manifest):
        path = str(Path(manifest).parent / row["audio_filepath"])
        audio = load_audio(path)
        spans = find_segments(silero, lambda s, n, audio=audio: audio[int(s * 16000): int(round((s + n) * 16000))],
                              len(audio) / 16000, max_seconds)
        texts[row["id"]] = [(start, load_audio(path, offset=start, duration=end - start)) for start, end in spans]
    return texts


def probe_text(audio):
    return f"{len(audio)} samples peak {float(np.abs(audio).max()):.2f}"


def test_infer_segment_vad_joins_each_rows_segments_in_order_with_times_in_the_rows_time(tmp_path, long_rows, infer):
    out = tmp_path / "out" / "pred.jsonl"
    result = infer(long_rows, out, "--segment", "vad", "--max-segment", "12", env={"PROBE_TIMES": "1"})
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out)
    expected = segment_texts(long_rows, 12.0)
    assert [row["id"] for row in rows] == [row["id"] for row in read_jsonl(long_rows)]
    for row in rows:
        parts = expected[row["id"]]
        assert row["pred_text"] == " ".join(probe_text(audio) for _, audio in parts)
        assert [s["start"] for s in row["pred_segments"]] == [round(start, 2) for start, _ in parts]
        # the probe's own times (to 0.01 s) moved by the segment's start: each segment's last word ends it
        last_words = np.cumsum([len(probe_text(a).split()) for _, a in parts]) - 1
        assert [row["pred_words"][i]["end"] for i in last_words] == [round(start + round(len(a) / 16000, 2), 2)
                                                                     for start, a in parts]
    assert len(expected["talk0"]) >= 3 and all(len(a) <= 12 * 16000 for p in expected.values() for _, a in p)


def test_auto_cuts_only_rows_longer_than_the_backends_window(tmp_path, long_rows, infer):
    whole, auto = tmp_path / "whole.jsonl", tmp_path / "auto.jsonl"
    assert infer(long_rows, whole, "--segment", "none").returncode == 0
    result = infer(long_rows, auto, "--segment", "auto", env={"PROBE_WINDOW": "10"})
    assert result.returncode == 0, result.stderr
    for before, after in zip(read_jsonl(whole), read_jsonl(auto)):
        if before["id"].startswith("short"):  # 2-3 s: as they were
            assert after["pred_text"] == before["pred_text"]
        else:
            assert after["pred_text"].count("samples") > 1


def test_a_failing_segment_fails_its_own_row_naming_the_span(tmp_path, long_rows, infer):
    first_of_talk1 = segment_texts(long_rows, 30.0)["talk1"][0]
    out = tmp_path / "out.jsonl"
    result = infer(long_rows, out, "--segment", "vad", env={"PROBE_FAIL_SAMPLES": str(len(first_of_talk1[1]))})
    assert result.returncode == 3, result.stderr
    rows = {row["id"]: row for row in read_jsonl(out)}
    assert rows["talk1"]["pred_text"] is None
    assert f"(segment {first_of_talk1[0]:.1f}-" in rows["talk1"]["error"] and "probe failure" in rows["talk1"]["error"]
    assert all(row["pred_text"] for key, row in rows.items() if key != "talk1")


def test_a_row_without_speech_is_an_empty_transcript_not_a_hallucination(tmp_path, infer):
    sf.write(tmp_path / "quiet.wav", np.random.default_rng(0).normal(0, 0.002, 16000 * 40).astype(np.float32), 16000)
    manifest = write_jsonl(tmp_path / "in.jsonl", [{"audio_filepath": "quiet.wav"}])
    out = tmp_path / "out.jsonl"
    assert infer(manifest, out, "--segment", "vad").returncode == 0
    assert read_jsonl(out)[0]["pred_text"] == ""


def test_the_ray_engine_gives_the_local_engines_file(tmp_path, long_rows, infer):
    local, ray = tmp_path / "local" / "out.jsonl", tmp_path / "ray" / "out.jsonl"
    assert infer(long_rows, local, "--segment", "vad").returncode == 0
    result = infer(long_rows, ray, "--segment", "vad", "--engine", "ray")
    assert result.returncode == 0, result.stderr
    assert ray.read_bytes() == local.read_bytes()


THIRD_PARTY = """
from asrctl import SegmenterSpec, hookimpl

class Halves:
    def __init__(self, split):
        self.split = split

    def speech(self, audio, max_seconds):
        length = len(audio) / 16000
        return [(0.0, length * self.split), (length * self.split + 1.0, length)]

@hookimpl
def register_segmenters(register):
    register(SegmenterSpec(name="halves", load=lambda split=0.5: Halves(split), options={"split": "where"}))
"""


def test_a_third_party_segmenter_plugs_in_with_its_options(tmp_path, infer):
    site = make_plugin_dist(tmp_path / "site", "asrctl-halves", THIRD_PARTY)
    sf.write(tmp_path / "a.wav", np.full(16000 * 10, 0.1, np.float32), 16000)
    manifest = write_jsonl(tmp_path / "in.jsonl", [{"audio_filepath": "a.wav"}])
    out = tmp_path / "out.jsonl"
    env = {"PYTHONPATH": str(site)}
    result = infer(manifest, out, "--segment", "vad", "--vad", "halves", "-V", "split=0.2", "--max-segment", "5",
                   env=env)
    assert result.returncode == 0, result.stderr
    # 0-2 s, then 3-10 s cut into two of 3.5 s
    assert read_jsonl(out)[0]["pred_text"] == "32000 samples peak 0.10 56000 samples peak 0.10 56000 samples peak 0.10"
    typo = infer(manifest, out, "--segment", "vad", "--vad", "halves", "-V", "splt=0.2", "--overwrite", env=env)
    assert typo.returncode == 1 and "did you mean 'split'" in typo.stderr, typo.stderr
    from asrctl.testing import run_cli

    listed = json.loads(run_cli("plugins", "--json", pythonpath=site).stdout)
    [halves] = [row for row in listed if row["name"] == "asrctl-halves"]
    assert halves["segmenters"] == ["halves"] and halves["segmenter_options"] == {"halves": {"split": "where"}}


def test_segmenting_settings_are_part_of_the_job(tmp_path, long_rows, infer):
    out = tmp_path / "out.jsonl"
    assert infer(long_rows, out, "--segment", "vad").returncode == 0
    again = infer(long_rows, out, "--segment", "none")  # another job: not "already done"
    assert again.returncode == 1 and "--overwrite" in again.stderr, again.stderr
    misplaced = infer(long_rows, tmp_path / "x.jsonl", "-V", "threshold=0.4")
    assert misplaced.returncode == 1 and "--segment none" in misplaced.stderr


def test_manifest_segment_refuses_an_option_its_segmenter_lacks(tmp_path, long_rows):
    from asrctl.testing import run_cli

    result = run_cli("manifest", "segment", str(long_rows), "-o", str(tmp_path / "s.jsonl"), "-V", "treshold=0.6")
    assert result.returncode == 1 and not (tmp_path / "s.jsonl").exists()
    assert "unknown -V option 'treshold' (did you mean 'threshold'?)" in result.stderr, result.stderr


def test_killed_mid_job_the_rerun_gives_the_uninterrupted_output(tmp_path, long_rows, infer, probe_site):
    import signal

    from asrctl.testing import interrupt_when

    clean, out = tmp_path / "clean" / "out.jsonl", tmp_path / "out" / "out.jsonl"
    args = ["--segment", "vad", "--max-segment", "6", "--batch-size", "2"]
    assert infer(long_rows, clean, *args).returncode == 0
    partial = out.with_name(out.name + ".partial")
    some_rows = lambda: partial.exists() and len(partial.read_text().splitlines()) >= 2  # noqa: E731
    code, stderr = interrupt_when(["infer", str(long_rows), "-b", "probe", "-m", "none", "-o", str(out), "--device",
                                   "cpu", *args], some_rows, signal.SIGKILL,
                                  env={"PYTHONPATH": str(probe_site), "PROBE_SLEEP": "0.3"})
    assert code == -signal.SIGKILL and not out.exists(), stderr
    kept = len(partial.read_text().splitlines()) - 1
    assert 1 <= kept < 5  # killed with some rows saved, not all
    resumed = infer(long_rows, out, *args)
    assert resumed.returncode == 0 and out.read_bytes() == clean.read_bytes(), resumed.stderr


def test_manifest_segment_rows_transcribed_and_joined_give_what_infer_segment_gives(tmp_path, long_rows, infer):
    from asrctl.testing import run_cli

    segments = tmp_path / "seg" / "segments.jsonl"
    result = run_cli("manifest", "segment", str(long_rows), "-o", str(segments), "--max-segment", "12", "-q")
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(segments)
    assert all(row["duration"] <= 12 and "text" not in row for row in rows)
    order = [row["id"] for row in read_jsonl(long_rows)]
    places = [(order.index(row["id"]), row["segment_index"]) for row in rows]
    assert places == sorted(set(places))  # sources in order, each one's segments in order, none twice
    each = tmp_path / "each.jsonl"
    assert infer(segments, each).returncode == 0
    whole = tmp_path / "whole.jsonl"
    assert infer(long_rows, whole, "--segment", "vad", "--max-segment", "12").returncode == 0
    joined = {}
    for row in read_jsonl(each):
        joined.setdefault(row["id"], []).append(row["pred_text"])
    assert {row["id"]: row["pred_text"] for row in read_jsonl(whole)} == {key: " ".join(texts)
                                                                          for key, texts in joined.items()}


def test_a_rows_language_and_how_sure_the_detector_was_survive_the_join():
    from asrctl.infer.segmentation import join
    from asrctl.specs import Transcript

    joined = join([(0.0, Transcript("hallo", language="de", language_probability=0.9)),
                   (30.0, Transcript("welt", language="de", language_probability=0.7)),
                   (60.0, Transcript("ok", language="en", language_probability=0.99)),
                   (90.0, Transcript("", language=None))])
    assert (joined.text, joined.language) == ("hallo welt ok", "de")
    assert joined.language_probability == pytest.approx(0.8)
