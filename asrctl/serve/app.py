"""The OpenAI transcription API over a loaded model (asrctl.serve.model): POST /v1/audio/transcriptions
and /v1/audio/translations with OpenAI's fields and response formats, GET /v1/models, /health (503
while the model loads) and /metrics (Prometheus). Every request's audio joins the same batches (a long
upload as its speech segments, which a stream=true request hears of one by one, as server-sent events).

Uploads are counted as they stream in and refused past the limit (413) before they are whole;
an error body is OpenAI's shape with one line of message.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asrctl.data.audio import load_audio
from asrctl.errors import AsrctlError
from asrctl.infer.job import WorkResult
from asrctl.serve.batcher import QueueFull
from asrctl.serve.model import Model, Pending
from asrctl.specs import SAMPLE_RATE, Transcript
from asrctl.transcripts.cues import CueLimits
from asrctl.transcripts.writers import render

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
# How often a request waiting for its batch checks that its client is still there.
DISCONNECT_POLL_SECONDS = 0.1


@dataclass
class Limits:
    upload_bytes: int = 25 * 2**20  # OpenAI's own limit
    audio_seconds: float = 3 * 3600.0
    cues: CueLimits = field(default_factory=CueLimits)


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


def error_body(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error",
               headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}},
                        status_code=status, headers=headers)


class UploadLimit:
    """ASGI middleware: a request body over `limit` bytes is refused with 413 as soon as it is seen to be
    (by Content-Length, else by the bytes counted as they arrive), before the rest is read."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        seen = 0
        exceeded = False

        async def counting() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # the app reads no more: to it the client has gone
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def sending(message: Message) -> None:
            if not exceeded:  # what the app says to a body it saw cut short is replaced by the 413
                await send(message)

        try:
            await self.app(scope, counting, sending)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await _too_large(limit)(scope, receive, send)




def _too_large(limit: int) -> JSONResponse:
    return error_body(413, f"the upload is over the server's limit of {limit / 2**20:.3g} MB (--max-upload-mb)",
                      "file")


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("asrctl_requests", "Requests answered, by status", ["status"], registry=r)
        self.queue = Gauge("asrctl_queue_depth", "Items waiting for a batch", registry=r)
        self.batch_size = Histogram("asrctl_batch_size", "Items per batch", buckets=(1, 2, 4, 8, 16, 32, 64),
                                    registry=r)
        self.batch_seconds = Histogram("asrctl_batch_audio_seconds", "Padded audio seconds per batch",
                                       buckets=(5, 15, 30, 60, 120, 240, 480, 960), registry=r)
        self.latency = Histogram("asrctl_request_seconds", "Time from a request to its answer", registry=r)
        self.dropped = Counter("asrctl_dropped", "Requests whose client left before their answer", registry=r)


