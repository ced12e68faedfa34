"""`asrctl align`: the time of each word and sentence of each row's known text in its audio."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import click

from asrctl.commands.infer import (
    BACKEND_OPTION,
    JOB_OPTIONS,
    LANGUAGE_KEY_OPTION,
    OUTPUT_OPTIONS,
    RESUME_OPTIONS,
    write_files,
)
from asrctl.commands.options import MANIFEST, apply_options
from asrctl.transcripts.cues import CueLimits
from asrctl.transcripts.writers import expand_formats


@click.command("align")
@click.argument("manifest", type=MANIFEST)
@click.option("-b", "--backend", required=True, help="A backend that aligns (`asrctl plugins`: hf-ctc, ...).")
@click.option("-m", "--model", required=True, help="Hub id or local model folder.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The rows with `words` and `segments` added.")
@click.option("--text-key", default="text", show_default=True, metavar="FIELD", help="The field holding the text.")
@LANGUAGE_KEY_OPTION
@apply_options(OUTPUT_OPTIONS)
@apply_options(JOB_OPTIONS)
@apply_options(RESUME_OPTIONS)
# what reaches the backend's load: the language of a Whisper's prompt, how to load, -O
@apply_options([BACKEND_OPTION[name] for name in ("language", "chunk_seconds", "trust_remote_code", "allow_pickle",
                                                  "backend_options")])
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary table (errors are still shown).")
def align_command(manifest: Path, backend: str, model: str, output: Path, text_key: str, language_key: str | None,
                  output_formats: tuple[str, ...], output_dir: Path | None, max_line_width: int, max_line_count: int,
                  max_cue_seconds: float, quiet: bool, language: str | None, chunk_seconds: float | None,
                  trust_remote_code: bool | None, allow_pickle: bool | None, backend_options: dict, **params) -> None:
    """Place each row's known text in its audio: add `words` (word, start, end, score: every word of
    the text as written, in order) and `segments` (its sentences, likewise) to the row.

    Case and punctuation are left out of the matching only, and numbers are matched as they are read
    where the vocabulary has no digits. A word the model cannot spell at all gets score 0 and the
    times where the word before it ended; a row whose audio is too short for its text, or
    without audio, gets an error and the rest go on. Batches, resume after an interruption, error
    rows, progress and --engine ray work as in `asrctl infer`.

    --output-format srt|vtt|tsv|txt|json|all writes each aligned row's text as subtitles (cues from
    its word times, as `asrctl infer` makes them) into --output-dir: a transcript and its video
    become subtitles.

    \b
    Examples:
      asrctl align hearings.jsonl -b hf-ctc -m facebook/wav2vec2-base-960h -o hearings.aligned.jsonl
      asrctl align talks.jsonl -b hf-ctc -m ./my-ctc --text-key transcript --device cuda -o aligned.jsonl
      asrctl align lecture.jsonl -b hf-whisper -m openai/whisper-small -o aligned.jsonl -f srt --output-dir subs/
    """
    from asrctl.infer.job import InferJob
    from asrctl.infer.run import run_infer
    from asrctl.interrupts import Interrupted
    from asrctl.progress import InferProgress, print_summary

    flags = {"language": language, "chunk_seconds": chunk_seconds, "trust_remote_code": trust_remote_code,
             "allow_pickle": allow_pickle}
    options = {name: value for name, value in flags.items() if value is not None} | backend_options
    keys = {"text": text_key, **({"language": language_key} if language_key else {})}
    job = InferJob(manifest=manifest, output=output, backend=backend, model=model, options=options,
                   pred_key="words", item_keys=keys, align=True, **params)
    try:
        summary = run_infer(job, progress_factory=partial(InferProgress, quiet=quiet, label="align"))
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; finished rows are saved: run the same command to resume {output}") from None
    if summary.finished_before:
        click.echo(f"{output}: already done by this command ({summary.rows} rows), nothing to do", err=True)
    else:
        print_summary(f"asrctl align -> {output}", [
            ("rows", str(summary.rows)),
            ("kept from an earlier run", str(summary.resumed)),
            ("aligned now", str(summary.transcribed)),
            ("errors", str(len(summary.errors))),
            ("audio seconds (this run)", f"{summary.audio_seconds:.1f}"),
            ("wall seconds (with model load)", f"{summary.wall_seconds:.1f}"),
        ], summary.errors, quiet=quiet)
    formats = expand_formats(output_formats or (("all",) if output_dir else ()))
    limits = CueLimits(max_line_width, max_line_count, max_cue_seconds)
    write_files(output, formats, output_dir or output.parent, limits, text_key, quiet, done_key="words")
    if summary.errors:
        sys.exit(3)  # finished, some rows failed
