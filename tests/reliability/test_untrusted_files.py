"""Files that could run code or write outside their place: refused unless the user says otherwise."""

import ast
import shutil
from pathlib import Path

from probe_backend import read_jsonl

from asrctl.testing import make_manifest, run_cli

ROOT = Path(__file__).parents[2]


def test_pickle_weights_load_only_with_allow_pickle(tmp_path, tiny_ctc):
    import torch
    from transformers import AutoModelForCTC

    pickled = tmp_path / "pickled-model"
    shutil.copytree(tiny_ctc, pickled)
    (pickled / "model.safetensors").unlink()
    torch.save(AutoModelForCTC.from_pretrained(tiny_ctc).state_dict(), pickled / "pytorch_model.bin")
    manifest, _ = make_manifest(tmp_path / "data", [0.5])
    args = ["infer", str(manifest), "-b", "hf-ctc", "-m", str(pickled), "--device", "cpu", "-q"]

    refused = run_cli(*args, "-o", str(tmp_path / "refused.jsonl"))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "pickle-based" in refused.stderr and "--allow-pickle" in refused.stderr and str(pickled) in refused.stderr
    assert not (tmp_path / "refused.jsonl").exists()

    allowed = run_cli(*args, "--allow-pickle", "-o", str(tmp_path / "allowed.jsonl"))
    assert allowed.returncode == 0, allowed.stderr
    assert isinstance(read_jsonl(tmp_path / "allowed.jsonl")[0]["pred_text"], str)


def test_no_shell_strings_and_no_remote_code_by_default():
    """No shell is ever handed a string (manifest content could reach it), and trust_remote_code is
    passed to transformers only from the user's flag."""
    sources = [p for folder in ("asrctl", "plugins") for p in (ROOT / folder).rglob("*.py") if "build" not in p.parts]
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                assert name not in ("os.system", "os.popen", "subprocess.getoutput"), f"{path}:{node.lineno}"
                for keyword in node.keywords:
                    if keyword.arg == "shell":
                        assert ast.unparse(keyword.value) == "False", f"{path}:{node.lineno}: shell=True"
                    if keyword.arg == "trust_remote_code" and isinstance(keyword.value, ast.Constant):
                        assert keyword.value.value is False, f"{path}:{node.lineno}: trust_remote_code=True"
