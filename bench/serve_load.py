#!/usr/bin/env python3
"""`asrctl serve` under load, side by side with its ceiling and with a per-request server, one run.

    python bench/serve_load.py --model WHISPER_CT2_DIR [--clients 1 8 32] [--copies 4]

The audio: the speech fixtures (tests/data/speech: 8 short utterances and one 34-s recording),
`--copies` times over, each copy a file of its own (`asrctl infer` transcribes a file named twice
once). Four contenders, each a whole process, on the same backend (faster-whisper, the model's
CTranslate2 folder, int8 unless --compute-type says otherwise, greedy, English, long audio cut at
its pauses unless --segment none):

- `asrctl infer` on all the files at once: the ceiling a server can approach (no HTTP, every file in
  the same batches); its rate counts model load and process start.
- a direct call: faster-whisper's WhisperModel.transcribe on each file in turn, in one process, for
  the latency a single client could have without a server.
- `asrctl serve`: N clients, each sending the next file as soon as its last answer came.
- a server built the way speaches builds one (FastAPI, one faster-whisper model, each request
  transcribed on its own with WhisperModel.transcribe), under the same clients.

For each server and client count: requests per second, audio seconds per second, and the p50 and p95
latency of a request. Both servers are started and warmed with one request, then loaded in turns,
each load --repeat times; the run of median rate is reported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "tests" / "data" / "speech"

PER_REQUEST_SERVER = r"""
import sys, tempfile
import uvicorn
from fastapi import FastAPI, UploadFile
from fastapi.concurrency import run_in_threadpool
from faster_whisper import WhisperModel
model_dir, compute_type, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = WhisperModel(model_dir, device="cpu", compute_type=compute_type)
app = FastAPI()

def transcribe(data: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".flac") as f:
        f.write(data)
        f.flush()
        segments, _ = model.transcribe(f.name, language="en", beam_size=1)
        return "".join(s.text for s in segments).strip()

@app.get("/health")
def health():
    return {"status": "ok"}

@app.post("/v1/audio/transcriptions")
async def transcriptions(file: UploadFile):
    return {"text": await run_in_threadpool(transcribe, await file.read())}

uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""

DIRECT_CALLS = r"""
import sys, time
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type=sys.argv[2])
for path in sys.argv[3:4] + sys.argv[3:]:  # the first twice: a warm-up, as the servers get
    start = time.perf_counter()
    segments, _ = model.transcribe(path, language="en", beam_size=1)
    "".join(s.text for s in segments)
    print(time.perf_counter() - start, flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become healthy")


def load(url: str, files: list[Path], clients: int) -> dict[str, float]:
    """Every file sent once by `clients` clients, each sending its next as its last is answered."""
    pending = list(reversed(files))
    lock = threading.Lock()
    latencies: list[float] = []

    def client() -> None:
        with httpx.Client(timeout=600) as http:
            while True:
                with lock:
                    if not pending:
                        return
                    path = pending.pop()
                start = time.perf_counter()
                with open(path, "rb") as f:
                    response = http.post(f"{url}/v1/audio/transcriptions", files={"file": (path.name, f)},
                                         data={"model": "m", "language": "en"})
                response.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    latencies.sort()
    return {"wall": wall, "requests": len(files) / wall, "p50": statistics.median(latencies),
            "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]}


def started(command: list[str], port: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process)
    return process, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Whisper in CTranslate2's layout (a folder)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--copies", type=int, default=4, help="each fixture this many times over")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each load; the median is reported")
    parser.add_argument("--segment", default="auto", choices=["auto", "none"],
                        help="how asrctl infer and serve take long audio (auto: cut at its pauses)")
    args = parser.parse_args()

    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        files = copies(sorted(SPEECH.glob("*.flac")), args.copies, Path(tmp))
        audio = sum(sf.info(f).duration for f in files)
        print(f"{len(files)} files, {audio:.0f} s of audio; faster-whisper {args.compute_type}, CPU, "
              f"{os.cpu_count()} cores", flush=True)
        options = ["-O", f"compute_type={args.compute_type}", "--language", "en", "--segment", args.segment]
        start = time.perf_counter()
        subprocess.run([python, "-m", "asrctl", "infer", *map(str, files), "-b", "faster-whisper", "-m", args.model,
                        *options, "-q", "-o", f"{tmp}/out/out.jsonl"], check=True)
        ceiling = time.perf_counter() - start
        print(f"asrctl infer (all files, one process): {ceiling:.1f} s, {len(files) / ceiling:.2f} req/s, "
              f"{audio / ceiling:.1f} audio s/s", flush=True)
        direct = run_script(DIRECT_CALLS, [args.model, args.compute_type, *map(str, files)])
        direct_p50 = statistics.median(float(line) for line in direct.split()[1:])
        print(f"direct calls: p50 {direct_p50:.2f} s", flush=True)

        servers: dict[str, tuple[subprocess.Popen, str]] = {}
        with tempfile.NamedTemporaryFile("w", suffix=".py") as script:
            script.write(PER_REQUEST_SERVER)
            script.flush()
            try:
                port = free_port()
                servers["asrctl serve"] = started([python, "-m", "asrctl", "serve", "-b", "faster-whisper", "-m",
                                                   args.model, "--port", str(port), *options], port)
                port = free_port()
                servers["per-request (speaches-style)"] = started([python, script.name, args.model, args.compute_type,
                                                                   str(port)], port)
                for _, url in servers.values():
                    load(url, files[:1], 1)  # warm
                # Both up at once, taking turns, each load run --repeat times: drift in the machine's speed
                # reaches both alike; the run of median rate is reported.
                runs: dict[tuple[str, int], list[dict[str, float]]] = {}
                for _ in range(args.repeat):
                    for n in args.clients:
                        for name, (_, url) in servers.items():
                            runs.setdefault((name, n), []).append(load(url, files, n))
            finally:
                for process, _ in servers.values():
                    process.terminate()
                    process.wait(60)
        results = {key: sorted(found, key=lambda r: r["requests"])[len(found) // 2] for key, found in runs.items()}

    print("\n| clients | server | req/s | audio s/s | p50 s | p95 s | vs infer | vs per-request | p50 vs direct |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.clients:
        base = results["per-request (speaches-style)", n]["requests"]
        for name in servers:
            result = results[name, n]
            rate = result["requests"]
            print(f"| {n} | {name} | {rate:.2f} | {audio / result['wall']:.1f} | {result['p50']:.2f} | "
                  f"{result['p95']:.2f} | {rate / (len(files) / ceiling):.2f}x | {rate / base:.2f}x | "
                  f"{result['p50'] / direct_p50:.2f}x |")


def copies(files: list[Path], count: int, folder: Path) -> list[Path]:
    """`count` copies of each file, each a file of its own."""
    made = []
    for k in range(count):
        for path in files:
            made.append(folder / f"{path.stem}-{k}{path.suffix}")
            shutil.copy(path, made[-1])
    return made


def run_script(source: str, args: list[str]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".py") as script:
        script.write(source)
        script.flush()
        return subprocess.run([sys.executable, script.name, *args], check=True, capture_output=True,
                              text=True).stdout


if __name__ == "__main__":
    main()
