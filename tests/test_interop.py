"""Data made by other tools, with those tools' own APIs, through `asrctl manifest convert`: every row
points at the audio its source meant (samples compared with what the library itself loads for that
cut, segment or channel), keeps its text and fields, and `asrctl infer` reads that same audio."""

import io
import os

import numpy as np
import pytest
import soundfile as sf
from manifest_helpers import invoke, read_jsonl, write_jsonl

from asrctl.data.audio import load_audio

SR = 16000
SECONDS = 4.0


def signal(seed: int, channels: int = 1) -> np.ndarray:
    """Noise under an envelope that rises (falls on odd channels), so each span has its own level."""
    n = int(SECONDS * SR)
    rising = np.linspace(0.05, 0.9, n, dtype=np.float32)
    noise = np.random.default_rng(seed).uniform(-1, 1, (n, channels)).astype(np.float32)
    envelopes = np.stack([rising if c % 2 == 0 else rising[::-1] * 0.5 for c in range(channels)], axis=1)
    return noise * envelopes


@pytest.fixture
def audio(tmp_path):
    """mono.wav and a stereo call.wav (one speaker per channel), float WAV: exact samples everywhere."""
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(folder / "mono.wav", signal(1)[:, 0], SR, subtype="FLOAT")
    sf.write(folder / "call.wav", signal(2, channels=2), SR, subtype="FLOAT")
    return folder


def read_by_asrctl(row: dict, base) -> np.ndarray:
    """The audio a manifest row means, read as `asrctl infer` reads it."""
    path = os.path.join(base, row["audio_filepath"])
    segment = {"offset": row["offset"], "duration": row["duration"]} if "offset" in row else {}
    return load_audio(path, SR, channel=row.get("channel"), **segment)


def assert_same_audio(got: np.ndarray, want: np.ndarray) -> None:
    assert abs(len(got) - len(want)) <= 1, (len(got), len(want))  # a sample of rounding at an edge
    n = min(len(got), len(want))
    np.testing.assert_allclose(got[:n], want[:n], atol=1e-6)


def mono(samples: np.ndarray) -> np.ndarray:
    """A library's (channels, samples) as asrctl hands it to a model: channels averaged."""
    return samples.mean(axis=0) if samples.ndim == 2 else samples


def convert(source, out, *extra):
    result = invoke("manifest", "convert", source, "--to", "nemo", "-o", out, "-q", *extra)
    return result, (read_jsonl(out) if out.exists() else [])


def assert_infer_reads(infer, manifest, out, wants: dict[str, np.ndarray]) -> None:
    """`asrctl infer` with the probe backend gets, for each row (by text), the audio in `wants`."""
    result = infer(manifest, out, env={"PROBE_MEAN": "1"})
    assert result.returncode == 0, result.stderr
    for row in read_jsonl(out):
        n, _, _, _, _, mean = row["pred_text"].split()
        want = wants[row["text"]]
        assert abs(int(n) - len(want)) <= 1 and float(mean) == pytest.approx(np.abs(want).mean(), abs=1e-4), row


# Lhotse


def lhotse_sets(audio):
    lhotse = pytest.importorskip("lhotse")
    recordings = lhotse.RecordingSet.from_dir(audio, "*.wav")
    supervisions = lhotse.SupervisionSet.from_segments([
        lhotse.SupervisionSegment("call-A", "call", 0.5, 1.0, channel=0, text="left speaker", speaker="A",
                                  gender="f", language="en", custom={"snr": 20}),
        lhotse.SupervisionSegment("call-B", "call", 1.25, 1.5, channel=1, text="right speaker", speaker="B"),
        lhotse.SupervisionSegment("mono-top", "mono", 0.0, 1.0, channel=0, text="from the top"),
        lhotse.SupervisionSegment("mono-in", "mono", 2.0, 1.5, channel=0, text="from inside"),
    ])
    return lhotse, recordings, supervisions


