"""The Python API (asrctl.serve.load): files and arrays transcribed as `asrctl infer` transcribes them,
per-input errors, and callers in several threads batched together."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from probe_backend import read_jsonl

from asrctl.errors import AsrctlError
from asrctl.serve import load
from asrctl.testing import run_cli

SPEECH = Path(__file__).parent / "data" / "speech"
FILES = [SPEECH / f"utt0{i}.flac" for i in range(1, 9)]


@pytest.fixture(scope="module")
def model(tiny_ctc):
    with load("hf-ctc", str(tiny_ctc), device="cpu", batch_size=8, wait_seconds=0.5) as loaded:
        yield loaded


def test_files_and_arrays_give_the_texts_infer_gives(model, tiny_ctc, tmp_path):
    result = run_cli("infer", *map(str, FILES), "-b", "hf-ctc", "-m", str(tiny_ctc), "--device", "cpu",
                     "-o", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr
    expected = {Path(r["audio_filepath"]).name: r["pred_text"] for r in read_jsonl(tmp_path / "out.jsonl")}
    from_files = model.transcribe_many(FILES)
    from_arrays = model.transcribe_many([sf.read(f, dtype="float32")[0] for f in FILES])
    assert [t.text for t in from_files] == [expected[f.name] for f in FILES]
    assert [t.text for t in from_arrays] == [t.text for t in from_files]
    assert model.transcribe(FILES[0]).text == expected[FILES[0].name]


def test_a_bad_input_fails_alone(model, tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 100)
    results = model.transcribe_many([FILES[0], tmp_path / "bad.wav", np.zeros((2, 100), np.float32), FILES[1]])
    assert isinstance(results[1], AsrctlError) and "bad.wav" in str(results[1])
    assert isinstance(results[2], AsrctlError) and "one dimension" in str(results[2])
    assert results[0].text == model.transcribe(FILES[0]).text and results[3].text == model.transcribe(FILES[1]).text
    with pytest.raises(AsrctlError, match="bad.wav"):
        model.transcribe(tmp_path / "bad.wav")


def test_threads_calling_at_once_get_their_own_results_in_fewer_batches(model):
    alone = {f.name: model.transcribe(f).text for f in FILES}
    before = model.stats.batches
    got: dict[int, list[str]] = {}
    start = threading.Barrier(4)

    def caller(n: int) -> None:
        start.wait()
        got[n] = [model.transcribe(FILES[(n + i) % 8]).text for i in range(4)]

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(4):
        assert got[n] == [alone[FILES[(n + i) % 8].name] for i in range(4)]
    assert model.stats.batches - before <= 8  # 16 calls, 4 at a time: about a batch a round


def test_a_manifest_gives_the_rows_infer_writes(model, tiny_ctc, tmp_path):
    rows = [{"audio_filepath": str(FILES[0]), "duration": 3.0, "lang": "en"},
            {"audio_filepath": str(SPEECH / "long01.flac"), "offset": 2.5, "duration": 4.0},
            {"audio_filepath": str(tmp_path / "missing.flac"), "duration": 1.0},
            {"audio_filepath": str(FILES[1])}]
    manifest = tmp_path / "in.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    result = run_cli("infer", str(manifest), "-b", "hf-ctc", "-m", str(tiny_ctc), "--device", "cpu",
                     "-o", str(tmp_path / "out.jsonl"))
    assert result.returncode != 0 and "missing.flac" in result.stderr  # a row failed, the others went on
    with pytest.warns(UserWarning, match="in.jsonl:5"):
        ours = model.transcribe_manifest(manifest)
    assert ours == read_jsonl(tmp_path / "out.jsonl")
    assert ours[1]["pred_text"] != ours[0]["pred_text"] and "missing.flac" in ours[2]["error"]


def test_long_audio_is_cut_as_infer_cuts_it(tiny_ctc, tmp_path):
    long = SPEECH / "long01.flac"
    result = run_cli("infer", str(long), "-b", "hf-ctc", "-m", str(tiny_ctc), "--device", "cpu", "--segment", "vad",
                     "--max-segment", "8", "-o", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr
    [expected] = read_jsonl(tmp_path / "out.jsonl")
    with load("hf-ctc", str(tiny_ctc), device="cpu", segment="vad", max_segment=8) as segmenting:
        pending = segmenting.submit(long)
        got = pending.outcome()
        assert got.text == expected["pred_text"]
        assert len(pending.parts) >= 4 and all(end - start <= 8 for (start, end), _ in pending.parts)
        assert segmenting.stats.batches < len(pending.parts)  # the segments went in batches together
        assert segmenting.transcribe(sf.read(long, dtype="float32")[0]).text == got.text
