"""`asrctl serve`: a model behind the OpenAI transcription API, the audio of every request batched together."""

from __future__ import annotations

from typing import Any

import click

from asrctl.commands.infer import BACKEND_OPTIONS, default_model, segment_options
from asrctl.commands.options import apply_options
from asrctl.devices import DTYPES
from asrctl.infer.job import DEFAULT_BATCH_SECONDS, DEFAULT_BATCH_SIZE
from asrctl.specs import INFER_OPTIONS


@click.command("serve")
@click.option("-b", "--backend", help="Model family (see `asrctl plugins`). [default: faster-whisper, or "
                                      "`asrctl config`]")
@click.option("-m", "--model", help="Hub id, local model folder/file, or a backend's own name. [default: base, or "
                                    "`asrctl config`]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="At most this many utterances per batch, from all requests.")
@click.option("--batch-seconds", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_BATCH_SECONDS,
              show_default=True, help="At most this much padded audio per batch, in seconds.")
@click.option("--wait-ms", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="How long a batch waits for more requests' audio once it has some.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=25.0, show_default=True,
              help="Larger uploads are refused (413) while they stream in.")
@click.option("--max-audio-seconds", type=click.FloatRange(min=0, min_open=True), default=10800.0, show_default=True,
              help="Longer audio is refused (413).")
@click.option("--max-queue", type=click.IntRange(min=1), default=256, show_default=True,
              help="Requests waiting for a batch; past it a request gets 503 with Retry-After.")
@click.option("--api-key", envvar="ASRCTL_API_KEY", help="Requests to /v1/ need `Authorization: Bearer KEY` "
                                                         "[env: ASRCTL_API_KEY]; /health and /metrics stay open.")
@apply_options(segment_options("auto"))
@apply_options(BACKEND_OPTIONS)
def serve_command(backend: str | None, model: str | None, host: str, port: int, device: str, dtype: str,
                  batch_size: int, batch_seconds: float, wait_ms: float, max_upload_mb: float,
                  max_audio_seconds: float, max_queue: int, api_key: str | None, segment: str, segmenter: str,
                  segmenter_options: dict[str, Any], max_segment: float | None, **params: Any) -> None:
    """Serve a model behind OpenAI's transcription API: POST /v1/audio/transcriptions (and
    /v1/audio/translations where the backend translates), GET /v1/models, /health (503 while the
    model loads) and /metrics (Prometheus). The audio of concurrent requests is batched together;
    long uploads are cut at their pauses (--segment auto) and their segments batched with the rest,
    and stream=true sends the text of each segment as it is done.

    response_format json, text, srt, vtt or verbose_json; srt, vtt and word timestamps need the
    server started with --timestamps word (or segment). The official `openai` client works as it is:
    OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="KEY or anything").

    \b
    Examples:
      asrctl serve
      asrctl serve -b faster-whisper -m out-ct2/ --timestamps word --port 8000
      curl -F file=@talk.wav -F model=base http://127.0.0.1:8000/v1/audio/transcriptions
    """
    try:
        import uvicorn

        from asrctl.serve.app import Limits, create_app
        from asrctl.serve.model import Model
    except ImportError as exc:
        raise click.ClickException(f"asrctl serve needs its extra ({exc.name} is missing): "
                                   "pip install -e \".[serve]\"") from None

    from asrctl import plugins
    from asrctl.infer.job import check_options
    from asrctl.infer.segmentation import Segmentation, check_segmentation

    backend, model = default_model(backend, model)
    options = {k: v for k, v in params.items() if k in INFER_OPTIONS and v is not None} | params["backend_options"]
    # A mistake is one line now, not a server that fails.
    check_options(plugins.backends().get(backend), options)
    check_segmentation(Segmentation(segment, segmenter, segmenter_options, max_segment))

    def load() -> Model:
        return Model(backend, model, device=device, dtype=dtype, batch_size=batch_size, batch_seconds=batch_seconds,
                     wait_seconds=wait_ms / 1000, max_queued=max_queue, segment=segment, vad=segmenter,
                     vad_options=segmenter_options, max_segment=max_segment, **options)

    limits = Limits(int(max_upload_mb * 2**20), max_audio_seconds)
    app = create_app(load, model, limits=limits, api_key=api_key)
    click.echo(f"asrctl serve: {backend} {model} on http://{host}:{port}/v1 (loading; /health says when ready)",
               err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
