"""SIGKILL and SIGINT at random points of long jobs, several times over: after each, the re-run's
output is byte for byte the output of a run that was never interrupted, and nothing is left behind."""

import json
import os
import random
import re
import signal
import time

import pytest
from probe_backend import read_jsonl

from asrctl.testing import run_cli, write_tone_wav

SIGNALS = [signal.SIGKILL, signal.SIGINT, signal.SIGKILL]
ROWS = 60000


def interrupt(process, seconds, sig):
    """After `seconds` (unless it ended by itself): SIGINT to the job's process group, as Ctrl-C
    sends it; any other signal to the asrctl process alone, as `kill` or the OOM killer sends it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    if process.poll() is None:
        if sig == signal.SIGINT:
            os.killpg(process.pid, sig)
        else:
            os.kill(process.pid, sig)
    process.wait(timeout=60)
    return process.returncode


def no_process_left(group):
    """The job's helper processes (DataLoader workers) end with it: none outlives it for long."""
    deadline = time.monotonic() + 15  # a worker notices its parent is gone within 5 s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def litter(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".partial"))


@pytest.fixture
def tones(tmp_path, infer):
    """A manifest of 40 tones, and its output from a run never interrupted (20 batches of 2)."""
    rows = []
    for i in range(40):
        write_tone_wav(tmp_path / f"a{i}.wav", 0.3 + 0.05 * i)
        rows.append({"audio_filepath": f"a{i}.wav", "duration": round(0.3 + 0.05 * i, 2), "id": i})
    manifest = tmp_path / "in.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    clean = tmp_path / "clean" / "pred.jsonl"  # as deep as the output: the same relative audio paths
    assert infer(manifest, clean, "--batch-size", "2").returncode == 0
    return manifest, clean


