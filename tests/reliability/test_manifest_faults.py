"""Bad manifests: each bad line is reported as FILE:LINE: reason and the good rows are all transcribed."""

import json

from probe_backend import read_jsonl

from asrctl.testing import write_tone_wav


def test_bad_lines_are_named_and_the_rest_of_the_job_goes_on(tmp_path, infer):
    write_tone_wav(tmp_path / "a.wav", 1.0)
    write_tone_wav(tmp_path / "b.wav", 0.5)
    good = {"audio_filepath": "a.wav", "duration": 1.0, "text": "one"}
    lines = [
        json.dumps(good).encode() + b"\r",  # CRLF line ending: read as any other line
        b'{"audio_filepath": "b.wav", "text": "no duration: probed from the header"}',
        b'{"audio_filepath": "a.wav", "duration": 1.0, "text": "a duplicate: transcribed again"}',
        b'{"audio_filepath": "a.wav", "duration": 1.0, "text": "caf\xe9 in latin-1"}',  # not UTF-8
        b'{"text": "no audio_filepath"}',
        b'{"audio_filepath": 5, "duration": 1.0}',
        b'{"audio_filepath": "a.wav", "duration": "long"}',
        b'["a", "list"]',
        b'{"audio_filepath": "a.wav", "duration": 1.0, "text": "cut short',
        b"",  # blank lines are skipped
        json.dumps({**good, "text": "last"}).encode(),
    ]
    manifest = tmp_path / "in.jsonl"
    manifest.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    result = infer(manifest, out)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    rows = read_jsonl(out)
    assert [r["text"] for r in rows] == ["one", "no duration: probed from the header", "a duplicate: transcribed again",
                                         "last"]
    assert [r["pred_text"] for r in rows] == ["16000 samples peak 0.10", "8000 samples peak 0.10",
                                              "16000 samples peak 0.10", "16000 samples peak 0.10"]
    stderr = " ".join(result.stderr.split())  # rich wraps long lines on narrow terminals
    for line in range(4, 10):
        assert f"in.jsonl:{line}:" in stderr, (line, result.stderr)
    assert "in.jsonl:1:" not in stderr and "in.jsonl:11:" not in stderr


def test_an_empty_manifest_gives_an_empty_output(tmp_path, infer):
    manifest = tmp_path / "empty.jsonl"
    manifest.write_bytes(b"")
    result = infer(manifest, tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.jsonl").read_bytes() == b""


def test_relative_paths_resolve_against_the_manifest_not_the_working_directory(tmp_path, infer):
    data = tmp_path / "corpus" / "audio"
    data.mkdir(parents=True)
    write_tone_wav(data / "a.wav", 1.0)
    manifest = tmp_path / "corpus" / "in.jsonl"
    manifest.write_text('{"audio_filepath": "audio/a.wav", "duration": 1.0}\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = infer("../corpus/in.jsonl", "out/pred.jsonl", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    [row] = read_jsonl(elsewhere / "out" / "pred.jsonl")
    assert row["pred_text"] == "16000 samples peak 0.10"
    # the path is rewritten so that it still points at the file from the output's folder
    assert (elsewhere / "out" / row["audio_filepath"]).resolve() == (data / "a.wav").resolve()
