"""The nemo backend: a tiny hybrid RNNT/CTC FastConformer built here, saved as .nemo, through the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asrctl.testing import run_cli
from tiny_models import build_tiny_nemo

pytest.importorskip("nemo.collections.asr")
SPEECH = Path(__file__).parent / "data" / "speech"


@pytest.fixture(scope="module")
def tiny_nemo(tmp_path_factory):
    texts = [json.loads(line)["text"] for line in (SPEECH / "manifest.jsonl").read_text().splitlines()]
    return build_tiny_nemo(tmp_path_factory.mktemp("nemo"), texts)


@pytest.fixture
def manifest(tmp_path):
    rows = [json.loads(line) for line in (SPEECH / "manifest.jsonl").read_text().splitlines()]
    rows = [{**r, "audio_filepath": str(SPEECH / r["audio_filepath"])} for r in rows if r["duration"] < 10]
    (tmp_path / "corrupt.wav").write_text("not audio")
    rows[2:2] = [{"audio_filepath": str(tmp_path / "missing.wav"), "duration": 1.0, "text": "gone"},
                 {"audio_filepath": str(tmp_path / "corrupt.wav"), "duration": 1.0, "text": "broken"}]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


@pytest.mark.parametrize("decoder", ["rnnt", "ctc"])
def test_both_heads_transcribe_through_the_cli_with_bad_rows(tiny_nemo, manifest, tmp_path, decoder):
    path, rows = manifest
    out = tmp_path / f"{decoder}.jsonl"
    result = run_cli("infer", str(path), "-b", "nemo", "-m", str(tiny_nemo), "-O", f"decoder={decoder}",
                     "--allow-pickle", "--device", "cpu", "--batch-size", "3", "-o", str(out))
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "NeMo I" not in result.stderr  # NeMo's log stays quiet
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["text"] for g in got] == [r["text"] for r in rows]
    for row in got:
        if row["text"] in ("gone", "broken"):
            assert row["pred_text"] is None and Path(row["audio_filepath"]).name in row["error"]
        else:
            assert isinstance(row["pred_text"], str) and "error" not in row


def test_a_nemo_file_needs_allow_pickle_and_a_wrong_head_is_one_line(tiny_nemo, manifest, tmp_path):
    path, _ = manifest
    refused = run_cli("infer", str(path), "-b", "nemo", "-m", str(tiny_nemo), "-o", str(tmp_path / "a.jsonl"))
    assert refused.returncode == 1 and "--allow-pickle" in refused.stderr and "Traceback" not in refused.stderr
    wrong = run_cli("infer", str(path), "-b", "nemo", "-m", str(tiny_nemo), "-O", "decoder=tdt", "--allow-pickle",
                    "-o", str(tmp_path / "b.jsonl"))
    assert wrong.returncode == 1 and "decoder='tdt': expected one of rnnt, ctc" in wrong.stderr


def test_results_of_every_nemo_shape_become_one_text_per_utterance():
    from nemo.collections.asr.parts.utils.rnnt_utils import Hypothesis

    from asrctl_nemo.results import texts

    def hypothesis(text):
        return Hypothesis(score=0.0, y_sequence=[], text=text)

    assert texts(["a b", ""], 2) == ["a b", ""]
    assert texts([hypothesis("a b"), hypothesis("c")], 2) == ["a b", "c"]
    assert texts(([hypothesis("a")], None), 1) == ["a"]  # (best, all)
    assert texts([[hypothesis("best"), hypothesis("second")], []], 2) == ["best", ""]  # n-best lists
    with pytest.raises(ValueError, match="for 3 utterances"):
        texts(["a"], 3)


def test_commands_other_than_nemo_inference_do_not_import_nemo(tmp_path):
    for args in (["--help"], ["plugins"], ["manifest", "--help"], ["infer", "--help"]):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "asrctl", *args],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        modules = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
        assert not {m for m in modules if m == "nemo" or m.startswith("nemo.")}, args
        assert args[0] != "plugins" or "nemo" in result.stdout  # the plugin was asked what it provides
