"""What a plugin's implementation may use of the core: the one module besides `asrctl` itself.

`asrctl` holds what a plugin registers (hook marker, specs, errors) and stays light, for it is
imported whenever a plugin loads; this module holds what a backend, trainer, engine or segmenter
uses when it runs, and imports numpy, soundfile and rich. Plugins import nothing else from the
core: what is here is kept stable, the rest may change. docs/plugins.md lists it (generated).
"""

from asrctl import *  # noqa: F403 (the registration names as well, so one import line serves)
from asrctl import __all__ as _registration
from asrctl.align.ctc import align as ctc_align
from asrctl.align.words import sentences, spelled, targets, tightened, timed_words
from asrctl.atomic import AtomicWriter
from asrctl.data.audio import AudioInfo, load_audio, probe
from asrctl.data.batching import BucketBatches, bucketing
from asrctl.data.clips import clip_flac, clip_suffix
from asrctl.data.formats.ids import recording_id
from asrctl.data.paths import AUDIO_KEY
from asrctl.data.probing import probed_duration
from asrctl.data.rows import dumps
from asrctl.devices import padded_batch, resolve_device, resolve_dtype
from asrctl.hub import offline_advice, unreachable
from asrctl.infer.job import InferJob, WorkItem, WorkResult
from asrctl.infer.steps import decode, find_speech, load_model, transcribe_batch
from asrctl.interrupts import STOP_CHECK_STEPS, between_batches, stop_requested
from asrctl.progress import print_summary, stderr, training_progress, training_status
from asrctl.score.metrics import edit_counts, totals
from asrctl.score.normalizers import get_normalizer
from asrctl.train.augment import Augmentation, augmentation
from asrctl.train.averaging import average_weights
from asrctl.train.data import read_training_rows, training_rows
from asrctl.train.launch import in_torchrun, is_main_process
from asrctl.train.memory import warn_cpu_training
from asrctl.train.recipes import check_keys, earlier_run, sources_label, train_sources
from asrctl.train.summary import baseline_wer, mix_reports, peak_memory, training_summary, write_training_summary

# By kind, for the guide; every name here is public.
GROUPS = {
    "engines": ["InferJob", "WorkItem", "WorkResult", "load_model", "decode", "transcribe_batch", "find_speech"],
    "alignment": ["ctc_align", "targets", "timed_words", "tightened", "sentences", "spelled"],
    "audio": ["AudioInfo", "load_audio", "probe", "probed_duration", "clip_flac", "clip_suffix", "recording_id"],
    "manifests and training data": ["AUDIO_KEY", "dumps", "AtomicWriter", "read_training_rows", "training_rows",
                                    "BucketBatches", "bucketing", "train_sources", "sources_label", "mix_reports",
                                    "augmentation", "Augmentation"],
    "training jobs": ["is_main_process", "in_torchrun", "check_keys", "earlier_run", "training_progress",
                      "training_status", "peak_memory", "training_summary", "write_training_summary", "between_batches",
                      "stop_requested", "STOP_CHECK_STEPS", "baseline_wer", "average_weights",
                      "warn_cpu_training"],
    "output": ["stderr", "print_summary"],
    "text and WER": ["get_normalizer", "edit_counts", "totals"],
    "model hubs": ["offline_advice", "unreachable"],
    "devices": ["resolve_device", "resolve_dtype", "padded_batch"],
}

__all__ = [*_registration, *(name for names in GROUPS.values() for name in names)]
