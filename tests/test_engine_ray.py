"""`asrctl infer --engine ray` through the real CLI: the same output file as the local engine
(errors included), a model worker killed mid-job, a killed driver resumed, one-line errors.

One small Ray cluster (`ray start --head`, 2 CPUs) serves the module; runs join it via RAY_ADDRESS.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_infer_engine import TOY, make_manifest, read_jsonl

from asrctl.testing import make_plugin_dist, run_cli

pytest.importorskip("ray")

# The toy backend (transcript = sample count; 7-second audio raises), plus two models for tests:
# -m crash=MARKER dies like a segfault at its first 2.5-second utterance, once (the marker file
# remembers, so the restarted worker goes on); -m sleep=SECONDS is slow enough to be killed midway;
# -m missing=NAME fails to load.
RAY_TOY = TOY + '''
from asrctl import AsrctlError

toy_load = load

class Special:
    def __init__(self, model, toy):
        self.what, _, self.arg = model.partition("=")
        self.toy = toy

    def transcribe(self, batch):
        if self.what == "sleep":
            time.sleep(float(self.arg))
        if self.what == "crash" and any(len(a) == 40000 for a in batch) and not os.path.exists(self.arg):
            open(self.arg, "w").close()
            os._exit(1)
        return self.toy.transcribe(batch)

def load(model, **kwargs):
    if model.startswith("missing="):
        raise AsrctlError(f"{model[8:]}: no such model")
    return toy_load(model, **kwargs) if model == "none" else Special(model, toy_load(model, **kwargs))
'''
# `ray start` (Ray 2.60) turns token authentication on when ~/.ray/auth_token exists; this cluster is private.
NO_AUTH = {"RAY_AUTH_MODE": "disabled"}
DURATIONS = [0.5, 3.0, 1.25, 2.0, 0.75, 7.0, 6.5, 1.0, 1.5, 2.5, 0.6, 4.0]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return make_plugin_dist(tmp_path_factory.mktemp("site"), "asrctl-toy", RAY_TOY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(site, tmp_path_factory):
    """A two-CPU Ray cluster on this machine, started as users start one; yields its address."""
    port = free_port()
    log = tmp_path_factory.mktemp("ray") / "start.log"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    ray = Path(sys.executable).with_name("ray")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(ray), "start", "--head", "--block", f"--port={port}", f"--dashboard-port={free_port()}",
             "--num-cpus=2", "--object-store-memory=200000000", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={temp}"],
            env={**os.environ, **NO_AUTH, "PYTHONPATH": str(site)},  # workers import the toy plugin
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.time() + 120
        while "Ray runtime started" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()  # `ray start --block` stops what it started, gracefully, which may take long
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def infer(manifest, out, site, *extra, engine="local", address=None, backend="toy", model="none", command="infer",
          env=None):
    ray_args = ["-E", "workers=2"] if engine == "ray" else []
    return run_cli(command, str(manifest), "-b", backend, "-m", model, "-o", str(out), "--device", "cpu",
                   "--num-workers", "1", "--batch-size", "3", "-q", "--engine", engine, *ray_args, *extra,
                   pythonpath=site, env={**(env or {}), **({**NO_AUTH, "RAY_ADDRESS": address} if address else {})})


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    (folder / "corrupt.wav").write_text("this is not audio")
    bad = [{"audio_filepath": "missing.wav", "duration": 1.0, "text": "gone"},
           {"audio_filepath": "corrupt.wav", "duration": 1.0, "text": "broken"}]
    return make_manifest(folder, DURATIONS, bad)[0]


@pytest.fixture(scope="module")
def local_output(manifest, site):
    out = manifest.with_name("local.jsonl")
    assert infer(manifest, out, site).returncode == 3
    return out


def test_ray_writes_the_local_engines_file_byte_for_byte(cluster, manifest, local_output, site):
    out = manifest.with_name("ray.jsonl")  # outputs share a folder: relative audio paths are rebased to it
    result = infer(manifest, out, site, engine="ray", address=cluster)
    assert result.returncode == 3, result.stderr
    assert out.read_bytes() == local_output.read_bytes()
    rows = read_jsonl(out)
    assert "toy failure" in rows[5]["error"] and "retrying it in halves" in result.stderr
    assert "missing.wav" in rows[12]["error"] and "corrupt.wav" in rows[13]["error"]
    assert f"{manifest}:14:" in result.stderr and "Traceback" not in result.stderr


def test_a_killed_worker_has_its_batch_retried(cluster, manifest, local_output, site, tmp_path):
    marker = tmp_path / "crashed"
    out = manifest.with_name("crashed.jsonl")
    result = infer(manifest, out, site, engine="ray", address=cluster, model=f"crash={marker}")
    assert marker.exists(), "the worker never met the utterance that kills it"
    assert result.returncode == 3, result.stderr
    assert out.read_bytes() == local_output.read_bytes()


def test_a_killed_driver_resumes_where_it_stopped(cluster, manifest, local_output, site):
    out = manifest.with_name("resumed.jsonl")
    partial = manifest.with_name("resumed.jsonl.partial")
    args = [sys.executable, "-m", "asrctl", "infer", str(manifest), "-b", "toy", "-m", "sleep=0.5", "-o", str(out),
            "--device", "cpu", "--batch-size", "1", "-q", "--engine", "ray", "-E", "workers=2"]
    env = {**os.environ, **NO_AUTH, "PYTHONPATH": str(site), "RAY_ADDRESS": cluster}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or len(partial.read_text().splitlines()) < 6):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(partial.read_text().splitlines()) - 1  # the errors of unreadable rows come first
    assert 5 <= done_before < len(DURATIONS) + 2

    result = run_cli(*args[3:], pythonpath=site, env={**NO_AUTH, "RAY_ADDRESS": cluster})
    assert result.returncode == 3, result.stderr
    assert out.read_bytes() == local_output.read_bytes()


@pytest.mark.parametrize("command", ["infer", "align"])
def test_tiny_ctc_model_gives_the_same_file(cluster, tiny_ctc, manifest, command):
    """`asrctl align` is infer's job in another mode: on Ray too. Ray gives a one-CPU model worker one
    torch thread; so does the local run here: a random model's best alignment path has near-ties that
    another order of summing breaks another way."""
    local, ray = manifest.with_name(f"ctc-{command}-local.jsonl"), manifest.with_name(f"ctc-{command}-ray.jsonl")
    assert infer(manifest, local, None, backend="hf-ctc", model=str(tiny_ctc), command=command,
                 env={"OMP_NUM_THREADS": "1"}).returncode == 3
    result = infer(manifest, ray, None, "-E", "workers=1", engine="ray", address=cluster, backend="hf-ctc",
                   model=str(tiny_ctc), command=command)
    assert result.returncode == 3, result.stderr
    assert ray.read_bytes() == local.read_bytes()
    for row in read_jsonl(ray)[:len(DURATIONS)]:
        assert isinstance(row["pred_text"], str) if command == "infer" else \
            [w["word"] for w in row["words"]] == row["text"].split()


def test_a_model_that_does_not_load_is_one_line(cluster, manifest, site, tmp_path):
    result = infer(manifest, tmp_path / "x.jsonl", site, engine="ray", address=cluster, model="missing=model")
    assert result.returncode == 1, result.stderr
    assert "Error: model: no such model" in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--engine", "ray", "-E", "worker=2"], 1,
         "engine 'ray': unknown -E option 'worker' (did you mean 'workers'?); known -E options: address,"),
        (["--engine", "local", "-E", "workers=2"], 1, "engine 'local' takes no -E options (got -E workers)"),
        (["--engine", "ray", "-E", "workers=3-1"], 1, "-E workers=3-1: expected N or MIN-MAX"),
        (["--engine", "ray", "-E", "gpus-per-worker=-1"], 1, "-E gpus_per_worker=-1: expected a number >= 0"),
        (["--engine", "ray", "-E", "address=127.0.0.1:1"], 1, "cannot reach the Ray cluster at 127.0.0.1:1"),
        (["--engine", "ray", "-E", "workers"], 2, "expected KEY=VALUE, e.g. -E workers=4"),
    ],
)
def test_engine_option_mistakes_are_one_line(manifest, site, tmp_path, extra, code, message):
    result = run_cli("infer", str(manifest), "-b", "toy", "-m", "none", "-o", str(tmp_path / "x.jsonl"),
                     "--device", "cpu", *extra, pythonpath=site)
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr


def test_without_ray_installed_the_engine_says_how_to_get_it(manifest, site, tmp_path):
    fake = tmp_path / "no-ray"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    result = run_cli("infer", str(manifest), "-b", "toy", "-m", "none", "-o", str(tmp_path / "x.jsonl"),
                     "--engine", "ray", pythonpath=Path(f"{fake}{os.pathsep}{site}"))
    assert result.returncode == 1
    assert "the ray engine needs Ray: pip install 'asrctl[ray]'" in result.stderr


def test_engine_options_are_not_part_of_the_job(manifest, site, tmp_path):
    """Workers may change between a crash and its resume: a different -E still resumes."""
    from asrctl.infer.job import InferJob

    job = InferJob(manifest=manifest, output=tmp_path / "x.jsonl", backend="toy", model="none")
    assert job.fingerprint() == InferJob(**{**job.__dict__, "engine_options": {"workers": 4}}).fingerprint()


def test_engine_options_are_listed_by_asrctl_plugins():
    import json

    result = run_cli("plugins", "--all", "--json")
    assert result.returncode == 0, result.stderr
    options = {name: keys for row in json.loads(result.stdout) for name, keys in row["engine_options"].items()}
    assert set(options["ray"]) == {"address", "workers", "gpus_per_worker", "cpus_per_worker"}
    table = run_cli("plugins", "--all")
    assert "ray options (asrctl infer --engine ray -E KEY=VALUE):" in table.stdout


@pytest.mark.parametrize(("options", "gpus", "cluster", "cpus"), [
    ({}, 0.0, {"CPU": 16.0}, 1.0),  # without GPUs the model computes with the worker's threads: set them
    ({}, 1.0, {"CPU": 64.0, "GPU": 8.0}, 4.0),  # half of a GPU's 8 CPUs; the rest decode audio
    ({}, 0.5, {"CPU": 64.0, "GPU": 8.0}, 2.0),
    ({}, 1.0, {"CPU": 4.0, "GPU": 8.0}, 1.0),
    ({"cpus_per_worker": 3}, 1.0, {"CPU": 64.0, "GPU": 8.0}, 3.0),
])
def test_a_gpu_model_worker_gets_cpus_for_its_own_cpu_work(options, gpus, cluster, cpus):
    """Ray gives a worker as many threads as the CPUs it asks for: one would leave a GPU worker's
    features and token decoding on one thread."""
    from asrctl.infer.engines.ray_data import Settings, worker_cpus

    assert worker_cpus(Settings.parse(options), gpus, cluster) == cpus
