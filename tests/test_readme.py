"""The README works as written, from a clone: the demo command and the quickstart, with the local
Whisper base weights standing in for the Hub and the package index (no network)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def readme_block(name: str) -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(rf"<!-- ci:{name} -->\n```bash\n(.*?)```\n<!-- /ci:{name} -->", readme, re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [line.split("#")[0].strip() for line in joined.splitlines() if line.split("#")[0].strip()]


def offline_env(test_assets: Path) -> dict[str, str]:
    """The default model is the local CTranslate2 Whisper base; this interpreter's folder comes first
    on PATH, as in an activated environment."""
    return {**os.environ, "ASRCTL_MODEL": str(test_assets / "whisper-base-ct2"), "ASRCTL_BACKEND": "",
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


@pytest.mark.real_model
@pytest.mark.slow
def test_the_demo_command_runs_as_written_and_ends_with_the_score_table(test_assets):
    (command,) = readme_block("demo")
    assert command == "python3 scripts/bootstrap.py demo"
    shutil.rmtree(ROOT / "demo-out", ignore_errors=True)
    done = subprocess.run(command, shell=True, cwd=ROOT, env=offline_env(test_assets), capture_output=True,
                          text=True, timeout=1800, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "asrctl eval" in done.stdout and "WER" in done.stdout and "by speaker" in done.stdout
    rows = [json.loads(line) for line in (ROOT / "demo-out" / "basic.pred.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["hello world", "good morning"]
    assert [r["pred_text"].lower().strip(".!") for r in rows] == ["hello world", "good morning"]
    assert {p.suffix for p in (ROOT / "demo-out").iterdir()} >= {".txt", ".srt", ".vtt", ".tsv", ".json", ".html"}


@pytest.mark.real_model
@pytest.mark.slow
def test_the_quickstart_runs_as_written(tmp_path, test_assets):
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    commands = readme_block("quickstart")
    assert commands[0] == "asrctl plugins" and any(c.startswith("asrctl finetune") for c in commands)
    outputs = []
    for command in commands:
        args = shlex.split(command.replace("openai/whisper-tiny", str(test_assets / "whisper-base-hf")))
        assert args[0] == "asrctl"
        done = subprocess.run([sys.executable, "-m", "asrctl", *args[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=900, stdin=subprocess.DEVNULL, env=offline_env(test_assets))
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        outputs.append(done.stdout)
    assert outputs[1].strip().lower().strip(".!") == "hello world"  # one file: its transcript on stdout
    preds = [json.loads(line) for line in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert [r["text"] for r in preds] == ["hello world", "good morning"] and all(r["pred_text"] for r in preds)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "out" / "adapter_config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "subs").glob("*.srt")) == ["hello.srt", "morning.srt"]
    assert (tmp_path / "out-ct2" / "model.bin").is_file() and (tmp_path / "tuned.jsonl").is_file()
