"""The README's quickstart works as written, from a clone, with a local model folder in place of
the hub id (real Whisper base weights; no network)."""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- ci:quickstart -->\n```bash\n(.*?)```\n<!-- /ci:quickstart -->", readme, re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [line.split("#")[0].strip() for line in joined.splitlines() if line.split("#")[0].strip()]


@pytest.mark.real_model
@pytest.mark.slow
def test_the_quickstart_runs_as_written(tmp_path, test_assets):
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    commands = quickstart_commands()
    assert commands[0] == "asrctl plugins" and any(c.startswith("asrctl finetune") for c in commands)
    for command in commands:
        args = shlex.split(command.replace("openai/whisper-tiny", str(test_assets / "whisper-base-hf")))
        assert args[0] == "asrctl"
        done = subprocess.run([sys.executable, "-m", "asrctl", *args[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=900, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    preds = [json.loads(line) for line in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert [r["text"] for r in preds] == ["hello world", "good morning"] and all(r["pred_text"] for r in preds)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "out" / "adapter_config.json").is_file()
    assert (tmp_path / "tuned.jsonl").is_file()
