"""`asrctl manifest convert`: NeMo JSONL -> every format -> NeMo JSONL keeps paths, durations, text and fields."""

import os
import sys
import tarfile

import pytest
import soundfile as sf
from manifest_helpers import invoke, read_jsonl, write_jsonl, write_wav

from asrctl.data.formats import ids, table

PLAIN_FORMATS = {"hf-datasets": "hf", "hf-parquet": "data.parquet", "lhotse": "cuts.jsonl.gz", "kaldi": "kaldi",
                 "csv": "data.csv", "tsv": "data.tsv"}
TARRED_FORMATS = {"nemo-tarred": "tarred", "webdataset": "wds"}


@pytest.fixture
def corpus(tmp_path):
    """A manifest in data/ with relative paths, extra fields of every JSON kind, and an offset row."""
    audio = tmp_path / "data" / "audio"
    for name, seconds in (("a.wav", 1.0), ("b.wav", 1.5), ("sub/c.wav", 0.75), ("long.wav", 3.0)):
        write_wav(audio / name, seconds)
    rows = [
        {"audio_filepath": "audio/a.wav", "duration": 1.0, "text": "grüße aus köln", "speaker": "spk 1",
         "wer": 12.5, "meta": {"snr": 20, "tags": ["clean"], "gain": 1.66}, "mixed": 3, "spk_id": "1089"},
        {"audio_filepath": "audio/b.wav", "duration": 1.5, "text": "", "speaker": "spk2", "wer": 0.0,
         "meta": {"snr": 5}, "mixed": "three", "flag": True},
        {"audio_filepath": "audio/sub/c.wav", "duration": 0.75, "text": "line\nbreak", "lang": "en"},
        {"audio_filepath": "audio/long.wav", "duration": 1.25, "offset": 0.5, "text": "a segment", "speaker": "spk2"},
    ]
    return write_jsonl(tmp_path / "data" / "in.jsonl", rows), rows


def resolved(rows, folder):
    return [{**r, "audio_filepath": os.path.normpath(folder / r["audio_filepath"])} for r in rows]


def by_path(rows):
    return {(r["audio_filepath"], r.get("offset")): r for r in rows}


@pytest.mark.parametrize("fmt", sorted(PLAIN_FORMATS))
def test_round_trip_keeps_paths_durations_text_and_fields(tmp_path, corpus, fmt):
    manifest, rows = corpus
    converted = tmp_path / "out" / PLAIN_FORMATS[fmt]
    first = invoke("manifest", "convert", manifest, "--to", fmt, "-o", converted, "-q")
    assert first.exit_code == 0, first.output
    back = tmp_path / "back" / "back.jsonl"
    second = invoke("manifest", "convert", converted, "--to", "nemo", "-o", back, "-q")  # format detected
    assert second.exit_code == 0, second.output
    got = read_jsonl(back)
    assert not any(os.path.isabs(r["audio_filepath"]) for r in got)  # written relative to the output
    expected = by_path(resolved(rows, manifest.parent))
    assert by_path(resolved(got, back.parent)) == expected
    if fmt not in ("kaldi",):  # Kaldi's files are sorted by utterance id
        assert [r["text"] for r in got] == [r["text"] for r in rows]


@pytest.mark.parametrize("fmt", sorted(TARRED_FORMATS))
def test_tarred_round_trip_unpacks_the_same_audio_and_keeps_fields(tmp_path, corpus, fmt):
    manifest, rows = corpus
    converted = tmp_path / "out" / TARRED_FORMATS[fmt]
    assert invoke("manifest", "convert", manifest, "--to", fmt, "-o", converted, "-q").exit_code == 0
    back = tmp_path / "back.jsonl"
    needs = invoke("manifest", "convert", converted, "--to", "nemo", "-o", back)
    assert needs.exit_code == 1 and "--extract-to" in needs.stderr
    unpacked = tmp_path / "unpacked"
    result = invoke("manifest", "convert", converted, "--to", "nemo", "-o", back, "--extract-to", unpacked, "-q")
    assert result.exit_code == 0, result.output
    got = {r["text"]: r for r in resolved(read_jsonl(back), back.parent)}
    assert len(got) == len(rows)
    for row in rows:
        out = got[row["text"]]
        source = manifest.parent / row["audio_filepath"]
        assert os.path.commonpath([out["audio_filepath"], unpacked]) == str(unpacked)
        fields = {k: v for k, v in out.items() if k not in ("audio_filepath", "source_audio_offset")}
        assert fields == {k: v for k, v in row.items() if k not in ("audio_filepath", "offset")}
        if "offset" in row:  # cut out of the long file and stored as FLAC
            assert out["source_audio_offset"] == row["offset"]
            assert sf.info(out["audio_filepath"]).duration == pytest.approx(row["duration"], abs=1e-3)
        else:
            assert open(out["audio_filepath"], "rb").read() == source.read_bytes()


def test_stats_reads_tarred_datasets_without_unpacking(tmp_path, corpus):
    manifest, rows = corpus
    for fmt, name in TARRED_FORMATS.items():
        invoke("manifest", "convert", manifest, "--to", fmt, "-o", tmp_path / name, "-q")
        result = invoke("manifest", "stats", tmp_path / name, "--json")
        assert result.exit_code == 0, result.output
        assert '"rows": 4' in result.stdout and f'"format": "{fmt}"' in result.stdout
    assert not list(tmp_path.rglob("*.wav.tmp"))