def by_text(cuts) -> dict[str, np.ndarray]:
    """What Lhotse loads for each supervision's own cut, by its text."""
    return {cut.supervisions[0].text: mono(cut.load_audio())
            for cut in cuts.trim_to_supervisions(keep_overlapping=False)}


def test_lhotse_channels_windows_from_zero_and_fields(tmp_path, audio, infer):
    lhotse, recordings, supervisions = lhotse_sets(audio)
    cuts = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    # Windows as users cut them: one starting at 0 and one inside the recording.
    windows = lhotse.CutSet.from_cuts([cut.truncate(offset=0.0, duration=1.0)
                                       for cut in cuts if cut.recording.id == "mono"]
                                      + [cut.truncate(offset=2.0, duration=1.5)
                                         for cut in cuts if cut.recording.id == "mono"])
    sources = {"multi": cuts, "windows": windows}
    for name, cutset in sources.items():
        path = tmp_path / f"{name}.jsonl.gz"
        cutset.to_file(path)
        result, rows = convert(path, tmp_path / f"{name}.jsonl")
        assert result.exit_code == 0, result.output
        wants = by_text(cutset)
        assert sorted(r["text"] for r in rows) == sorted(wants)
        for row in rows:
            assert_same_audio(read_by_asrctl(row, tmp_path), wants[row["text"]])
        assert_infer_reads(infer, tmp_path / f"{name}.jsonl", tmp_path / f"{name}.pred.jsonl", wants)
    rows = {r["text"]: r for r in read_jsonl(tmp_path / "multi.jsonl")}
    assert (rows["left speaker"]["channel"], rows["right speaker"]["channel"]) == (0, 1)
    assert rows["from the top"]["offset"] == 0.0 and "channel" not in rows["from the top"]  # a mono file
    assert {k: rows["left speaker"][k] for k in ("speaker", "gender", "lang", "snr", "offset", "duration")} == \
        {"speaker": "A", "gender": "f", "lang": "en", "snr": 20, "offset": 0.5, "duration": 1.0}
    assert read_jsonl(tmp_path / "windows.jsonl")[0]["offset"] == 0.0


def test_lhotse_channel_rows_are_not_duplicates(tmp_path, audio):
    lhotse, recordings, supervisions = lhotse_sets(audio)
    same_span = lhotse.SupervisionSet.from_segments([
        lhotse.SupervisionSegment(f"both-{c}", "call", 0.5, 1.0, channel=c, text=f"channel {c}") for c in (0, 1)])
    call = lhotse.RecordingSet.from_recordings([recordings["call"]])
    lhotse.CutSet.from_manifests(recordings=call, supervisions=same_span).to_file(tmp_path / "cuts.jsonl.gz")
    assert convert(tmp_path / "cuts.jsonl.gz", tmp_path / "both.jsonl")[0].exit_code == 0
    report = invoke("manifest", "validate", tmp_path / "both.jsonl", "--json")
    assert report.exit_code == 0, report.output  # two channels of one span are two utterances


def test_lhotse_perturbed_and_padded_cuts_are_rendered_or_refused(tmp_path, audio, infer):
    lhotse, recordings, supervisions = lhotse_sets(audio)
    trimmed = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions) \
        .trim_to_supervisions(keep_overlapping=False)
    sped, padded = trimmed.perturb_speed(1.1), trimmed.pad(duration=3.0)
    for name, cutset in (("sped", sped), ("padded", padded)):
        path = tmp_path / f"{name}.jsonl.gz"
        cutset.to_file(path)  # a padded cut on the first line: the format is still detected
        refused, rows = convert(path, tmp_path / f"{name}.jsonl")
        assert refused.exit_code == 3 and rows == []
        reason = "Speed(factor=1.1)" if name == "sped" else "MixedCut"
        assert reason in refused.stderr and "--extract-to" in refused.stderr, refused.stderr
        done, rows = convert(path, tmp_path / f"{name}.jsonl", "--extract-to", tmp_path / f"{name}-audio")
        assert done.exit_code == 0, done.output
        wants = by_text(cutset)  # a row is a supervision's span (padding around it is not the utterance)
        assert sorted(r["text"] for r in rows) == sorted(wants)
        for row in rows:
            assert "offset" not in row and "channel" not in row  # the rendered file is the utterance
            assert_same_audio(read_by_asrctl(row, tmp_path), wants[row["text"]])
        assert_infer_reads(infer, tmp_path / f"{name}.jsonl", tmp_path / f"{name}.pred.jsonl", wants)
    sped_rows = {r["text"]: r for r in read_jsonl(tmp_path / "sped.jsonl")}
    assert sped_rows["left speaker"]["duration"] == pytest.approx(1.0 / 1.1, abs=1e-3)


