"""Dataset formats beyond the native NeMo JSONL: Hugging Face, Lhotse, Kaldi, CSV/TSV and tarred shards.

The adapters live in asrctl.data.formats; their heavy libraries load only when one reads or writes.
"""

from __future__ import annotations

from functools import partial

from asrctl.data.formats import hf_datasets, kaldi, lhotse_cuts, table, tarred
from asrctl.hookspecs import hookimpl
from asrctl.specs import FormatSpec


@hookimpl
def register_formats(register) -> None:
    for spec in (
        FormatSpec("hf-datasets", "Hugging Face datasets folder (save_to_disk), with an Audio column",
                   hf_datasets.read_folder, hf_datasets.write_folder, hf_datasets.detect_folder),
        FormatSpec("hf-parquet", "Hugging Face parquet file, with an Audio column (paths, not bytes)",
                   hf_datasets.read_parquet, hf_datasets.write_parquet, hf_datasets.detect_parquet),
        FormatSpec("lhotse", "Lhotse CutSet manifest (cuts.jsonl.gz): recordings + supervisions",
                   lhotse_cuts.read, lhotse_cuts.write, lhotse_cuts.detect),
        FormatSpec("kaldi", "Kaldi data dir: wav.scp, text, utt2spk, spk2utt, utt2dur, segments",
                   kaldi.read, kaldi.write, kaldi.detect),
        FormatSpec("csv", "CSV with a header row, one column per field",
                   partial(table.read, delimiter=","), partial(table.write, delimiter=","),
                   partial(table.detect, suffix=".csv")),
        FormatSpec("tsv", "TSV with a header row, one column per field",
                   partial(table.read, delimiter="\t"), partial(table.write, delimiter="\t"),
                   partial(table.detect, suffix=".tsv")),
        FormatSpec("nemo-tarred", "NeMo tarred audio dataset: audio_N.tar + tarred_audio_manifest.json",
                   tarred.read_nemo_tarred, tarred.write_nemo_tarred, tarred.detect_nemo_tarred),
        FormatSpec("webdataset", "WebDataset shards: shard-NNNNNN.tar with KEY.<audio> + KEY.json",
                   tarred.read_webdataset, tarred.write_webdataset, tarred.detect_webdataset),
    ):
        register(spec)
