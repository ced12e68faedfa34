"""`asrctl manifest`: build, check, inspect, split, filter, segment, convert, shard and merge audio manifests.

The work lives in asrctl/manifest_ops/ (one module per subcommand), imported inside each command so
that `asrctl --help` stays light. Bad rows are reported as they are met (FILE:LINE: reason) and
the job goes on; exit code 3 says some rows failed. Outputs are written atomically.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from asrctl.commands.options import MANIFEST
from asrctl.data.parallel import DEFAULT_WORKERS

SOME_ROWS_FAILED = 3

WORKERS = click.option("--workers", type=click.IntRange(min=1), default=DEFAULT_WORKERS, show_default=True,
                       help="Threads reading audio headers.")
QUIET = click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary (errors are still shown).")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
SOURCE_FORMAT = click.option("--from", "source_format", metavar="FORMAT",
                             help="Input format (default: detected; see `asrctl plugins --all`).")
FILE = click.Path(dir_okay=False, path_type=Path)


def _regex(ctx: click.Context, param: click.Parameter, value: str | None) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(value)
    except re.error as exc:
        raise click.BadParameter(f"not a regular expression: {exc}") from None


def _parsed(module: str, function: str):
    """A click callback applying module.function (raising ValueError) to the value, or to each value
    of a multiple option; the module is imported only when the option is given."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None or value == ():
            return [] if param.multiple else None
        parse = getattr(importlib.import_module(module), function)
        try:
            return [parse(v) for v in value] if param.multiple else parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def _key_values(values: tuple[str, ...]) -> dict[str, Any]:
    from asrctl.commands.options import parse_key_values

    return parse_key_values(values, "-V", "threshold=0.6")


def _finish(errors: int) -> None:
    if errors:
        sys.exit(SOME_ROWS_FAILED)


@click.group("manifest")
def manifest_group() -> None:
    """Build, check, inspect, split, filter, segment, convert and shard audio manifests.

    The native format is NeMo's JSONL: one JSON object per line with audio_filepath, duration and
    text, plus any other fields, which every command keeps. Relative audio paths resolve against
    the manifest's folder. Other formats (hf-datasets, hf-parquet, lhotse, kaldi, csv, tsv,
    nemo-tarred, webdataset, and any a plugin adds) go through `convert`.

    Bad rows are reported as FILE:LINE: reason and the rest goes on; the exit code is then 3.
    Guide: docs/manifest.md.
    """