def test_kaldi_dir_is_sorted_consistent_and_segments_offset_rows(tmp_path, corpus):
    manifest, rows = corpus
    out = tmp_path / "kaldi"
    assert invoke("manifest", "convert", manifest, "--to", "kaldi", "-o", out).exit_code == 0
    files = {name: (out / name).read_text().splitlines()
             for name in ("wav.scp", "text", "utt2spk", "spk2utt", "segments")}
    utts = [line.split()[0] for line in files["utt2spk"]]
    assert utts == sorted(utts) and len(set(utts)) == len(rows)
    assert [line.split()[0] for line in files["segments"]] == utts
    spk2utt = {line.split()[0]: line.split()[1:] for line in files["spk2utt"]}
    assert sorted(u for us in spk2utt.values() for u in us) == utts
    for line in files["utt2spk"]:
        utt, spk = line.split()
        assert utt in spk2utt[spk] and (spk == utt or utt.startswith(spk + "-"))
    assert all(os.path.isabs(line.split(maxsplit=1)[1]) for line in files["wav.scp"])
    segment = next(line.split() for line in files["segments"] if float(line.split()[2]) > 0)
    assert (float(segment[2]), float(segment[3])) == (0.5, 1.75)
    again = tmp_path / "kaldi2"
    invoke("manifest", "convert", manifest, "--to", "kaldi", "-o", again)
    assert (again / "utt2spk").read_text() == (out / "utt2spk").read_text()  # ids are stable


def test_utterance_ids_are_unique_for_same_names_and_repeats():
    a = ids.utterance_id("/x/one/a.wav")
    b = ids.utterance_id("/x/two/a.wav")
    assert a != b and a.startswith("a-") and ids.utterance_id("/x/one/a.wav") == a
    assert ids.utterance_id("/x/one/a.wav", 1.5) != a
    assert list(ids.unique([a, b, a])) == [a, b, f"{a}-2"]
    assert ids.utterance_id("/x/a b.wav", speaker="Jane Doe").startswith("Jane_Doe-a_b-")


@pytest.mark.parametrize("value", ["1089", "", " 12 ", "true", "null", "[1]", '"quoted"', "plain text", "3.5e2"])
def test_csv_cells_keep_strings_that_look_like_json(value):
    cell = table.encode_cell("speaker", value)
    assert table.decode_cell("speaker", cell) == value
    assert table.encode_cell("text", value) == value  # text is always a string: never quoted


def test_bad_csv_rows_are_reported_and_the_rest_converted(tmp_path, corpus):
    manifest, _ = corpus
    data = tmp_path / "data.csv"
    invoke("manifest", "convert", manifest, "--to", "csv", "-o", data)
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:2] + ["only,two"] + lines[2:]) + "\n")
    result = invoke("manifest", "convert", data, "--to", "nemo", "-o", tmp_path / "back.jsonl")
    assert result.exit_code == 3
    assert f"{data}:3: 2 cells for" in result.stderr
    assert len(read_jsonl(tmp_path / "back.jsonl")) == 4


def test_missing_library_is_a_one_line_error(tmp_path, corpus, monkeypatch):
    manifest, _ = corpus
    monkeypatch.setitem(sys.modules, "datasets", None)
    result = invoke("manifest", "convert", manifest, "--to", "hf-parquet", "-o", tmp_path / "x.parquet")
    assert result.exit_code == 1
    assert "format hf-parquet needs the `datasets` package: pip install 'asrctl[formats]'" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "x.parquet").exists()


def test_unknown_format_suggests_a_near_name(tmp_path, corpus):
    manifest, _ = corpus
    result = invoke("manifest", "convert", manifest, "--to", "kaldy", "-o", tmp_path / "k")
    assert result.exit_code == 1 and "did you mean 'kaldi'" in result.stderr


def test_hf_folder_holds_an_audio_column_without_decoding(tmp_path, corpus):
    datasets = pytest.importorskip("datasets")
    manifest, rows = corpus
    out = tmp_path / "hf"
    invoke("manifest", "convert", manifest, "--to", "hf-datasets", "-o", out)
    dataset = datasets.load_from_disk(str(out))
    feature = dataset.features["audio"]
    assert isinstance(feature, datasets.Audio) and feature.sampling_rate == 16000 and not feature.decode
    assert dataset[0]["audio"]["bytes"] == (manifest.parent / rows[0]["audio_filepath"]).read_bytes()
    assert {"audio_filepath", "duration", "text", "wer", "meta", "spk_id"} <= set(dataset.column_names)


def test_tarred_shards_are_plain_tars_with_nemo_names(tmp_path, corpus):
    manifest, _ = corpus
    out = tmp_path / "tarred"
    invoke("manifest", "convert", manifest, "--to", "nemo-tarred", "-o", out)
    rows = read_jsonl(out / "tarred_audio_manifest.json")
    with tarfile.open(out / "audio_0.tar") as tar:
        names = tar.getnames()
    assert [r["audio_filepath"] for r in rows] == ["a.wav", "b.wav", "sub_c.wav", "long_0_5_1_25.flac"]
    assert names == [r["audio_filepath"] for r in rows] and {r["shard_id"] for r in rows} == {0}