def test_infer_interrupted_again_and_again(tmp_path, tones, infer, popen_cli):
    manifest, clean = tones

    out = tmp_path / "out" / "pred.jsonl"
    args = ["infer", str(manifest), "-b", "probe", "-m", "none", "-o", str(out), "--device", "cpu",
            "--batch-size", "2", "--num-workers", "2", "-q"]
    chance = random.Random(7)
    for sig in SIGNALS:
        process = popen_cli(*args, env={"PROBE_SLEEP": "0.4"})  # 20 batches: 8 s and more
        assert interrupt(process, chance.uniform(1.0, 3.5), sig) != 0 and not out.exists()
        assert no_process_left(process.pid), f"processes of the job outlived it after {sig.name}"
    result = infer(manifest, out, "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == clean.read_bytes()
    assert litter(tmp_path / "out") == []


def test_ctrl_c_dropped_by_a_finalizer_still_stops_infer(tmp_path, tones, infer):
    """A KeyboardInterrupt raised inside a finalizer is dropped by Python: the job stops all the same,
    at the end of that batch, keeping its rows instead of finishing as though never interrupted."""
    manifest, clean = tones
    out = tmp_path / "out" / "pred.jsonl"
    stopped = infer(manifest, out, "--batch-size", "2", env={"PROBE_SWALLOW_SIGINT": "3"})
    assert stopped.returncode == 130 and "Exception ignored" in stopped.stderr, stopped.stderr
    assert "interrupted; finished rows are saved" in stopped.stderr and not out.exists()
    resumed = infer(manifest, out, "--batch-size", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == clean.read_bytes()


def saved_rows(partial):
    """Rows a job has saved so far (its partial output holds a header line first)."""
    return max(0, len(partial.read_text().splitlines()) - 1) if partial.exists() else 0


def ctrl_c_job(tones, out, popen_cli, sleep):
    """`asrctl infer` (two decoding workers, batches of 2, `sleep` seconds each) with its stderr."""
    manifest, _ = tones
    return popen_cli("infer", str(manifest), "-b", "probe", "-m", "none", "-o", str(out), "--device", "cpu",
                     "--batch-size", "2", "--num-workers", "2", env={"PROBE_SLEEP": str(sleep)}, stderr=True)


def clean_stop(process, out):
    """Exit 130 with one line, no traceback from the job or its workers; the re-run finishes the output."""
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 130 and not out.exists(), stderr
    assert stderr.count("stopping after the current batch (Ctrl-C again to stop now)") == 1, stderr  # by the job alone
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert "interrupted; finished rows are saved: run the same command to resume" in stderr, stderr
    return stderr


def test_first_ctrl_c_finishes_the_batch_in_hand_and_says_so(tmp_path, tones, popen_cli, infer):
    out = tmp_path / "out" / "pred.jsonl"
    partial = out.with_name(out.name + ".partial")
    process = ctrl_c_job(tones, out, popen_cli, sleep=1.5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and saved_rows(partial) < 4:
        time.sleep(0.01)
    # A batch was just saved. Past the check for Ctrl-C that follows its saving (a busy machine can
    # hold the job between the two), the next batch is in hand for about 1.5 s.
    time.sleep(0.3)
    before = saved_rows(partial)
    os.killpg(process.pid, signal.SIGINT)
    clean_stop(process, out)
    assert saved_rows(partial) == before + 2  # the batch in hand, and no further one
    resumed = infer(tones[0], out, "--batch-size", "2")
    assert resumed.returncode == 0 and out.read_bytes() == tones[1].read_bytes(), resumed.stderr
    assert re.search(rf"kept from an earlier run\s+│\s+{before + 2}\b", resumed.stderr), resumed.stderr
    assert re.search(rf"transcribed now\s+│\s+{40 - before - 2}\b", resumed.stderr), resumed.stderr


def test_second_ctrl_c_stops_at_once_and_workers_end_quietly(tmp_path, tones, popen_cli, infer):
    out = tmp_path / "out" / "pred.jsonl"
    process = ctrl_c_job(tones, out, popen_cli, sleep=20)  # the first batch would take 20 s
    data_workers(process.pid)
    time.sleep(1.0)  # the model has its first batch
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    clean_stop(process, out)
    assert saved_rows(out.with_name(out.name + ".partial")) == 0  # stopped in the batch, not after it
    assert no_process_left(process.pid)
    resumed = infer(tones[0], out, "--batch-size", "2")
    assert resumed.returncode == 0 and out.read_bytes() == tones[1].read_bytes(), resumed.stderr


def data_workers(pid, seconds=30):
    """The DataLoader workers of process `pid` once they run (Linux; torch names them pt_data_worker,
    which also tells them from other children, such as the `ldconfig` that library look-ups start)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
        found = []
        for child in children:
            try:
                with open(f"/proc/{child}/comm") as f:
                    if f.read().strip() == "pt_data_worker":
                        found.append(int(child))
            except FileNotFoundError:  # ended in the meantime
                pass
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"process {pid} started no DataLoader worker within {seconds} s")


def test_a_decoding_worker_killed_stops_infer_with_one_line(tmp_path, tones, popen_cli, infer):
    """The OOM killer picks an audio-decoding worker: one line saying so, the rows kept, a re-run finishes.
    The kill comes once some rows are saved, when the workers have their batches ready and wait: killed
    at the instant it holds the loader's shared lock (as it checks for shutdown after taking work), a
    worker would leave torch's DataLoader waiting for that lock for ever."""
    manifest, clean = tones
    out = tmp_path / "out" / "pred.jsonl"
    partial = tmp_path / "out" / "pred.jsonl.partial"
    process = popen_cli("infer", str(manifest), "-b", "probe", "-m", "none", "-o", str(out), "--device", "cpu",
                        "--batch-size", "2", "--num-workers", "2", env={"PROBE_SLEEP": "0.2"}, stderr=True)
    worker = data_workers(process.pid)[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not partial.exists() or len(partial.read_text().splitlines()) < 5):
        time.sleep(0.02)
    os.kill(worker, signal.SIGKILL)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 1 and not out.exists(), stderr
    assert "an audio-decoding worker stopped" in stderr and "Traceback" not in stderr, stderr
    assert len(partial.read_text().splitlines()) >= 5  # the rows saved before are kept
    resumed = infer(manifest, out, "--batch-size", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == clean.read_bytes()


@pytest.fixture
def corpus(tmp_path):
    """A manifest of 60,000 rows over 30 short files: some seconds to convert or shard."""
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(30):
        write_tone_wav(audio / f"u{i}.wav", 0.2 + 0.01 * i)
    manifest = tmp_path / "corpus.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": f"audio/u{i % 30}.wav", "duration": 0.2 + 0.01 * (i % 30),
                                            "text": f"row {i}", "id": i, "offset": 0.0}) + "\n" for i in range(ROWS)))
    return manifest


@pytest.mark.parametrize("command", ["convert", "shard"])
def test_manifest_jobs_interrupted_again_and_again(tmp_path, corpus, popen_cli, command):
    def args(out):
        if command == "convert":
            return ["manifest", "convert", str(corpus), "--to", "csv", "-o", str(out / "corpus.csv"), "-q"]
        return ["manifest", "shard", str(corpus), "--out-dir", str(out), "--num-shards", "6", "--workers", "2",
                "--shuffle", "-q"]

    clean, out = tmp_path / "clean", tmp_path / "out"
    started = time.monotonic()
    assert run_cli(*args(clean)).returncode == 0
    took = time.monotonic() - started
    chance = random.Random(11)
    for sig in SIGNALS:
        process = popen_cli(*args(out))
        assert interrupt(process, chance.uniform(0.15, 0.35) * took, sig) != 0, "the job ended before the signal"
        assert no_process_left(process.pid)
    result = run_cli(*args(out))
    assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(clean) for p in clean.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for name in files:
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name
    assert litter(out) == []
    if command == "shard":
        manifest = read_jsonl(out / "tarred_audio_manifest.json")
        assert sorted(row["id"] for row in manifest) == list(range(ROWS))  # every row once
