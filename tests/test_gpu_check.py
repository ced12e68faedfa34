"""bench/gpu_check.py where there is no GPU: each row that needs CUDA is skipped saying so, the others
run on the CPU, and the table is printed and appended to --out."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "bench" / "gpu_check.py"
ON_THE_CPU = {"infer hf-whisper tiny", "infer hf-ctc tiny", "infer hf-whisper tiny, --language-key, --detect-language",
              "infer hf-whisper tiny, --segment auto"}


def test_without_cuda_the_cuda_rows_are_skipped_and_the_others_run(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: run bench/gpu_check.py itself")
    out = tmp_path / "table.md"
    result = subprocess.run([sys.executable, str(SCRIPT), "--profile", "hf", "--size", "tiny", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_text().strip() == result.stdout.strip()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("bench/gpu_check.py --profile hf on no GPU (CPU only) (--dtype auto: float32)")
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")]
                                              for line in lines if line.startswith("| ") and "---" not in line)}
    del rows["check"]
    assert len(rows) == 14 and ON_THE_CPU < set(rows)
    for name, (status, wall, rtfx, _memory, note) in rows.items():
        if name in ON_THE_CPU:
            assert status == "ok" and float(wall) > 0 and float(rtfx) > 0, (name, note)
        else:
            assert status == "skipped" and note == "no CUDA device (torch.cuda.is_available() is False)", name
