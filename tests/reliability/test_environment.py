"""The world misbehaving around a job: no room to write, a full disk, a GPU out of memory, broken plugins."""

import json
import os
import resource
import signal
import subprocess
import sys

from probe_backend import PROBE, read_jsonl

from asrctl.testing import make_manifest, make_plugin_dist, run_cli


def test_an_output_that_cannot_be_written_is_one_line_before_any_work(tmp_path, infer):
    manifest, _ = make_manifest(tmp_path, [0.5, 1.0])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = infer(manifest, blocker / "pred.jsonl")  # its folder would have to be inside a file
    assert result.returncode == 1
    assert result.stderr.startswith("Error:") and "pred.jsonl" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_full_disk_stops_the_job_without_losing_what_was_written(tmp_path, infer, probe_site):
    """The disk fills up mid-job (simulated with a file-size limit: writes past it fail with EFBIG, as
    they would with ENOSPC); the rows already saved survive, and the re-run finishes the job."""
    manifest, rows = make_manifest(tmp_path, [0.5 + 0.05 * i for i in range(30)])
    clean = tmp_path / "clean" / "pred.jsonl"
    assert infer(manifest, clean, "--batch-size", "2").returncode == 0
    out = tmp_path / "out" / "pred.jsonl"

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))

    command = [sys.executable, "-m", "asrctl", "infer", str(manifest), "-b", "probe", "-m", "none", "-o", str(out),
               "--device", "cpu", "--batch-size", "2", "--num-workers", "1"]
    full = subprocess.run(command, capture_output=True, text=True, preexec_fn=small_disk,
                          env={**os.environ, "PYTHONPATH": str(probe_site)})
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr and "pred.jsonl" in full.stderr and "File too large" in full.stderr
    partial = out.with_name("pred.jsonl.partial")
    saved = len(partial.read_text().splitlines()) - 1  # after its header line
    assert 0 < saved < len(rows)
    result = infer(manifest, out, "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == clean.read_bytes()


def test_out_of_memory_batches_are_halved_and_retried(tmp_path, infer):
    manifest, rows = make_manifest(tmp_path, [0.5 + 0.1 * i for i in range(8)])
    out = tmp_path / "pred.jsonl"
    result = infer(manifest, out, "--batch-size", "8", env={"PROBE_OOM_ABOVE": "2"})
    assert result.returncode == 0, result.stderr
    assert all(row["pred_text"] and "error" not in row for row in read_jsonl(out))
    warnings = " ".join(result.stderr.split())
    assert "a batch of 8 failed (RuntimeError: CUDA out of memory." in warnings and "retrying it in halves" in warnings
    assert "a batch of 4 failed" in warnings and "a batch of 2 failed" not in warnings


def test_a_backend_failing_on_one_utterance_fails_only_that_row(tmp_path, infer):
    manifest, rows = make_manifest(tmp_path, [0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    out = tmp_path / "pred.jsonl"
    result = infer(manifest, out, "--batch-size", "6", env={"PROBE_FAIL_SAMPLES": str(16000)})
    assert result.returncode == 3, result.stderr
    got = read_jsonl(out)
    failed = [row for row in got if row["pred_text"] is None]
    assert [row["audio_filepath"] for row in failed] == ["a2.wav"]
    assert "transcription failed (ValueError: probe failure)" in failed[0]["error"]
    assert "Traceback" not in result.stderr


def test_a_plugin_that_breaks_at_import_leaves_the_others_working(tmp_path, probe_site):
    site = make_plugin_dist(tmp_path / "broken", "asrctl-broken", "raise ImportError('libfoo.so: cannot open')\n")
    manifest, _ = make_manifest(tmp_path, [0.5])
    env = {"PYTHONPATH": f"{site}{os.pathsep}{probe_site}"}
    result = run_cli("infer", str(manifest), "-b", "probe", "-m", "none", "-o", str(tmp_path / "p.jsonl"),
                     "--device", "cpu", "-q", env=env)
    assert result.returncode == 0, result.stderr
    assert "asrctl-broken" in result.stderr and "libfoo.so: cannot open" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((tmp_path / "p.jsonl").read_text())["pred_text"] == "8000 samples peak 0.10"
    strict = run_cli("plugins", env={**env, "ASRCTL_STRICT_PLUGINS": "1"})
    assert strict.returncode != 0 and "asrctl-broken" in strict.stderr
    assert PROBE  # the probe plugin in the same environment still loaded
