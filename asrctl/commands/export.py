"""`asrctl export`: a model of one backend into the format another backend loads (exporter plugins)."""

from __future__ import annotations

from pathlib import Path

import click


def find_exporter(backend: str, target: str):
    """The exporter of `backend` models for `target`; else one line naming the pairs there are."""
    from asrctl.errors import AsrctlError
    from asrctl.plugins import exporters

    for spec in exporters():
        if backend in spec.sources and spec.target == target:
            return spec
    pairs = "; ".join(f"{', '.join(spec.sources)} -> {spec.target}" for spec in exporters()) or \
        "none installed (see `asrctl plugins`)"
    raise AsrctlError(f"no exporter turns {backend} models into {target} ones; exports: {pairs}")


@click.command("export")
@click.option("-b", "--backend", required=True, help="The backend the model is for: hf-whisper, ...")
@click.option("-m", "--model", required=True,
              help="The model: hub id, local folder, `asrctl finetune` output folder, or LoRA adapter folder (merged "
                   "on the way).")
@click.option("--to", "target", required=True, help="The backend that is to load the export: faster-whisper, ...")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder to write (whole, or not at all).")
@click.option("--quantize", metavar="TYPE",
              help="Weight type of the export, as the exporter lists them (int8, float16, ...) [default: its first].")
@click.option("--allow-pickle", is_flag=True,
              help="Load a model that has only pickle-based weights (they can run code): trusted sources only.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def export_command(backend: str, model: str, target: str, output: Path, quantize: str | None, allow_pickle: bool,
                   overwrite: bool) -> None:
    """Convert a model into the format of another backend: a Whisper fine-tuned with `asrctl
    finetune -b hf-whisper` into CTranslate2's, for `-b faster-whisper` (fast on CPUs).

    Exporters are plugins (`asrctl plugins` lists them with the pairs they convert); the output
    folder holds everything the target backend needs to load it.

    \b
    Examples:
      asrctl export -b hf-whisper -m out/ --to faster-whisper -o out-ct2/ --quantize int8
      asrctl infer test.jsonl -b faster-whisper -m out-ct2/ -O compute_type=int8 -o preds.jsonl
    """
    from asrctl.atomic import atomic_dir
    from asrctl.errors import AsrctlError
    from asrctl.progress import stderr

    exporter = find_exporter(backend, target)
    if quantize is not None and quantize not in exporter.quantizations:
        raise AsrctlError(f"--quantize {quantize}: the {exporter.name} exporter writes "
                          f"{', '.join(exporter.quantizations) or 'its own weight type only'}")
    if output.exists() and not overwrite:
        raise AsrctlError(f"{output} exists: add --overwrite to replace it, or choose another -o")
    with stderr.status(f"exporting {model} for {target} ({exporter.name})"):
        with atomic_dir(output) as folder:
            exporter.export(model, folder, quantize=quantize or (exporter.quantizations or (None,))[0],
                            allow_pickle=allow_pickle)
    size = sum(path.stat().st_size for path in output.rglob("*") if path.is_file())
    stderr.print(f"wrote {output} ({size / 2**20:.1f} MiB): asrctl infer -b {target} -m {output}", highlight=False)