def test_lhotse_recording_and_supervision_sets(tmp_path, audio):
    lhotse, recordings, supervisions = lhotse_sets(audio)
    recordings.to_file(tmp_path / "corpus_recordings_dev.jsonl.gz")
    alone = tmp_path / "alone_supervisions_dev.jsonl.gz"
    supervisions.to_file(alone)
    refused = invoke("manifest", "convert", alone, "--to", "nemo", "-o", tmp_path / "x.jsonl")
    assert refused.exit_code == 1 and "SupervisionSet" in refused.stderr and "RecordingSet" in refused.stderr
    # Recordings alone: a row per recording, the whole file.
    result, rows = convert(tmp_path / "corpus_recordings_dev.jsonl.gz", tmp_path / "recordings.jsonl")
    assert result.exit_code == 0, result.output
    assert sorted((os.path.basename(r["audio_filepath"]), r["duration"]) for r in rows) == \
        [("call.wav", SECONDS), ("mono.wav", SECONDS)] and not any("offset" in r or "channel" in r for r in rows)
    # With the supervisions beside them, joined (either file may be given).
    supervisions.to_file(tmp_path / "corpus_supervisions_dev.jsonl.gz")
    wants = by_text(lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions))
    for given in ("corpus_recordings_dev.jsonl.gz", "corpus_supervisions_dev.jsonl.gz"):
        result, rows = convert(tmp_path / given, tmp_path / "joined.jsonl")
        assert result.exit_code == 0, result.output
        assert sorted(r["text"] for r in rows) == sorted(wants)
        for row in rows:
            assert_same_audio(read_by_asrctl(row, tmp_path), wants[row["text"]])


# Hugging Face datasets


