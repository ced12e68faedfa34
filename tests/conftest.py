import os
from pathlib import Path

import pytest
from probe_backend import PROBE

from asrctl.testing import make_plugin_dist, run_cli

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def test_assets() -> Path:
    """Real pretrained weights from ../shared/tools/build-whisper-base, for tests marked real_model."""
    root = os.environ.get("ASRCTL_TEST_ASSETS")
    if not root or not (Path(root) / "whisper-base-hf").is_dir():
        pytest.skip("real weights not built: run ../shared/tools/build-whisper-base DIR and set ASRCTL_TEST_ASSETS=DIR")
    return Path(root)


@pytest.fixture(scope="session")
def ct2_model(test_assets) -> Path:
    """Real Whisper base in CTranslate2's layout, for faster-whisper."""
    model = test_assets / "whisper-base-ct2"
    if not model.is_dir():
        pytest.skip(f"{model} missing: build it with ../shared/tools/build-whisper-base")
    return model


@pytest.fixture(scope="session")
def tiny_ctc(tmp_path_factory) -> Path:
    """A tiny random wav2vec2 CTC checkpoint with a character vocabulary, saved to a folder."""
    from tiny_models import build_tiny_ctc

    return build_tiny_ctc(tmp_path_factory.mktemp("tiny-ctc"))


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A tiny random Whisper checkpoint with a byte-level tokenizer, saved to a folder."""
    from tiny_models import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


@pytest.fixture(scope="session")
def probe_site(tmp_path_factory):
    """A folder holding the probe backend (tests/probe_backend.py) as a plugin distribution."""
    return make_plugin_dist(tmp_path_factory.mktemp("probe-site"), "asrctl-probe", PROBE)


@pytest.fixture
def infer(probe_site):
    """`asrctl infer MANIFEST -b probe -o OUT ...` through the real CLI."""

    def run(manifest, out, *extra, env=None, cwd=None):
        return run_cli("infer", str(manifest), "-b", "probe", "-m", "none", "-o", str(out), "--device", "cpu",
                       "--num-workers", "1", *extra, pythonpath=probe_site, env=env, cwd=cwd)

    return run


@pytest.fixture(scope="session")
def taught_whisper(tmp_path_factory):
    """A tiny Whisper (tiny_models.build_learning_whisper) that `asrctl finetune` taught the 7 short
    fixture utterances: (its output folder, the summary, the manifests `short` and `all`)."""
    import json

    from tiny_models import build_learning_whisper

    folder = tmp_path_factory.mktemp("taught-whisper")
    rows = [json.loads(line) for line in (DATA / "speech" / "manifest.jsonl").read_text().splitlines()]
    rows = [{**row, "audio_filepath": str(DATA / "speech" / row["audio_filepath"])} for row in rows]
    manifests = {"short": folder / "short.jsonl", "all": folder / "all.jsonl"}
    manifests["short"].write_text("".join(json.dumps(r) + "\n" for r in rows if r["duration"] < 4))
    manifests["all"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = folder / "out"
    result = run_cli("finetune", "--quiet", "--json", "-b", "hf-whisper", "-m",
                     str(build_learning_whisper(folder / "base")), "--train", str(manifests["all"]),
                     "--val", str(manifests["short"]), "-o", str(out),
                     "--learning-rate", "5e-3", "--max-steps", "150", "--batch-size", "7", "--eval-steps", "75",
                     "--set", "training.warmup_steps=10", env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout), manifests