@manifest_group.command("create")
@click.argument("audio_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=FILE, required=True, help="Manifest to write.")
@click.option("--ext", "extensions", multiple=True, metavar="EXT[,EXT]",
              help="Audio extensions to take (repeatable) [default: wav,flac,mp3,ogg,opus,m4a,aac,webm,mp4,...].")
@click.option("--transcripts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TSV (path<TAB>text) or .csv (path,text); paths relative to AUDIO_DIR, absolute, or stems.")
@click.option("--speaker-from", metavar="REGEX", callback=_parsed("asrctl.prepare.create", "speaker_pattern"),
              help="Regex on the path relative to AUDIO_DIR, with one group or a group named 'speaker'.")
@click.option("--absolute", is_flag=True, help="Write absolute audio paths [default: relative to the output's folder].")
@WORKERS
@QUIET
def create_command(audio_dir: Path, output: Path, extensions: tuple[str, ...], transcripts: Path | None,
                   speaker_from: re.Pattern[str] | None, absolute: bool, workers: int, quiet: bool) -> None:
    """Build a manifest from the audio files under AUDIO_DIR (searched recursively).

    Durations come from the file headers, read in parallel. Transcripts come from sidecar files
    (utt.txt or utt.lab beside utt.wav) or --transcripts. A file whose header cannot be read is
    reported as FILE: reason and left out.

    \b
    Examples:
      asrctl manifest create corpus/ -o corpus/all.jsonl
      asrctl manifest create wavs/ --transcripts metadata.tsv -o data/train.jsonl
      asrctl manifest create LibriSpeech/dev-clean --ext flac --speaker-from '^(\\d+)/' -o dev.jsonl
    """
    from functools import partial

    from asrctl.data.inputs import AUDIO_EXTENSIONS
    from asrctl.prepare.create import create_manifest
    from asrctl.progress import ErrorLog, hours, print_summary, progress

    chosen = tuple(e.strip() for value in extensions for e in value.split(",") if e.strip()) or AUDIO_EXTENSIONS
    errors = ErrorLog()
    summary = create_manifest(audio_dir, output, extensions=chosen, transcripts=transcripts, speaker_from=speaker_from,
                              absolute=absolute, workers=workers, on_error=errors,
                              progress=partial(progress, "create", quiet=quiet))
    pairs = [("rows", str(summary.rows)), ("hours", hours(summary.seconds)),
             ("unreadable (left out)", str(summary.failed)),
             ("without text", str(summary.no_text))]
    if speaker_from is not None:
        pairs.append(("without speaker", str(summary.no_speaker)))
    if transcripts:
        pairs.append(("transcripts matching no audio", str(summary.unused_transcripts)))
    print_summary(f"asrctl manifest create -> {output}", pairs, [], quiet=quiet)
    _finish(errors.count)


@manifest_group.command("validate")
@click.argument("manifest", type=MANIFEST)
@click.option("--duration-tolerance", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="Seconds a row's duration may differ from the file's.")
@click.option("--sample-rate", type=click.IntRange(min=1), help="Expected sample rate (not checked unless given).")
@click.option("--channels", type=click.IntRange(min=1), help="Expected channel count (not checked unless given).")
@click.option("--charset", callback=_parsed("asrctl.prepare.validate", "parse_charset"), metavar="CHARS|FILE",
              help="Allowed characters in text: ranges and literals (\"a-z' \") or a file of them.")
@click.option("--min-duration", type=float, help="Rows shorter than this (seconds) are problems.")
@click.option("--max-duration", type=float, help="Rows longer than this (seconds) are problems.")
@click.option("--allow-empty-text", is_flag=True,
              help="Rows without text or duration are fine (manifests for inference).")
@click.option("--fix", type=FILE, help="Write the clean rows here.")
@click.option("--rejects", type=FILE, help="Write the other rows here, each with a reject_reason field.")
@AS_JSON
@WORKERS
@QUIET
def validate_command(manifest: Path, duration_tolerance: float, sample_rate: int | None, channels: int | None,
                     charset: frozenset[str] | None, min_duration: float | None, max_duration: float | None,
                     allow_empty_text: bool, fix: Path | None, rejects: Path | None, as_json: bool, workers: int,
                     quiet: bool) -> None:
    """Check every row of MANIFEST and report the problems, grouped, with line numbers.

    Always checked: malformed lines, missing files, unreadable audio, a `channel` the file does not
    have, a missing duration (NeMo's loaders refuse the row), a duration that differs from the file
    by more than --duration-tolerance (for rows with an offset: a segment running past the end of
    the file), empty text, and repeated audio (same resolved path, offset and channel; the first row
    is kept). Sample rate, channels, charset and duration range are checked when given.

    --fix and --rejects together hold every input line exactly once; a row only missing its
    duration goes to --fix with the file's duration filled in; a malformed line goes to the rejects
    as {"line": N, "raw": "...", "reject_reason": ...}. Exit code 3 when problems were found.

    \b
    Examples:
      asrctl manifest validate train.jsonl
      asrctl manifest validate train.jsonl --sample-rate 16000 --channels 1 --charset "a-z' "
      asrctl manifest validate train.jsonl --fix clean.jsonl --rejects rejects.jsonl --json
    """
    from rich.console import Console

    from asrctl.data.rows import count_rows
    from asrctl.prepare.validate import Checks, render, validate
    from asrctl.progress import progress

    checks = Checks(duration_tolerance=duration_tolerance, sample_rate=sample_rate, channels=channels, charset=charset,
                    min_duration=min_duration, max_duration=max_duration, require_text=not allow_empty_text,
                    require_duration=not allow_empty_text)
    with progress("validate", count_rows(manifest), quiet=quiet) as advance:
        report = validate(manifest, checks, fix=fix, rejects=rejects, workers=workers, advance=advance)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        render(report, Console())
    _finish(report.rejected + report.fixed)


@manifest_group.command("stats")
@click.argument("source", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@SOURCE_FORMAT
@click.option("--speaker-key", default="speaker", show_default=True, help="Field naming the speaker.")
@click.option("--bins", type=click.IntRange(min=1), default=20, show_default=True, help="Duration histogram bins.")
@click.option("--top", type=click.IntRange(min=0), default=20, show_default=True, help="Speakers listed in the table.")
@click.option("--plot", type=FILE, help="Write the duration histogram as an SVG image (e.g. stats.svg).")
@AS_JSON
def stats_command(source: Path, source_format: str | None, speaker_key: str, bins: int, top: int, plot: Path | None,
                  as_json: bool) -> None:
    """Rows, hours, durations (min/median/mean/max and a histogram), words, characters and speakers.

    INPUT is a manifest or any readable format (a Kaldi dir, an HF dataset, a tarred dataset
    folder...); tarred audio is not unpacked, only the rows' fields are read. Streams the input:
    memory grows by 4 bytes per row (durations, for the exact median).

    \b
    Examples:
      asrctl manifest stats train.jsonl
      asrctl manifest stats data/train --from kaldi --json
      asrctl manifest stats tarred/ --plot durations.svg
    """
    from rich.console import Console

    from asrctl.atomic import AtomicWriter
    from asrctl.data.records import read_records
    from asrctl.prepare.stats import collect, render, summarize, svg_histogram
    from asrctl.progress import ErrorLog

    if plot is not None and plot.suffix.lower() != ".svg":
        raise click.BadParameter("the plot is written as SVG: give a path ending in .svg", param_hint="--plot")
    errors = ErrorLog()
    spec, records = read_records(source, source_format, errors, audio=False)
    summary = {"file": str(source), "format": spec.name, **summarize(collect(records, speaker_key), bins)}
    if plot is not None:
        with AtomicWriter(plot) as f:
            f.write(svg_histogram(summary["histogram"]["edges"], summary["histogram"]["counts"],
                                  f"{source.name}: {summary['rows']} rows, {summary['hours']:.2f} h"))
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        render(summary, f"asrctl manifest stats: {source} ({spec.name})", Console(), top)
    _finish(errors.count)


@manifest_group.command("split")
@click.argument("manifest", type=MANIFEST)
@click.option("--ratios", required=True, callback=_parsed("asrctl.prepare.split", "parse_ratios"),
              metavar="R1,R2[,...]",
              help="Shares of the splits, e.g. 0.8,0.1,0.1 (normalised to sum 1).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for NAME.jsonl per split.")
@click.option("--names", help="Split names, comma-separated [default: train,val,test for 3, train,test for 2].")
@click.option("--seed", type=int, default=0, show_default=True, help="Shuffle seed: the same seed, the same splits.")
@click.option("--group-by", metavar="FIELD", help="Keep all rows with the same FIELD (e.g. speaker) in one split.")
@click.option("--stratify-duration", is_flag=True, help="Give each split its share of short and long audio.")
@click.option("--strata", type=click.IntRange(min=2), default=10, show_default=True,
              help="Duration quantile bins for --stratify-duration.")
@AS_JSON
def split_command(manifest: Path, ratios: list[float], out_dir: Path, names: str | None, seed: int,
                  group_by: str | None, stratify_duration: bool, strata: int, as_json: bool) -> None:
    """Split MANIFEST into seeded, disjoint parts by hours.

    Rows (or groups, with --group-by) are shuffled with --seed, then each goes to the split
    furthest below its target hours. With --group-by speaker, no speaker is in two splits (rows
    without the field are each a group of their own). Ratios count rows when some rows lack a
    duration.

    \b
    Examples:
      asrctl manifest split all.jsonl --ratios 0.8,0.1,0.1 --out-dir splits/
      asrctl manifest split all.jsonl --ratios 0.9,0.1 --names train,dev --group-by speaker --seed 7 --out-dir data/
      asrctl manifest split all.jsonl --ratios 0.8,0.1,0.1 --stratify-duration --out-dir splits/ --json
    """
    from asrctl.prepare.split import default_names, split_manifest
    from asrctl.progress import ErrorLog, print_summary

    chosen = tuple(n.strip() for n in names.split(",")) if names else default_names(len(ratios))
    if len(chosen) != len(ratios) or len(set(chosen)) != len(chosen) or not all(chosen):
        raise click.BadParameter(f"{len(ratios)} ratios need {len(ratios)} distinct names", param_hint="--names")
    errors = ErrorLog()
    report = split_manifest(manifest, out_dir, ratios, chosen, seed=seed, group_by=group_by,
                            stratify=strata if stratify_duration else 0, on_error=errors)
    result = report.to_dict()
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_summary(f"asrctl manifest split -> {out_dir} (ratios of {report.by})",
                      [(f"{s['name']}.jsonl", f"{s['rows']} rows  {s['hours']:.3f} h  {100 * s['share']:.1f}% "
                        f"(target {100 * s['target']:.1f}%)") for s in result["splits"]]
                      + ([("groups", str(report.groups))] if group_by else []), [])
    _finish(errors.count)


@manifest_group.command("filter")
@click.argument("manifest", type=MANIFEST)
@click.option("-o", "--output", type=FILE, required=True, help="Manifest of the kept rows.")
@click.option("--min-duration", type=float, help="Drop rows shorter than this (seconds) or without a duration.")
@click.option("--max-duration", type=float, help="Drop rows longer than this (seconds) or without a duration.")
@click.option("--text-field", default="text", show_default=True, metavar="FIELD",
              help="The field the text rules below read (and --sub-regex rewrites), e.g. pred_text.")
@click.option("--sub-regex", "substitutions", multiple=True, metavar="PATTERN=REPLACEMENT",
              callback=_parsed("asrctl.prepare.curation", "parse_substitution"),
              help="Rewrite the text first: re.sub, split at the last '=' (\\1 refers to a group). Repeatable, "
                   "in order.")
@click.option("--text-regex", callback=_regex, metavar="REGEX", help="Keep rows whose text matches (re.search).")
@click.option("--drop-regex", "--exclude-regex", "drop_regex", multiple=True,
              callback=_parsed("asrctl.prepare.curation", "parse_regex"), metavar="REGEX",
              help="Drop rows whose text matches (re.search). Repeatable.")
@click.option("--drop-non-alphabet", "alphabet", metavar="LANG|CHARS",
              help="Drop rows with a character outside a language's letters (en de fr es it pt nl pl ru uk; either "
                   "case, with spaces, apostrophes, hyphens and punctuation; digits are outside) or outside the "
                   "characters given (with spaces).")
@click.option("--min-char-rate", type=float, help="Drop rows with fewer characters (spaces included) per second.")
@click.option("--max-char-rate", type=float, help="Drop rows with more characters (spaces included) per second.")
@click.option("--min-word-rate", type=float, help="Drop rows with fewer words per second.")
@click.option("--max-word-rate", type=float, help="Drop rows with more words per second.")
@click.option("--hallucination", is_flag=True,
              help="Drop Whisper's hallucinations by four checks (thresholds below): few distinct words, a word far "
                   "too long, only a phrase said over silence, too many characters per second.")
@click.option("--unique-words", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help="--hallucination: distinct words at or below this share of the words.")
@click.option("--long-word", type=click.IntRange(min=1), default=25, show_default=True,
              help="--hallucination: a word of this many characters or more ...")
@click.option("--long-word-ratio", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="... or longer than the next-longest by this many times its length (3+ words).")
@click.option("--hallucination-char-rate", type=click.FloatRange(min=0), default=40.0, show_default=True,
              help="--hallucination: more characters per second than this.")
@click.option("--hallucination-phrases", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="--hallucination: the phrases, one per line, instead of the built-in ones (thank you, thanks for "
                   "watching, ...).")
@click.option("--where", "conditions", multiple=True, metavar="'FIELD OP VALUE'",
              callback=_parsed("asrctl.prepare.filter", "parse_condition"),
              help="Keep rows where FIELD OP VALUE holds; OP is <= >= < > == !=. Repeatable (all must hold).")
@QUIET
def filter_command(manifest: Path, output: Path, min_duration: float | None, max_duration: float | None,
                   text_field: str, substitutions: list, text_regex: re.Pattern[str] | None,
                   drop_regex: list[re.Pattern[str]], alphabet: str | None, min_char_rate: float | None,
                   max_char_rate: float | None, min_word_rate: float | None, max_word_rate: float | None,
                   hallucination: bool, unique_words: float, long_word: int, long_word_ratio: float,
                   hallucination_char_rate: float, hallucination_phrases: Path | None, conditions: list,
                   quiet: bool) -> None:
    """Keep the rows of MANIFEST that pass every condition, line by line (any size, flat memory);
    the summary counts the rows each rule dropped (the first rule a row fails) and changed.

    --where is parsed, never evaluated: VALUE is a number or a string (quote it to keep spaces).
    A row without the field fails the condition. With `asrctl eval --per-utt`, dropping badly
    transcribed rows is one command.

    \b
    Examples:
      asrctl manifest filter train.jsonl -o short.jsonl --max-duration 20
      asrctl eval preds.jsonl --per-utt scored.jsonl
      asrctl manifest filter scored.jsonl --where 'wer<=20' -o clean.jsonl
      asrctl manifest filter all.jsonl -o en.jsonl --where 'lang==en' --drop-regex '\\[noise\\]'
      asrctl manifest filter raw.jsonl -o clean.jsonl --sub-regex '[“”]="' --drop-non-alphabet en \\
          --min-char-rate 4 --max-char-rate 25
      asrctl manifest filter out.pred.jsonl -o kept.jsonl --text-field pred_text --hallucination
    """
    from asrctl.prepare.curation import Hallucination, alphabet_test, phrases_file, rate_tests, regex_tests
    from asrctl.prepare.filter import duration_tests, filter_manifest, text_tests, where_tests
    from asrctl.progress import ErrorLog, print_summary

    tests = duration_tests(min_duration, max_duration) + text_tests(text_regex, text_field)
    tests += regex_tests(text_field, drop_regex)
    tests += [alphabet_test(text_field, alphabet)] if alphabet else []
    tests += rate_tests(text_field, min_chars=min_char_rate, max_chars=max_char_rate, min_words=min_word_rate,
                        max_words=max_word_rate)
    if hallucination:
        phrases = {"phrases": phrases_file(hallucination_phrases)} if hallucination_phrases else {}
        tests += Hallucination(unique_words, long_word, long_word_ratio, hallucination_char_rate,
                               **phrases).tests(text_field)
    tests += where_tests(conditions)
    errors = ErrorLog()
    report = filter_manifest(manifest, output, tests, errors, [(text_field, s) for s in substitutions])
    pairs = [("kept", str(report.kept)), ("dropped", str(sum(report.dropped.values())))]
    pairs += [(f"  {reason}", str(count)) for reason, count in report.dropped.most_common()]
    pairs += [(f"changed by {rule}", str(count)) for rule, count in report.changed.items()]
    print_summary(f"asrctl manifest filter -> {output}", pairs, [], quiet=quiet)
    _finish(errors.count)


@manifest_group.command("cut")
@click.argument("manifest", type=MANIFEST)
@click.option("-o", "--output", type=FILE, required=True, help="Manifest of the utterances.")
@click.option("--min-duration", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Shortest utterance (seconds); shorter ones are dropped.")
@click.option("--max-duration", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help="Longest utterance (seconds): longer spans are cut at their best pause.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Utterances whose words' mean alignment score is lower are dropped (their text does not match "
                   "the audio). 0 keeps all.")
@click.option("--keep-low", is_flag=True, help="Keep utterances below --min-score, marked low_score: true.")
@click.option("--text-key", default="text", show_default=True, metavar="FIELD", help="The field holding the text.")
@QUIET
def cut_command(manifest: Path, output: Path, min_duration: float, max_duration: float, min_score: float,
                keep_low: bool, text_key: str, quiet: bool) -> None:
    """Cut aligned recordings (the output of `asrctl align`) into utterances for training: each row's
    words are split at the best pauses (sentence ends first, then the longest) into utterances of
    --min-duration to --max-duration seconds, each a row with the source's audio file and fields, its
    offset and duration in that file, its text and its align_score.

    \b
    Examples:
      asrctl align hearings.jsonl -b hf-ctc -m facebook/wav2vec2-base-960h -o aligned.jsonl
      asrctl manifest cut aligned.jsonl -o train.jsonl --max-duration 20
      asrctl finetune -b hf-ctc -m facebook/wav2vec2-base-960h --train train.jsonl ...
    """
    from asrctl.prepare.cut import cut_manifest
    from asrctl.progress import ErrorLog, print_summary

    errors = ErrorLog()
    report = cut_manifest(manifest, output, min_duration=min_duration, max_duration=max_duration,
                          min_score=min_score or None, keep_low=keep_low, text_key=text_key, on_error=errors)
    pairs = [("rows", str(report.rows)), ("utterances", str(report.utterances)),
             ("hours", f"{report.seconds / 3600:.3f}")]
    pairs += [("  marked low_score", str(report.flagged))] if keep_low else []
    pairs += [(f"dropped: {reason}", str(count)) for reason, count in report.dropped.most_common()]
    print_summary(f"asrctl manifest cut -> {output}", pairs, [], quiet=quiet)
    _finish(errors.count)


@manifest_group.command("segment")
@click.argument("manifest", type=MANIFEST)
@click.option("-o", "--output", type=FILE, required=True, help="Manifest of the segments.")
@click.option("--max-segment", type=click.FloatRange(min=1), default=30.0, show_default=True, metavar="SECONDS",
              help="Longest segment (Whisper's window is 30 s).")
@click.option("--vad", "segmenter", default="silero", show_default=True,
              help="The voice-activity detector (see `asrctl plugins --all`).")
@click.option("-V", "--vad-option", "segmenter_options", multiple=True, metavar="KEY=VALUE",
              callback=lambda ctx, param, values: _key_values(values),
              help="A setting of the detector, e.g. -V threshold=0.6 (silero: threshold, min_silence, min_speech, "
                   "speech_pad; seconds). Repeatable.")
@click.option("--workers", type=click.IntRange(min=0), default=min(4, os.cpu_count() or 1), show_default=True,
              help="Processes finding speech (0 = in this process).")
@QUIET
def segment_command(manifest: Path, output: Path, max_segment: float, segmenter: str, segmenter_options: dict,
                    workers: int, quiet: bool) -> None:
    """Cut each row of MANIFEST into speech segments of up to --max-segment seconds.

    The segments are the ones `asrctl infer --segment vad` transcribes: speech regions found by a
    voice-activity detector, merged up to the maximum, the silences between them included. Each
    output row keeps the fields of its source row and points at its span of the same audio file
    (offset, duration), with segment_index and source_duration; the source's text becomes
    source_text, since it is the whole recording's. Rows without speech give no segment.

    \b
    Examples:
      asrctl manifest segment podcasts.jsonl -o segments.jsonl
      asrctl infer segments.jsonl -b hf-whisper -m openai/whisper-small -o pseudo.jsonl
    """
    from asrctl.infer.segmentation import Segmentation, check_segmenter
    from asrctl.prepare.segment import segment_manifest
    from asrctl.progress import ErrorLog, hours, print_summary

    segmentation = Segmentation("vad", segmenter, segmenter_options, max_segment)
    check_segmenter(segmentation)  # before the manifest's durations are probed
    errors = ErrorLog()
    report = segment_manifest(manifest, output, segmentation, max_segment, workers, errors, quiet)
    print_summary(f"asrctl manifest segment -> {output}", [
        ("rows", str(report.rows)), ("segments", str(report.segments)),
        ("rows without speech", str(report.without_speech)),
        ("source hours", hours(report.source_seconds)), ("segment hours", hours(report.segment_seconds)),
    ], [], quiet=quiet)
    _finish(errors.count)


@manifest_group.command("convert")
@click.argument("source", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option("--to", "target", required=True, metavar="FORMAT",
              help="Output format: nemo, hf-datasets, hf-parquet, lhotse, kaldi, csv, tsv, nemo-tarred, webdataset...")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output file or folder.")
@SOURCE_FORMAT
@click.option("--extract-to", type=click.Path(file_okay=False, path_type=Path),
              help="Unpack audio kept inside the input (tar shards, embedded HF audio, Lhotse cuts only Lhotse "
                   "can render, the output of wav.scp commands) into this folder.")
@click.option("--allow-commands", is_flag=True,
              help="Run the commands a Kaldi wav.scp names (`sph2pipe ... |`), one program each, no shell.")
@click.option("--absolute", is_flag=True, help="Write absolute audio paths [default: relative to the output's folder].")
@QUIET
def convert_command(source: Path, target: str, output: Path, source_format: str | None, extract_to: Path | None,
                    allow_commands: bool, absolute: bool, quiet: bool) -> None:
    """Convert INPUT to another format; every field is kept wherever the format can hold it.

    The input format is detected when --from is not given. Formats are plugins: `asrctl plugins
    --all` lists them. Each row points at the audio its source meant: a segment keeps its offset, a
    channel of a multi-channel file its `channel`; what cannot be pointed at is unpacked into
    --extract-to or refused with its reason. Kaldi keeps fields its files cannot hold in
    asrctl_extra.jsonl; tarred formats write one shard per 1000 rows (use `manifest shard` for
    control).

    \b
    Examples:
      asrctl manifest convert train.jsonl --to hf-datasets -o hf/train
      asrctl manifest convert train.jsonl --to kaldi -o data/train
      asrctl manifest convert data/train --to nemo -o train.jsonl
      asrctl manifest convert cuts.jsonl.gz --to csv -o train.csv
      asrctl manifest convert tarred/ --to nemo -o train.jsonl --extract-to audio/
      asrctl manifest convert data/swbd --to nemo -o swbd.jsonl --allow-commands --extract-to audio/
    """
    from asrctl.prepare.convert import convert
    from asrctl.progress import ErrorLog, print_summary

    errors = ErrorLog()
    report = convert(source, output, to=target, source_format=source_format, extract_to=extract_to,
                     allow_commands=allow_commands, absolute=absolute, on_error=errors)
    print_summary(f"asrctl manifest convert {report.source_format} -> {target}: {output}",
                  [("rows read", str(report.read)), ("rows written", str(report.written))], [], quiet=quiet)
    _finish(errors.count or report.read - report.written)


@manifest_group.command("shard")
@click.argument("manifest", type=MANIFEST)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Dataset folder.")
@click.option("--num-shards", type=click.IntRange(min=1), required=True, help="Shards (per bucket).")
@click.option("--format", "fmt", type=click.Choice(["nemo-tarred", "webdataset"]), default="nemo-tarred",
              show_default=True, help="NeMo tarred audio dataset, or WebDataset shards.")
@click.option("--buckets", type=click.IntRange(min=1), default=1, show_default=True,
              help="Duration buckets (bucket1/ ... bucketK/, equal row counts), each with its own shards.")
@click.option("--shuffle", is_flag=True, help="Shuffle rows (with --seed) before sharding.")
@click.option("--seed", type=int, default=0, show_default=True, help="Shuffle seed.")
@click.option("--workers", type=click.IntRange(min=1), default=4, show_default=True, help="Shards written at once.")
@click.option("--downmix", is_flag=True,
              help="Store files of several channels as mono FLAC, channels averaged (NeMo's tarred loaders "
                   "return a 2-D array for a stereo member).")
@QUIET
def shard_command(manifest: Path, out_dir: Path, num_shards: int, fmt: str, buckets: int, shuffle: bool, seed: int,
                  workers: int, downmix: bool, quiet: bool) -> None:
    """Pack the audio of MANIFEST into tar shards for streaming training.

    nemo-tarred writes audio_0.tar ... and tarred_audio_manifest.json (rows name their tar
    member and shard_id), as NeMo's convert_to_tarred_audio_dataset.py does; webdataset writes
    shard-000000.tar ... with KEY.<audio ext> and KEY.json members. Rows with an offset or a
    channel are cut out and stored as mono FLAC (as are files of several channels with --downmix).
    Each shard appears atomically; a re-run skips finished shards whose rows did not change, so an
    interrupted run resumes.

    \b
    Examples:
      asrctl manifest shard train.jsonl --out-dir tarred/ --num-shards 64 --shuffle
      asrctl manifest shard train.jsonl --out-dir tarred/ --num-shards 16 --buckets 4
      asrctl manifest shard train.jsonl --out-dir wds/ --num-shards 32 --format webdataset
      asrctl manifest shard calls.jsonl --out-dir tarred/ --num-shards 8 --downmix
    """
    from asrctl.data.formats.shards import Item, with_durations, write_shards
    from asrctl.data.paths import resolve_record
    from asrctl.data.rows import ManifestReader
    from asrctl.progress import ErrorLog, hours, print_summary, progress

    errors = ErrorLog()
    items = [Item(resolve_record(row.record, row.base_dir), str(manifest), row.line)
             for row in ManifestReader(manifest, on_error=errors)]
    items = with_durations(items, errors, DEFAULT_WORKERS)
    with progress("shard", len(items), quiet=quiet) as advance:
        report = write_shards(items, out_dir, num_shards=num_shards, fmt=fmt, buckets=buckets, shuffle=shuffle,
                              seed=seed, workers=workers, downmix=downmix, on_error=errors, advance=advance)
    pairs = [("rows", str(report.rows)), ("hours", hours(report.seconds)), ("shards written", str(report.written)),
             ("shards already done (skipped)", str(report.skipped))]
    if buckets > 1:
        pairs += [(Path(b["folder"]).name, f"{b['rows']} rows  {b['hours']:.3f} h  "
                   f"{b['min_duration']:.2f}–{b['max_duration']:.2f} s") for b in report.buckets]
    print_summary(f"asrctl manifest shard ({fmt}) -> {out_dir}", pairs, [], quiet=quiet)
    _finish(errors.count)


@manifest_group.command("merge")
@click.argument("inputs", nargs=-1, required=True, type=MANIFEST)
@click.option("-o", "--output", type=FILE, required=True, help="Merged manifest.")
@QUIET
def merge_command(inputs: tuple[Path, ...], output: Path, quiet: bool) -> None:
    """Concatenate manifests, dropping rows whose audio (resolved path + offset) came earlier.

    The first occurrence wins; relative paths are re-expressed from the output's folder.
    Streams line by line.

    \b
    Examples:
      asrctl manifest merge a.jsonl b.jsonl c.jsonl -o all.jsonl
    """
    from asrctl.prepare.merge import merge_manifests
    from asrctl.progress import ErrorLog, print_summary

    errors = ErrorLog()
    report = merge_manifests(list(inputs), output, errors)
    print_summary(f"asrctl manifest merge -> {output}",
                  [("rows written", str(report.rows)), ("duplicates dropped", str(report.duplicates))],
                  [], quiet=quiet)
    if not quiet:
        for example in report.examples:
            click.echo(f"duplicate: {example}", err=True)
    _finish(errors.count)