def test_hf_datasets_by_path_embedded_dict_and_parquet(tmp_path, audio, infer, monkeypatch):
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    files = [str(audio / "mono.wav"), str(audio / "call.wav")]
    texts = ["the mono file", "the stereo call"]
    # By path (save_to_disk embeds the bytes, naming them by basename), no duration column.
    by_path = datasets.Dataset.from_dict({"audio": files, "text": texts}).cast_column("audio", datasets.Audio())
    by_path.save_to_disk(tmp_path / "by_path")
    # Embedded bytes under a name that a file in the working folder also has, with other audio in it.
    embedded = datasets.Dataset.from_dict({
        "audio": [{"bytes": (audio / "mono.wav").read_bytes(), "path": "clip.wav"}], "text": ["embedded"]})
    embedded.cast_column("audio", datasets.Audio()).save_to_disk(tmp_path / "embedded")
    work = tmp_path / "work"
    work.mkdir()
    sf.write(work / "clip.wav", np.zeros(800, np.float32), SR)
    monkeypatch.chdir(work)
    datasets.DatasetDict({"train": by_path, "test": by_path}).save_to_disk(tmp_path / "dict")
    parquet = tmp_path / "embedded.parquet"
    from datasets.table import embed_table_storage
    by_path.with_format("arrow").map(embed_table_storage, batched=True).to_parquet(parquet)
    wants = {"the mono file": mono(sf.read(files[0], dtype="float32")[0]),
             "the stereo call": sf.read(files[1], dtype="float32", always_2d=True)[0].mean(axis=1),
             "embedded": sf.read(io.BytesIO((audio / "mono.wav").read_bytes()), dtype="float32")[0]}

    refused = invoke("manifest", "convert", tmp_path / "dict", "--to", "nemo", "-o", tmp_path / "x.jsonl")
    assert refused.exit_code == 1 and "DatasetDict" in refused.stderr and str(tmp_path / "dict" / "t") in refused.stderr
    sources = {"by_path": tmp_path / "by_path", "embedded": tmp_path / "embedded", "parquet": parquet,
               "split": tmp_path / "dict" / "train"}
    for name, source in sources.items():
        out = tmp_path / f"{name}.jsonl"
        result, rows = convert(source, out, "--extract-to", tmp_path / f"{name}-audio")
        assert result.exit_code == 0, result.output
        for row in rows:
            path = os.path.join(tmp_path, row["audio_filepath"])
            assert os.path.commonpath([path, tmp_path / f"{name}-audio"]) == str(tmp_path / f"{name}-audio")
            assert row["duration"] == pytest.approx(len(wants[row["text"]]) / SR)  # probed: NeMo needs it
            assert_same_audio(read_by_asrctl(row, tmp_path), wants[row["text"]])
        assert_infer_reads(infer, out, tmp_path / f"{name}.pred.jsonl", wants)


def test_hf_dataset_written_by_asrctl_holds_clips_and_survives_its_audio(tmp_path, audio):
    datasets = pytest.importorskip("datasets")
    rows = [{"audio_filepath": "audio/call.wav", "duration": 1.0, "offset": 0.5, "channel": 1, "text": "right"},
            {"audio_filepath": "audio/mono.wav", "duration": 1.5, "offset": 2.0, "text": "inside"}]
    manifest = write_jsonl(tmp_path / "in.jsonl", rows)
    assert invoke("manifest", "convert", manifest, "--to", "hf-datasets", "-o", tmp_path / "hf", "-q").exit_code == 0
    wants = {r["text"]: read_by_asrctl(r, tmp_path) for r in rows}
    stored = datasets.load_from_disk(str(tmp_path / "hf")).cast_column("audio", datasets.Audio(decode=False))
    for example in stored:  # an HF user decoding `audio` gets the utterance, not the recording
        clip, rate = sf.read(io.BytesIO(example["audio"]["bytes"]), dtype="float32")
        assert rate == SR
        np.testing.assert_allclose(clip, wants[example["text"]], atol=1e-6)  # 24-bit FLAC
    # The source audio is gone: the embedded clips are read, already cut (offset and channel kept aside).
    moved = tmp_path / "moved"
    os.replace(tmp_path / "hf", moved)
    for name in ("call.wav", "mono.wav"):
        (audio / name).unlink()
    result, back = convert(moved, tmp_path / "back.jsonl", "--extract-to", tmp_path / "unpacked")
    assert result.exit_code == 0, result.output
    for row in back:
        assert "offset" not in row and "channel" not in row and "source_audio_offset" in row
        np.testing.assert_allclose(read_by_asrctl(row, tmp_path), wants[row["text"]], atol=1e-6)


# Kaldi