def create_app(load: Callable[[], Model], name: str, *, limits: Limits | None = None,
               api_key: str | None = None) -> FastAPI:
    """The app; `load()` loads the model, in a thread, once the server starts (until then /health is 503)."""
    limits = limits or Limits()
    metrics = Metrics()
    state: dict[str, Any] = {"model": None, "error": None}

    def loading() -> None:
        try:
            model = load()
        except Exception as exc:  # the server stays up to say so on /health
            state["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, AsrctlError) else str(exc)
            return
        model.on_batch(lambda count, seconds: (metrics.batch_size.observe(count),
                                               metrics.batch_seconds.observe(seconds)))
        state["model"] = model

    app = FastAPI(title="asrctl", docs_url=None, redoc_url=None)

    @app.on_event("startup")
    def start_loading() -> None:
        threading.Thread(target=loading, name="asrctl-load", daemon=True).start()

    @app.on_event("shutdown")
    def stop() -> None:
        if state["model"] is not None:
            state["model"].close()  # what is queued is finished first

    def authorize(request: Request) -> None:
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            raise ApiError(401, "a missing or wrong API key (Authorization: Bearer KEY)", kind="authentication_error")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_body(exc.status, exc.message, exc.param, exc.kind)

    @app.get("/health")
    def health() -> JSONResponse:
        if state["model"] is None:
            status, detail = (500, state["error"]) if state["error"] else (503, "loading the model")
            return JSONResponse({"status": detail}, status_code=status)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    def prometheus() -> Response:
        if state["model"] is not None:
            metrics.queue.set(state["model"].queued)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    def models(request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "asrctl"}]}

    async def transcription(request: Request, task: str) -> Response:
        start = time.monotonic()
        try:
            response = await answer(request, task)
        except ApiError as exc:
            response = error_body(exc.status, exc.message, exc.param, exc.kind)
        metrics.requests.labels(str(response.status_code)).inc()
        metrics.latency.observe(time.monotonic() - start)
        return response

    async def answer(request: Request, task: str) -> Response:
        authorize(request)
        model: Model | None = state["model"]
        if model is None:
            raise ApiError(503, state["error"] or "the model is loading: try again shortly", kind="server_error")
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(400, "no audio: send it as the multipart field 'file'", "file")
        response_format = str(form.get("response_format") or "json")
        if response_format not in RESPONSE_FORMATS:
            raise ApiError(400, f"response_format {response_format!r}: expected one of {', '.join(RESPONSE_FORMATS)}",
                           "response_format")
        stream = str(form.get("stream") or "false").lower()
        if stream not in ("true", "false"):
            raise ApiError(400, f"stream {stream!r}: expected true or false", "stream")
        stream_events = stream == "true"
        if stream_events and response_format not in ("json", "text"):
            raise ApiError(400, f"stream gives text events: it takes response_format json or text, not "
                                f"{response_format}", "stream")
        granularities = [str(g) for g in form.getlist("timestamp_granularities[]")]
        for granularity in granularities:
            if granularity not in GRANULARITIES:
                raise ApiError(400, f"timestamp_granularities {granularity!r}: expected word or segment",
                               "timestamp_granularities[]")
        if granularities and response_format != "verbose_json":
            raise ApiError(400, "timestamp_granularities need response_format verbose_json",
                           "timestamp_granularities[]")
        settings: dict[str, Any] = {"language": str(form["language"])} if form.get("language") and \
            "language" in model.item_settings else {}
        if "task" in model.item_settings:
            settings["task"] = task
        elif task == "translate":
            raise ApiError(400, f"backend {model.backend} does not translate per request", "model")
        data = await upload.read()
        samples = await asyncio.to_thread(decode_upload, data, str(upload.filename or "upload"))
        if samples.size / SAMPLE_RATE > limits.audio_seconds:
            raise ApiError(413, f"the audio is {samples.size / SAMPLE_RATE:.0f} s long, over the server's limit of "
                                f"{limits.audio_seconds:g} s (--max-audio-seconds)", "file")
        try:
            pending = await asyncio.to_thread(model.submit, samples, **settings)
        except QueueFull as exc:
            return error_body(503, f"the server is busy ({exc}, --max-queue): retry shortly", kind="server_error",
                              headers={"Retry-After": "1"})
        if isinstance(pending, AsrctlError):
            raise ApiError(400, str(pending), "file")
        if stream_events:
            return StreamingResponse(events(request, pending), media_type="text/event-stream")
        if not await arrived(request, pending, pending.parts):
            return Response(status_code=499)
        outcome = pending.outcome()
        if isinstance(outcome, AsrctlError):
            raise ApiError(500, str(outcome), kind="server_error")
        return respond(outcome, response_format, granularities, samples.size / SAMPLE_RATE, task, limits.cues)

    async def arrived(request: Request, pending: Pending, parts: list[tuple[Any, Future[WorkResult]]]) -> bool:
        """Wait for `parts` of `pending`; False, with all of it cancelled, if the client leaves first
        (its queued work is dropped before it reaches the model)."""
        waiting = {asyncio.wrap_future(future) for _, future in parts}
        while waiting:
            waiting = (await asyncio.wait(waiting, timeout=DISCONNECT_POLL_SECONDS))[1]
            if waiting and await request.is_disconnected():
                pending.cancel()
                metrics.dropped.inc()
                return False
        return True

    async def events(request: Request, pending: Pending) -> AsyncIterator[str]:
        """Server-sent events as OpenAI's streaming transcription sends them: a transcript.text.delta as
        each part (a speech segment of a long upload) is done, in order, then transcript.text.done."""
        said = False
        try:
            for part in pending.parts:
                if not await arrived(request, pending, [part]):
                    return
                result = part[1].result()
                if result.transcript is None:
                    yield sse({"error": {"message": str(pending.outcome()), "type": "server_error", "param": None,
                                         "code": None}})
                    return
                text = result.transcript.text.strip()
                if text:
                    yield sse({"type": "transcript.text.delta", "delta": (" " if said else "") + text})
                    said = True
            outcome = pending.outcome()
            yield sse({"type": "transcript.text.done", "text": outcome.text if isinstance(outcome, Transcript) else ""})
        finally:  # the stream closed early (the client left): what is still queued is dropped
            pending.cancel()

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        return await transcription(request, "transcribe")

    @app.post("/v1/audio/translations")
    async def translations(request: Request) -> Response:
        return await transcription(request, "translate")

    return UploadLimit(app, lambda: limits.upload_bytes)  # type: ignore[return-value]


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event)}\n\n"


def decode_upload(data: bytes, filename: str) -> Any:
    """The upload's audio at 16 kHz mono (any format ffmpeg reads); 400 with the reason otherwise."""
    suffix = os.path.splitext(filename)[1][:10]
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        f.write(data)
        f.flush()
        try:
            return load_audio(f.name)
        except AsrctlError as exc:
            raise ApiError(400, str(exc).replace(f.name, filename), "file") from None


def respond(transcript: Transcript, response_format: str, granularities: list[str], duration: float, task: str,
            cues: CueLimits) -> Response:
    record = {"audio_filepath": "upload", "duration": duration, "pred_text": transcript.text,
              **({"pred_segments": transcript.segments} if transcript.segments else {}),
              **({"pred_words": transcript.words} if transcript.words else {})}
    if response_format == "json":
        return JSONResponse({"text": transcript.text})
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format in ("srt", "vtt"):
        if not (transcript.words or transcript.segments):
            raise ApiError(400, f"response_format {response_format} needs timestamps: start the server with "
                                "--timestamps word (or segment)", "response_format")
        return PlainTextResponse(render(response_format, record, cues, "pred_text"))
    segments = [{"id": i, "seek": 0, "start": s["start"], "end": s["end"], "text": s["text"], "tokens": [],
                 "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 0.0, "no_speech_prob": 0.0}
                for i, s in enumerate(transcript.segments or [])]
    body: dict[str, Any] = {"task": task, "language": transcript.language or "", "duration": duration,
                            "text": transcript.text}
    if "segment" in granularities or not granularities:
        body["segments"] = segments
    if "word" in granularities:
        if transcript.words is None:
            raise ApiError(400, "word timestamps: start the server with --timestamps word", "timestamp_granularities[]")
        body["words"] = [{"word": w["word"], "start": w["start"], "end": w["end"]} for w in transcript.words]
    return JSONResponse(body)
