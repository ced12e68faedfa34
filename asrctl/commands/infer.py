"""`asrctl infer`: transcribe a manifest with any backend."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from asrctl.commands.options import MANIFEST, apply_options, parse_key_values
from asrctl.devices import DTYPES
from asrctl.infer.job import DEFAULT_BATCH_SECONDS, DEFAULT_BATCH_SIZE
from asrctl.specs import INFER_OPTIONS

# Options that reach the backend's load(): flags named as asrctl.specs.INFER_OPTIONS, and -O for the rest.
BACKEND_OPTIONS = [
    click.option("--language", help="Spoken language code (e.g. en), for multilingual models; rows may set their "
                                    "own with --language-key."),
    click.option("--task", type=click.Choice(["transcribe", "translate"]),
                 help="transcribe, or translate: Whisper to English, Canary to --target-language."),
    click.option("--target-language", help="The language --task translate translates to (Canary), e.g. de; rows may "
                                           "set their own with --target-language-key."),
    click.option("--detect-language", is_flag=True, default=None,
                 help="Add pred_lang and pred_lang_prob: the language each row's audio is in, as the model detects "
                      "it (multilingual Whisper). Rows are still decoded in their given language, if any."),
    click.option("--beam-size", type=click.IntRange(min=1),
                 help="Beam search width (default: the backend's greedy decoding)."),
    click.option("--timestamps", type=click.Choice(["segment", "word"]),
                 help="Add pred_segments or pred_words with times."),
    click.option("--chunk-seconds", type=click.FloatRange(min=1),
                 help="Long audio is cut into windows this long (CTC)."),
    click.option("--quantize", type=click.Choice(["int8"]),
                 help="Dynamic int8 quantisation of linear layers, a Whisper's encoder only (CPU speed-up; changes "
                      "numerics)."),
    click.option("--trust-remote-code", is_flag=True, default=None,
                 help="Allow the model repository to run its own code."),
    click.option("--allow-pickle", is_flag=True, default=None,
                 help="Load pickle-based weights (pytorch_model.bin, .nemo, .pt), which can run code: only from "
                      "sources you trust. Without it, only safetensors are loaded."),
    click.option("-O", "--backend-option", "backend_options", multiple=True, metavar="KEY=VALUE",
                 callback=lambda ctx, param, values: parse_key_values(values, "-O", "compute_type=int8"),
                 help="An option of the backend's own, e.g. -O compute_type=int8 (each backend's keys: "
                      "`asrctl plugins`). Repeatable; the value is read as YAML (5, true, int8)."),
]


RUN_OPTIONS = [
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
    click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True,
                 help="auto = bfloat16 on GPUs that support it (else float16), float32 on CPU."),
    click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
                 help="At most this many utterances per batch."),
    click.option("--batch-seconds", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_BATCH_SECONDS,
                 show_default=True,
                 help="At most this much padded audio per batch (count x longest), in seconds; a Whisper's "
                      "short rows count as its 30-s window."),
    click.option("--num-workers", type=click.IntRange(min=0), default=min(4, os.cpu_count() or 1), show_default=True,
                 help="Processes decoding audio while the model runs (0 = in the main process)."),
    click.option("--engine", default="local", show_default=True,
                 help="Where the job runs (see `asrctl plugins --all`)."),
    click.option("-E", "--engine-option", "engine_options", multiple=True, metavar="KEY=VALUE",
                 callback=lambda ctx, param, values: parse_key_values(values, "-E", "workers=4"),
                 help="A setting of the engine's own, e.g. --engine ray -E workers=4 (see docs/scaling.md). "
                      "Repeatable; the value is read as YAML."),
    click.option("--segment", type=click.Choice(["auto", "vad", "none"]), default="none", show_default=True,
                 help="Cut rows into speech segments with a voice-activity detector, batched with the other rows: "
                      "auto = rows longer than the backend's window (Whisper 30 s), vad = every row, "
                      "none = each row whole (the backend's own long-form decoding)."),
    click.option("--vad", "segmenter", default="silero", show_default=True,
                 help="The voice-activity detector for --segment (see `asrctl plugins --all`)."),
    click.option("-V", "--vad-option", "segmenter_options", multiple=True, metavar="KEY=VALUE",
                 callback=lambda ctx, param, values: parse_key_values(values, "-V", "threshold=0.6"),
                 help="A setting of the detector, e.g. -V threshold=0.6 -V min_silence=0.3 (silero: threshold, "
                      "min_silence, min_speech, speech_pad; seconds). Repeatable."),
    click.option("--max-segment", type=click.FloatRange(min=1), metavar="SECONDS",
                 help="Longest segment --segment makes [default: the backend's window, else 30]."),
    click.option("--language-key", metavar="FIELD",
                 help="Each row's spoken language from this field (e.g. lang: en, de); rows without it take "
                      "--language, else the model detects it."),
    click.option("--target-language-key", metavar="FIELD",
                 help="Each row's language to translate to from this field (Canary); rows without it take "
                      "--target-language, else they are transcribed."),
    click.option("--pred-key", default="pred_text", show_default=True, help="Field holding the transcript."),
    click.option("--overwrite", is_flag=True, help="Start again instead of resuming an unfinished output."),
    click.option("--retry-errors", is_flag=True,
                 help="Redo the rows of a finished output that have no prediction (after fixing their audio)."),
    *BACKEND_OPTIONS,
]


def default_output(manifest: Path) -> Path:
    stem = manifest.name.removesuffix(".jsonl").removesuffix(".json")
    return manifest.with_name(f"{stem}.pred.jsonl")


def transcribe(manifest: Path, output: Path, backend: str, model: str, quiet: bool, params: dict[str, Any]):
    """Run (or resume) inference from CLI parameters; returns the InferSummary after printing it."""
    from asrctl.infer.job import InferJob
    from asrctl.infer.run import run_infer
    from asrctl.infer.segmentation import Segmentation
    from asrctl.interrupts import Interrupted
    from asrctl.progress import InferProgress, print_summary

    flags = {o: params.pop(o) for o in INFER_OPTIONS}
    params["segmentation"] = Segmentation(params.pop("segment"), params.pop("segmenter"),
                                          params.pop("segmenter_options"), params.pop("max_segment"))
    options = {k: v for k, v in flags.items() if v is not None} | params.pop("backend_options")
    keys = {"language": params.pop("language_key"), "target_language": params.pop("target_language_key")}
    params["item_keys"] = {name: key for name, key in keys.items() if key}
    job = InferJob(manifest=manifest, output=output, backend=backend, model=model, options=options, **params)
    try:
        summary = run_infer(job, progress_factory=partial(InferProgress, quiet=quiet))
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; finished rows are saved: run the same command to resume {output}") from None
    if summary.finished_before:
        errors = len(summary.errors)
        retry = f"; --retry-errors redoes its {errors} error rows" if errors else ""
        click.echo(f"{output}: already done by this command ({summary.rows} rows), nothing to do{retry} "
                   "(--overwrite redoes every row)", err=True)
        return summary
    print_summary(
        f"asrctl infer -> {output}",
        [
            ("rows", str(summary.rows)),
            ("kept from an earlier run", str(summary.resumed)),
            ("transcribed now", str(summary.transcribed)),
            ("errors", str(len(summary.errors))),
            ("audio seconds (this run)", f"{summary.audio_seconds:.1f}"),
            ("wall seconds (with model load)", f"{summary.wall_seconds:.1f}"),
            ("RTFx", f"{summary.rtfx:.1f}"),
        ],
        summary.errors,
        quiet=quiet,
    )
    return summary


@click.command("infer")
@click.argument("manifest", type=MANIFEST)
@click.option("-b", "--backend", required=True,
              help="Model family, e.g. hf-whisper, hf-ctc, nemo (see `asrctl plugins`).")
@click.option("-m", "--model", required=True, help="Hub id (openai/whisper-small) or a local model folder/file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output manifest [default: MANIFEST with .pred.jsonl].")
@apply_options(RUN_OPTIONS)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary table (errors are still shown).")
def infer_command(manifest: Path, backend: str, model: str, output: Path | None, quiet: bool, **params) -> None:
    """Transcribe every row of MANIFEST and write the rows back with a prediction added.

    Each output row keeps all input fields and adds the transcript under --pred-key (pred_text).
    A row whose audio is missing or cannot be decoded gets pred_text null and an "error" field;
    the other rows are unaffected, and the exit code is 3.

    Work is sorted by duration and batched by total audio seconds; rows come out in input order.
    Finished rows are saved as they complete: after a crash or Ctrl-C, run the same command again
    to continue where it stopped (--overwrite starts again). Run again once finished, it has
    nothing to do; --retry-errors redoes only the rows that failed.

    \b
    Examples:
      asrctl infer test.jsonl -b hf-whisper -m openai/whisper-small -o test.pred.jsonl
      asrctl infer test.jsonl -b hf-ctc -m facebook/wav2vec2-base-960h --device cuda
      asrctl infer long.jsonl -b hf-whisper -m ./my-model --timestamps segment --language en
      asrctl infer cv.jsonl -b hf-whisper -m openai/whisper-small --language-key lang --detect-language
    """
    summary = transcribe(manifest, output or default_output(manifest), backend, model, quiet, params)
    if summary.errors and not summary.finished_before:
        sys.exit(3)