def test_kaldi_segments_from_zero_and_a_pipe_entry(tmp_path, audio, infer):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec1 {audio / 'mono.wav'}\nrec2 cat {audio / 'call.wav'} |\n"
                                  f"rec3 cat {audio / 'mono.wav'} | sox -t wav - -t wav - |\n")
    (data / "segments").write_text("utt1 rec1 0.00 1.25\nutt2 rec1 2.00 3.50\nutt3 rec2 0.00 1.00\n"
                                   "utt4 rec3 0.00 1.00\n")
    (data / "text").write_text("utt1 first words\nutt2 later words\nutt3 piped words\nutt4 shell words\n")
    (data / "utt2spk").write_text("utt1 spk1\nutt2 spk1\nutt3 spk2\nutt4 spk2\n")
    mono_audio = sf.read(audio / "mono.wav", dtype="float32")[0]
    call = sf.read(audio / "call.wav", dtype="float32")[0].mean(axis=1)
    wants = {"first words": mono_audio[:20000], "later words": mono_audio[32000:56000], "piped words": call[:16000]}

    refused, rows = convert(data, tmp_path / "plain.jsonl")
    assert refused.exit_code == 3 and "--allow-commands" in refused.stderr
    assert f"{data / 'segments'}:3: utt3: wav.scp entry is a command" in refused.stderr
    assert sorted(r["text"] for r in rows) == ["first words", "later words"]
    assert [r["offset"] for r in rows if r["text"] == "first words"] == [0.0]  # kept: a segment from 0

    result, rows = convert(data, tmp_path / "kaldi.jsonl", "--allow-commands", "--extract-to", tmp_path / "piped")
    assert result.exit_code == 3  # the shell pipeline is still refused, with its reason
    assert "utt4" in result.stderr and "needs a shell (|)" in result.stderr
    assert sorted(r["text"] for r in rows) == sorted(wants)
    for row in rows:
        assert "offset" in row and row["speaker"] in ("spk1", "spk2")
        assert_same_audio(read_by_asrctl(row, tmp_path), wants[row["text"]])
    assert_infer_reads(infer, tmp_path / "kaldi.jsonl", tmp_path / "kaldi.pred.jsonl", wants)


# WebDataset


def test_webdataset_transcripts_in_txt_members(tmp_path, audio, infer):
    webdataset = pytest.importorskip("webdataset")
    flac = io.BytesIO()
    sf.write(flac, sf.read(audio / "mono.wav", dtype="float32")[0], SR, format="FLAC", subtype="PCM_24")
    shards = tmp_path / "shards"
    shards.mkdir()
    with webdataset.TarWriter(str(shards / "shard-000000.tar")) as sink:
        sink.write({"__key__": "utt1", "flac": flac.getvalue(), "txt": "text in a txt member"})
        sink.write({"__key__": "utt2", "wav": (audio / "call.wav").read_bytes(), "json": {"speaker": "s2"},
                    "transcript": "json without text"})
    wants = {"text in a txt member": sf.read(io.BytesIO(flac.getvalue()), dtype="float32")[0],
             "json without text": sf.read(audio / "call.wav", dtype="float32")[0].mean(axis=1)}
    result, rows = convert(shards, tmp_path / "wds.jsonl", "--extract-to", tmp_path / "unpacked")
    assert result.exit_code == 0, result.output
    assert sorted(r["text"] for r in rows) == sorted(wants)
    assert [r.get("speaker") for r in rows] == [None, "s2"]
    for row in rows:
        assert row["duration"] == pytest.approx(SECONDS)
        assert_same_audio(read_by_asrctl(row, tmp_path), wants[row["text"]])
    assert_infer_reads(infer, tmp_path / "wds.jsonl", tmp_path / "wds.pred.jsonl", wants)


# Writers


