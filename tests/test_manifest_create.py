"""`asrctl manifest create`: audio found recursively, durations from headers, transcripts and speakers paired."""

import os

from manifest_helpers import invoke, read_jsonl, write_wav

from asrctl.testing import run_cli


def make_corpus(root):
    write_wav(root / "spk1" / "a.wav", 1.0)
    write_wav(root / "spk1" / "b.flac", 1.5)
    write_wav(root / "spk2" / "deep" / "c.wav", 0.5)
    write_wav(root / "spk2" / "d.wav", 2.0)
    write_wav(root / ".hidden" / "x.wav", 1.0)
    (root / "spk1" / "a.txt").write_text("  hello\n   world  \n", encoding="utf-8")
    (root / "spk2" / "deep" / "c.lab").write_text("from a lab file", encoding="utf-8")
    (root / "spk2" / "broken.wav").write_bytes(b"not audio at all")
    (root / "notes.md").write_text("not audio")


def test_sidecars_speakers_relative_paths_and_unreadable_files(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    out = tmp_path / "manifests" / "all.jsonl"
    result = run_cli("manifest", "create", str(corpus), "-o", str(out), "--speaker-from", r"^(spk\d)/")
    assert result.returncode == 3, result.stderr
    assert f"{corpus / 'spk2' / 'broken.wav'}: cannot read audio headers" in result.stderr
    rows = read_jsonl(out)
    assert [r["audio_filepath"] for r in rows] == [
        "../corpus/spk1/a.wav", "../corpus/spk1/b.flac", "../corpus/spk2/d.wav", "../corpus/spk2/deep/c.wav"]
    assert [r["duration"] for r in rows] == [1.0, 1.5, 2.0, 0.5]
    assert rows[0]["text"] == "hello world" and rows[3]["text"] == "from a lab file"
    assert "text" not in rows[1] and "text" not in rows[2]
    assert [r["speaker"] for r in rows] == ["spk1", "spk1", "spk2", "spk2"]
    assert all((out.parent / r["audio_filepath"]).is_file() for r in rows)


def test_transcript_table_by_relative_path_stem_or_absolute_and_named_speaker_group(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    table = tmp_path / "transcripts.tsv"
    table.write_text("path\ttext\n"
                     "spk1/a.wav\tfrom the table\n"  # wins over the sidecar
                     "b\tby stem\n"
                     f"{corpus / 'spk2' / 'd.wav'}\tby absolute path, with \"quotes\"\n"
                     "spk2/deep/c\twithout extension\n"
                     "nowhere.wav\tmatches nothing\n", encoding="utf-8")
    out = tmp_path / "all.jsonl"
    result = invoke("manifest", "create", corpus, "-o", out, "--transcripts", table, "--absolute",
                    "--ext", "wav,flac", "--speaker-from", r"(?P<speaker>spk\d)/.*/")
    assert result.exit_code == 3  # broken.wav
    rows = {os.path.basename(r["audio_filepath"]): r for r in read_jsonl(out)}
    assert all(os.path.isabs(r["audio_filepath"]) for r in rows.values())
    assert rows["a.wav"]["text"] == "from the table" and rows["b.flac"]["text"] == "by stem"
    assert rows["d.wav"]["text"] == 'by absolute path, with "quotes"'
    assert rows["c.wav"]["text"] == "without extension"
    assert rows["c.wav"]["speaker"] == "spk2" and "speaker" not in rows["a.wav"]  # the regex wants a subfolder
    assert "transcripts matching no audio" in result.stderr


def test_ext_filter_and_bad_options(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    out = tmp_path / "flac.jsonl"
    assert invoke("manifest", "create", corpus, "-o", out, "--ext", "flac").exit_code == 0
    assert [r["audio_filepath"] for r in read_jsonl(out)] == ["corpus/spk1/b.flac"]
    bad = invoke("manifest", "create", corpus, "-o", out, "--speaker-from", "(a)(b)")
    assert bad.exit_code == 2 and "group named 'speaker'" in bad.stderr
    none = invoke("manifest", "create", corpus, "-o", out, "--ext", "opus")
    assert none.exit_code == 1 and "no audio files" in none.stderr
