"""Tiny random hf-ctc and hf-whisper models end to end through the `asrctl infer` CLI on CPU."""

import json
import shutil

import pytest

from asrctl.testing import run_cli

# (file, duration) in input order; durations are mixed so that sorting by length reorders the work.
FIXTURES = ["utt02.flac", "utt05.flac", "long01.flac", "utt01.flac", "utt04.flac"]


@pytest.fixture
def manifest(data_dir, tmp_path):
    speech = {json.loads(line)["audio_filepath"]: json.loads(line)
              for line in (data_dir / "speech" / "manifest.jsonl").read_text().splitlines()}
    rows = []
    for i, name in enumerate(FIXTURES):
        shutil.copy(data_dir / "speech" / name, tmp_path / name)
        rows.append({**speech[name], "id": i})
        if i == 1:
            rows.append({"audio_filepath": "missing.flac", "duration": 2.0, "text": "gone", "id": "missing"})
        if i == 3:
            (tmp_path / "corrupt.flac").write_bytes(b"fLaC" + b"\x00" * 64)
            rows.append({"audio_filepath": "corrupt.flac", "duration": 1.0, "text": "broken", "id": "corrupt"})
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


@pytest.mark.parametrize(("backend", "model_fixture", "extra"), [
    ("hf-ctc", "tiny_ctc", ["--chunk-seconds", "10"]),
    ("hf-whisper", "tiny_whisper", ["--language", "en", "--timestamps", "segment"]),
])
def test_tiny_model_end_to_end(request, manifest, tmp_path, backend, model_fixture, extra):
    path, rows = manifest
    model = request.getfixturevalue(model_fixture)
    out = tmp_path / "pred.jsonl"
    result = run_cli("infer", str(path), "-b", backend, "-m", str(model), "-o", str(out), "--device", "cpu",
                     "--batch-size", "2", "--num-workers", "2", *extra)
    assert result.returncode == 3, result.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in got] == [r["id"] for r in rows]  # input order, every row once
    for row, original in zip(got, rows):
        assert {k: row[k] for k in original} == original  # every input field kept
        if row["id"] in ("missing", "corrupt"):
            assert row["pred_text"] is None and row["audio_filepath"] in row["error"]
        else:
            assert isinstance(row["pred_text"], str) and "error" not in row
    if backend == "hf-whisper":
        long = next(r for r in got if r["audio_filepath"] == "long01.flac")
        assert all(s["start"] <= s["end"] <= long["duration"] + 0.01 for s in long["pred_segments"])
    assert "missing.flac: no such file" in result.stderr and "corrupt.flac" in result.stderr
    assert "RTFx" in result.stderr
    assert "Loading weights" not in result.stderr  # transformers' own bar: asrctl shows its progress


def test_backend_option_it_does_not_take(manifest, tmp_path, tiny_ctc):
    path, _ = manifest
    result = run_cli("infer", str(path), "-b", "hf-ctc", "-m", str(tiny_ctc), "-o", str(tmp_path / "o.jsonl"),
                     "--language", "en")
    assert result.returncode == 1
    assert "backend 'hf-ctc' does not take --language" in result.stderr and "Traceback" not in result.stderr


def test_unknown_backend_suggests_the_near_name(manifest):
    path, _ = manifest
    result = run_cli("infer", str(path), "-b", "hf-whsiper", "-m", "x")
    assert result.returncode == 1
    assert "unknown backend 'hf-whsiper' (did you mean 'hf-whisper'?)" in result.stderr
    assert "hf-ctc" in result.stderr


def test_missing_model_folder_is_one_line(manifest, tmp_path):
    path, _ = manifest
    result = run_cli("infer", str(path), "-b", "hf-ctc", "-m", str(tmp_path / "nope"), "-o", str(tmp_path / "o.jsonl"))
    assert result.returncode == 1 and "cannot load model" in result.stderr and "Traceback" not in result.stderr
