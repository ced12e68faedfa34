"""`asrctl serve` through real clients: a server on 127.0.0.1 (the probe backend, whose transcript
names the audio it got), called with the official `openai` package and with httpx; every response
format, the limits and their statuses, the API key, concurrent requests batched together, and a
SIGTERM with requests in flight."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jiwer
import openai
import pytest
import soundfile as sf
import srt
import webvtt

from asrctl.testing import default_sigint

SPEECH = Path(__file__).parent / "data" / "speech"
FILES = [SPEECH / f"utt0{i}.flac" for i in range(1, 9)]


def probe_text(path: Path) -> str:
    audio, _ = sf.read(path, dtype="float32")
    return f"{len(audio)} samples peak {float(abs(audio).max()):.2f}"


class Server:
    def __init__(self, probe_site: Path, *args: str, env: dict[str, str] | None = None,
                 model: tuple[str, str] = ("probe", "none")) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "asrctl", "serve", "-b", model[0], "-m", model[1], "--port", str(self.port),
             "--device", "cpu", *args],
            env={**os.environ, "PYTHONPATH": str(probe_site), "PROBE_TIMES": "1", **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, self.process.communicate()[1]
            time.sleep(0.2)

    def client(self, key: str = "unused") -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)

    def metric(self, name: str) -> float:
        lines = httpx.get(f"{self.url}/metrics").text.splitlines()
        return sum(float(line.split()[-1]) for line in lines if line.startswith(name + " ") or
                   line.startswith(name + "{"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture(scope="module")
def server(probe_site):
    # a window of 10 s: longer uploads are cut into speech segments (--segment auto)
    running = Server(probe_site, "--timestamps", "word", "--wait-ms", "300",
                     env={"PROBE_SLEEP": "0.2", "PROBE_WINDOW": "10"})
    yield running
    running.stop()


def transcribe(client, path: Path, **fields):
    with open(path, "rb") as f:
        return client.audio.transcriptions.create(model="none", file=f, **fields)


def test_every_response_format(server):
    client = server.client()
    expected = probe_text(FILES[0])
    assert transcribe(client, FILES[0]).text == expected
    assert transcribe(client, FILES[0], response_format="text").strip() == expected
    seconds = sf.info(FILES[0]).duration
    cues = list(srt.parse(transcribe(client, FILES[0], response_format="srt")))
    assert " ".join(c.content.replace("\n", " ") for c in cues) == expected
    assert all(0 <= c.start.total_seconds() <= c.end.total_seconds() <= seconds + 1e-3 for c in cues)
    vtt = webvtt.from_string(transcribe(client, FILES[0], response_format="vtt"))
    assert " ".join(c.text.replace("\n", " ") for c in vtt) == expected
    verbose = transcribe(client, FILES[0], response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert verbose.text == expected and verbose.duration == pytest.approx(seconds)
    assert [w.word for w in verbose.words] == expected.split()
    assert verbose.words[-1].end == pytest.approx(seconds, abs=0.01)
    assert [s.text for s in verbose.segments] == [expected]
    assert server.client().models.list().data[0].id == "none"


def test_bad_requests_get_their_status_and_one_line(server, tmp_path):
    client = server.client()
    with pytest.raises(openai.BadRequestError, match="response_format 'xml': expected one of json"):
        transcribe(client, FILES[0], response_format="xml")
    (tmp_path / "noise.wav").write_bytes(bytes(range(256)) * 20)
    with pytest.raises(openai.BadRequestError, match="noise.wav: cannot"):
        transcribe(client, tmp_path / "noise.wav")
    with pytest.raises(openai.BadRequestError, match="backend probe does not translate per request"):
        with open(FILES[0], "rb") as f:
            client.audio.translations.create(model="none", file=f)
    response = httpx.post(f"{server.url}/v1/audio/transcriptions", data={"model": "none"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"


def test_a_long_upload_is_cut_into_segments_batched_with_others_and_streamed(server):
    client = server.client()
    long = SPEECH / "long01.flac"  # 34 s of speech with pauses: segments of up to 10 s
    batches = server.metric("asrctl_batch_size_count")
    with ThreadPoolExecutor(2) as pool:
        streamed = pool.submit(lambda: list(transcribe(client, long, stream=True)))
        short = pool.submit(transcribe, client, FILES[0])
        events = streamed.result()
    ran = server.metric("asrctl_batch_size_count") - batches
    assert short.result().text == probe_text(FILES[0])
    *deltas, done = events
    assert all(e.type == "transcript.text.delta" for e in deltas) and done.type == "transcript.text.done"
    assert "".join(e.delta for e in deltas) == done.text == transcribe(client, long).text
    samples = [int(e.delta.split()[0]) for e in deltas]
    assert len(deltas) >= 4 and max(samples) <= 10 * 16000
    assert sum(samples) <= len(sf.read(long)[0])  # speech only, each sample at most once
    assert ran <= 2, f"{ran} batches for {len(deltas)} segments and a short upload"  # batched together
    [one] = [e for e in transcribe(client, FILES[1], stream=True) if e.type == "transcript.text.delta"]
    assert one.delta == probe_text(FILES[1])
    with pytest.raises(openai.BadRequestError, match="it takes response_format json or text, not srt"):
        list(transcribe(client, FILES[0], stream=True, response_format="srt"))


def test_thirty_two_concurrent_requests_are_answered_rightly_in_fewer_batches(server):
    client = server.client()
    batches = server.metric("asrctl_batch_size_count")
    paths = [FILES[i % 8] for i in range(32)]
    with ThreadPoolExecutor(32) as pool:
        texts = list(pool.map(lambda p: transcribe(client, p).text, paths))
    assert texts == [probe_text(p) for p in paths]
    ran = server.metric("asrctl_batch_size_count") - batches
    assert ran < 32 and server.metric("asrctl_batch_size_sum") >= 32
    assert ran <= 8, f"{ran} batches for 32 requests"


@pytest.fixture(scope="module")
def guarded(probe_site):
    running = Server(probe_site, "--api-key", "sesame", "--max-upload-mb", "0.5", "--max-audio-seconds", "4")
    yield running
    running.stop()


def test_the_key_and_the_limits(guarded):
    assert transcribe(guarded.client("sesame"), FILES[0]).text == probe_text(FILES[0])
    for key in ("wrong", ""):
        with pytest.raises(openai.AuthenticationError):
            transcribe(guarded.client(key or "none"), FILES[0])
    assert httpx.get(f"{guarded.url}/health").status_code == 200  # open without the key
    with pytest.raises(openai.APIStatusError, match="over the server's limit of 4 s") as longer:
        transcribe(guarded.client("sesame"), FILES[1])  # 5.2 s
    assert longer.value.status_code == 413
    big = SPEECH / "long01.flac"  # 0.66 MB
    with pytest.raises(openai.APIStatusError, match="over the server's limit of 0.5 MB") as larger:
        transcribe(guarded.client("sesame"), big)
    assert larger.value.status_code == 413

    def chunks():  # no Content-Length: the bytes are counted as they come
        yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.flac\"\r\n\r\n"
        for _ in range(200):
            yield b"\0" * 4096
    response = httpx.post(f"{guarded.url}/v1/audio/transcriptions", content=chunks(),
                          headers={"content-type": "multipart/form-data; boundary=x", "authorization": "Bearer sesame"})
    assert response.status_code == 413 and "0.5 MB" in response.json()["error"]["message"]


def test_sigterm_finishes_the_requests_in_flight(probe_site):
    running = Server(probe_site, "--wait-ms", "200", env={"PROBE_SLEEP": "1"})
    client = running.client()
    results: list = []

    def call(path: Path) -> None:
        results.append(transcribe(client, path).text)

    threads = [threading.Thread(target=call, args=(FILES[i],)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # the requests are in, their batch running
    running.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    assert sorted(results) == sorted(probe_text(FILES[i]) for i in range(4))
    # uvicorn ends by raising the signal it caught again, once it has shut down cleanly
    assert running.process.wait(30) in (0, -signal.SIGTERM)
    assert "Traceback" not in running.process.stderr.read()


def test_a_client_that_leaves_has_its_queued_work_dropped(probe_site):
    running = Server(probe_site, "--batch-size", "1", "--wait-ms", "0", env={"PROBE_SLEEP": "2"})
    try:
        first = threading.Thread(target=transcribe, args=(running.client(), FILES[0]))
        first.start()
        time.sleep(0.3)  # the first request's batch is running, for two seconds
        with open(FILES[1], "rb") as f, pytest.raises(httpx.TimeoutException):
            httpx.post(f"{running.url}/v1/audio/transcriptions", files={"file": f}, timeout=0.5)
        first.join(30)
        time.sleep(2.5)  # what the second request queued would have run by now
        assert running.metric("asrctl_dropped_total") == 1
        assert running.metric("asrctl_batch_size_sum") == 1  # the first request's item only
        assert transcribe(running.client(), FILES[2]).text == probe_text(FILES[2])  # still serving
    finally:
        running.stop()


def post(server: Server, path: Path) -> httpx.Response:
    with open(path, "rb") as f:
        return httpx.post(f"{server.url}/v1/audio/transcriptions", files={"file": f}, timeout=60)


def test_a_failing_item_fails_alone(probe_site):
    samples = len(sf.read(FILES[1])[0])
    running = Server(probe_site, "--batch-size", "4", "--wait-ms", "300", env={"PROBE_FAIL_SAMPLES": str(samples)})
    try:
        with ThreadPoolExecutor(2) as pool:  # in one batch, which fails for FILES[1]'s sake
            good, bad = pool.map(lambda p: post(running, p), (FILES[0], FILES[1]))
        assert good.json()["text"] == probe_text(FILES[0])
        assert bad.status_code == 500 and "probe failure" in bad.json()["error"]["message"]
        # one batch held both, and the retry in halves saved the good one
        assert running.metric("asrctl_batch_size_count") == 1 and running.metric("asrctl_batch_size_sum") == 2
        assert transcribe(running.client(), FILES[2]).text == probe_text(FILES[2])  # still serving
    finally:
        running.stop()


def test_a_full_queue_turns_requests_away_with_retry_after(probe_site):
    running = Server(probe_site, "--max-queue", "1", "--batch-size", "1", "--wait-ms", "0",
                     env={"PROBE_SLEEP": "1"})
    try:
        with ThreadPoolExecutor(4) as pool:  # one runs, one waits, the others find the queue full
            answers = list(pool.map(lambda p: post(running, p), FILES[:4]))
        turned_away = [r for r in answers if r.status_code == 503]
        assert len(turned_away) >= 1 and all(r.headers["retry-after"] == "1" for r in turned_away)
        assert "busy" in turned_away[0].json()["error"]["message"]
        assert [r.json()["text"] for r in answers if r.status_code == 200] == \
               [probe_text(p) for p, r in zip(FILES, answers) if r.status_code == 200]
    finally:
        running.stop()


@pytest.mark.real_model
def test_whisper_base_translates_per_request_and_streams_a_long_recording(probe_site, ct2_model):
    running = Server(probe_site, "-O", "compute_type=int8", model=("faster-whisper", str(ct2_model)))
    try:
        client = running.client()
        german = SPEECH.parent / "multilingual" / "de02.flac"  # "Ich möchte bitte eine Tasse Kaffee mit Milch."
        with open(german, "rb") as f:
            english = client.audio.translations.create(model="base", file=f, extra_body={"language": "de"}).text
        assert {"coffee", "milk"} <= set(english.lower().replace(".", "").split()), english
        assert "Tasse" in transcribe(client, german, language="de").text  # the same server, transcribing
        long = SPEECH / "long01.flac"  # 34 s: cut in two at a pause, each half in Whisper's window
        *deltas, done = transcribe(client, long, stream=True, language="en")
        assert len(deltas) >= 2 and "".join(e.delta for e in deltas) == done.text
        reference = json.loads((SPEECH / "manifest.jsonl").read_text().splitlines()[-1])
        assert reference["audio_filepath"] == long.name
        assert jiwer.wer(normalize(reference["text"]), normalize(done.text)) < 0.15
    finally:
        running.stop()


def normalize(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())
