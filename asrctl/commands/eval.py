"""`asrctl eval`: WER/CER with normalisation, breakdowns, confidence intervals and comparisons."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from asrctl.commands.infer import RUN_OPTIONS, default_output, transcribe
from asrctl.commands.options import MANIFEST, apply_options
from asrctl.score.normalizers import NAMES as NORMALIZERS

SCORING_NOTE = (
    "Rates are corpus rates in percent (total errors / total reference words or characters). "
    "Rows without a prediction are scored as empty transcripts (all deletions); rows whose reference "
    "is empty after normalisation add their words as insertions; rows without a reference are skipped."
)


@click.command("eval")
@click.argument("predictions", type=MANIFEST)
@click.option("--wer/--no-wer", default=True, show_default=True, help="Word error rate.")
@click.option("--cer", is_flag=True, help="Character error rate as well.")
@click.option("--ref-key", default="text", show_default=True, help="Field holding the reference transcript.")
@click.option("--normalizer", type=click.Choice(NORMALIZERS), default="whisper-en", show_default=True,
              help="Applied to references and predictions alike before scoring.")
@click.option("--by", "by", multiple=True, metavar="FIELD[:WIDTH]",
              help="Break down by a field (speaker, dataset...); duration:5 makes 5-second bins. Repeatable.")
@click.option("--ci", is_flag=True, help="95% bootstrap confidence interval over utterances.")
@click.option("--resamples", type=click.IntRange(min=100), default=1000, show_default=True, help="Bootstrap samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed (results are reproducible).")
@click.option("--against", type=MANIFEST,
              help="Compare with another system's predictions on the same references (paired bootstrap), "
                   "per group of each --by field too.")
@click.option("--worst", "worst_n", type=click.IntRange(min=0), default=0, help="Show the N worst utterances, aligned.")
@click.option("--per-utt", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the rows with per-utterance wer/cer (percent) and sub/del/ins/ref_len added.")
@click.option("--fail-above", type=float, metavar="PERCENT", help="Exit with code 4 when WER (percent) exceeds this.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write a self-contained HTML report.")
@click.option("-b", "--backend", help="Transcribe PREDICTIONS (a manifest) with this backend first.")
@click.option("-m", "--model", help="Model for --backend.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="With --backend: where predictions go [default: MANIFEST with .pred.jsonl].")
@apply_options(RUN_OPTIONS)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or tables: errors and --fail-above only.")
def eval_command(predictions: Path, wer: bool, cer: bool, ref_key: str, normalizer: str, by: tuple[str, ...],
                 ci: bool, resamples: int, seed: int, against: Path | None, worst_n: int, per_utt: Path | None,
                 fail_above: float | None, as_json: bool, report: Path | None, backend: str | None,
                 model: str | None, output: Path | None, quiet: bool, **params: Any) -> None:
    """Score PREDICTIONS (a manifest with references and predictions) and report WER/CER.

    With --backend and --model, PREDICTIONS is a manifest to transcribe first (as `asrctl infer`,
    resumable); the predictions file is kept and then scored.

    \b
    Examples:
      asrctl eval test.pred.jsonl --cer --by speaker --by duration:5 --ci
      asrctl eval new.pred.jsonl --against old.pred.jsonl --by speaker --worst 10
      asrctl eval test.jsonl -b hf-whisper -m openai/whisper-small --report report.html
      asrctl eval test.pred.jsonl --fail-above 12.5          # a gate in CI pipelines

    Exit codes: 0 ok, 1 error, 3 predictions had inference errors, 4 WER above --fail-above.
    """
    from asrctl.data.rows import no_such_field
    from asrctl.errors import AsrctlError
    from asrctl.score.evaluate import compare, evaluate, load_scored, per_utterance_records

    metrics = [m for m, on in (("wer", wer), ("cer", cer)) if on]
    if not metrics:
        raise click.UsageError("nothing to score: give --wer or --cer")
    if (backend is None) != (model is None):
        raise click.UsageError("--backend and --model go together")
    for spec in by:
        width = spec.partition(":")[2]
        if width and not _positive_number(width):
            raise click.UsageError(f"--by {spec}: a bin width is a number of seconds, as in --by duration:5")
    if backend:
        predictions_file = output or default_output(predictions)
        transcribe(predictions, predictions_file, backend, model, as_json or quiet, params)
        predictions = predictions_file

    pred_key = params["pred_key"]
    scored = load_scored(predictions, ref_key=ref_key, pred_key=pred_key, normalizer=normalizer, metrics=metrics)
    if not scored.rows:
        if scored.skipped and all(f"no reference field {ref_key!r}" in line for line in scored.skipped):
            from asrctl.data.rows import ManifestReader

            fields = {key for row in ManifestReader(predictions) for key in row.record}
            raise no_such_field(predictions, ref_key, f"--ref-key {ref_key}", fields)
        raise AsrctlError(f"{predictions}: no rows to score" + (f" ({scored.skipped[0]})" if scored.skipped else ""))
    fields = {key for row in scored.rows for key in row.record}
    if pred_key not in fields:
        raise AsrctlError(f"{predictions}: no row has predictions ({pred_key!r}): transcribe it first "
                          f"(asrctl eval {predictions} -b BACKEND -m MODEL), or name the field with --pred-key; "
                          f"the rows have: {', '.join(sorted(fields))}")
    for spec in by:
        if spec.partition(":")[0] not in fields:
            raise no_such_field(predictions, spec.partition(":")[0], f"--by {spec}", fields)
    result = evaluate(scored, metrics=metrics, by=list(by), ci=ci, resamples=resamples, seed=seed,
                      worst_n=worst_n, normalizer=normalizer)
    result["scoring"] = SCORING_NOTE
    if against:
        other = load_scored(against, ref_key=ref_key, pred_key=pred_key, normalizer=normalizer, metrics=metrics)
        result["comparison"] = compare(scored, other, metrics[0], by=list(by), resamples=resamples, seed=seed)
    if per_utt:
        from asrctl.data.rows import write_manifest

        write_manifest(per_utt, per_utterance_records(scored, metrics))
    if report:
        from asrctl.atomic import AtomicWriter
        from asrctl.score.report import render

        with AtomicWriter(report) as f:
            f.write(render(result, metrics, SCORING_NOTE))

    if as_json:
        click.echo(json.dumps({k: v for k, v in result.items() if k != "durations"}, indent=2))
    elif not quiet:
        _print(result, metrics, scored)
    if fail_above is not None and "wer" in result and result["wer"]["rate"] > fail_above:
        click.echo(f"WER {result['wer']['rate']:.2f}% is above --fail-above {fail_above}", err=True)
        sys.exit(4)
    if scored.no_prediction:
        sys.exit(3)


def _positive_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def _print(result: dict[str, Any], metrics: list[str], scored) -> None:
    from rich.console import Console
    from rich.table import Table

    from asrctl.score.evaluate import GROUP_INTERVAL_NOTE
    from asrctl.score.report import alignment, comparison_by

    console = Console()
    table = Table(title=f"asrctl eval: {result['file']}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("rows scored", str(result["rows"]))
    table.add_row("audio hours", f"{result['hours']:.3f}")
    table.add_row("normaliser", result["normalizer"])
    for m in metrics:
        s = result[m]
        ci = f"  (95% CI {s['ci'][0]:.2f}–{s['ci'][1]:.2f})" if "ci" in s else ""
        table.add_row(m.upper(), f"{s['rate']:.2f}%{ci}")
        table.add_row("  sub / del / ins", f"{s['substitution_rate']:.2f} / {s['deletion_rate']:.2f} / "
                      f"{s['insertion_rate']:.2f} %  ({s['substitutions']}/{s['deletions']}/{s['insertions']})")
        table.add_row(f"  reference {'words' if m == 'wer' else 'characters'}", str(s["reference"]))
    table.add_row("no prediction (scored as empty)", str(result["no_prediction"]))
    table.add_row("empty reference (insertions only)", str(result["empty_reference"]))
    table.add_row("skipped (no reference / bad line)", str(len(result["skipped"])))
    console.print(table)
    for spec, groups in result["by"].items():
        t = Table(title=f"by {spec}")
        for col in ("group", "rows", "hours", *metrics):
            t.add_column(col, justify="left" if col == "group" else "right")
        for g in groups:
            t.add_row(g["group"], str(g["rows"]), f"{g['hours']:.3f}", *(f"{g[m]:.2f}" for m in metrics))
        console.print(t)
    if "comparison" in result:
        c = result["comparison"]
        m = metrics[0]
        console.print(f"[bold]A[/] {c['a']}: {c[f'{m}_a']:.2f}%   [bold]B[/] {c['b']}: {c[f'{m}_b']:.2f}%   "
                      f"B−A {c['difference']:+.2f} (95% CI {c['ci'][0]:+.2f} to {c['ci'][1]:+.2f}), "
                      f"B better in {100 * c['b_better_share']:.0f}% of resamples; {c['matched']} rows matched")
        for spec, groups in c["by"].items():
            columns, rows = comparison_by(groups, m)
            t = Table(title=f"B against A by {spec} ({m.upper()}, rows in both)")
            for col in columns:
                t.add_column(col, justify="left" if col == "group" else "right")
            for row in rows:
                t.add_row(*(row[col] for col in columns))
            console.print(t)
        if c["by"]:
            console.print(f"[dim]{GROUP_INTERVAL_NOTE}[/]")
        for change in c["changed_most"]:
            console.print(f"  line {change['line_a']} ({change['error_change']:+d} errors) "
                          f"ref: {change['ref']!r}\n    A: {change['hyp_a']!r}\n    B: {change['hyp_b']!r}")
    for w in result.get("worst", []):
        text = alignment(w)
        console.print(f"[bold]line {w['line']}[/] {w['audio_filepath']}  {metrics[0].upper()} {w[metrics[0]]:.1f}%",
                      highlight=False)
        console.print(text, markup=False, highlight=False, soft_wrap=True)  # aligned lines must not wrap
    for line in result["skipped"][:20]:
        console.print(f"[yellow]skipped: {line}[/]", highlight=False)
    console.print(f"[dim]{SCORING_NOTE}[/]")