def test_channel_rows_are_written_as_their_channel(tmp_path, audio):
    rows = [{"audio_filepath": "audio/call.wav", "duration": SECONDS, "channel": c, "text": f"channel {c}"}
            for c in (0, 1)]
    manifest = write_jsonl(tmp_path / "in.jsonl", rows)
    call = sf.read(audio / "call.wav", dtype="float32")[0]
    assert invoke("manifest", "shard", manifest, "--out-dir", tmp_path / "tarred", "--num-shards", "1",
                  "-q").exit_code == 0
    result, back = convert(tmp_path / "tarred", tmp_path / "back.jsonl", "--extract-to", tmp_path / "unpacked")
    assert result.exit_code == 0, result.output
    for row in back:  # mono clips, as NeMo's loaders want them
        channel = row["source_audio_channel"]
        clip, _ = sf.read(os.path.join(tmp_path, row["audio_filepath"]), dtype="float32")
        assert clip.ndim == 1 and row["text"] == f"channel {channel}"
        np.testing.assert_allclose(clip, call[:, channel], atol=1e-6)
    lhotse = pytest.importorskip("lhotse")
    assert invoke("manifest", "convert", manifest, "--to", "lhotse", "-o", tmp_path / "cuts.jsonl.gz",
                  "-q").exit_code == 0
    for cut in lhotse.CutSet.from_file(tmp_path / "cuts.jsonl.gz"):
        channel = int(cut.supervisions[0].text.split()[-1])
        np.testing.assert_allclose(cut.load_audio()[0], call[:, channel], atol=1e-6)
    for fmt, out in (("kaldi", tmp_path / "kaldi"), ("csv", tmp_path / "rows.csv")):
        assert invoke("manifest", "convert", manifest, "--to", fmt, "-o", out, "-q").exit_code == 0
        result, again = convert(out, tmp_path / f"{fmt}.jsonl")
        assert sorted((r["text"], r["channel"]) for r in again) == [("channel 0", 0), ("channel 1", 1)]


def test_kaldi_command_that_fails_is_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec1 cat {tmp_path / 'missing.wav'} |\n")
    result, rows = convert(data, tmp_path / "out.jsonl", "--allow-commands", "--extract-to", tmp_path / "x")
    assert result.exit_code == 3 and rows == []
    assert f"{data / 'wav.scp'}:1: rec1:" in result.stderr and "failed with exit code 1" in result.stderr


def test_shard_downmix_stores_multichannel_files_as_mono(tmp_path, audio):
    manifest = write_jsonl(tmp_path / "in.jsonl", [{"audio_filepath": "audio/call.wav", "duration": SECONDS,
                                                   "text": "both"}])
    call = sf.read(audio / "call.wav", dtype="float32")[0]
    for flag, channels in (((), 2), (("--downmix",), 1)):
        out = tmp_path / f"tarred{len(flag)}"
        assert invoke("manifest", "shard", manifest, "--out-dir", out, "--num-shards", "1", "-q", *flag).exit_code == 0
        result, rows = convert(out, tmp_path / "back.jsonl", "--extract-to", tmp_path / f"unpacked{len(flag)}")
        assert result.exit_code == 0, result.output
        stored, _ = sf.read(os.path.join(tmp_path, rows[0]["audio_filepath"]), dtype="float32", always_2d=True)
        assert stored.shape[1] == channels
        np.testing.assert_allclose(stored.mean(axis=1), call.mean(axis=1), atol=1e-6)


def test_trainers_train_on_a_rows_channel(tmp_path, audio):
    row = {"audio_filepath": str(audio / "call.wav"), "offset": 0.5, "duration": 1.0, "channel": 1, "text": "right"}
    want = sf.read(audio / "call.wav", dtype="float32")[0][8000:24000, 1]
    from asrctl_hf.training.data import SpeechDataset, select

    split = select("train", [row], [], labels=lambda text: [1], unfit=lambda duration, ids: None,
                   min_duration=None, max_duration=None)
    dataset = SpeechDataset(split.utterances, features=lambda samples: {"samples": samples})
    np.testing.assert_allclose(dataset[0]["samples"], want, atol=1e-6)
    # NeMo's loaders choose channels per dataset: the nemo trainer hands such a row over as a clip.
    from asrctl_nemo.training import _one_channel

    clip = _one_channel(row, tmp_path / "clips", [])
    assert "channel" not in clip and "offset" not in clip and clip["text"] == "right"
    np.testing.assert_allclose(sf.read(clip["audio_filepath"], dtype="float32")[0], want, atol=1e-6)
