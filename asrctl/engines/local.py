"""The local engine: the model in this process, audio decoded by DataLoader worker processes.

Batches are formed longest-first by duration; workers decode and resample the next batches while
the model runs on the current one. A batch that fails is retried in halves, so one bad utterance
(or an out-of-memory batch) costs only itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from asrctl.audio import load_audio
from asrctl.batching import duration_batches
from asrctl.devices import resolve_device, resolve_dtype
from asrctl.errors import AsrctlError
from asrctl.inference import InferJob, WorkItem, WorkResult
from asrctl.specs import BackendSpec, Transcriber

Decoded = tuple[WorkItem, "np.ndarray | None", "str | None"]


class AudioDataset:
    """Map-style dataset (torch only needs __getitem__/__len__): decoded audio or the reason it failed."""

    def __init__(self, items: Sequence[WorkItem]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> Decoded:
        item = self.items[position]
        try:
            audio = load_audio(item.audio_path, offset=item.offset or 0.0,
                               duration=item.duration if item.offset is not None else None)
        except AsrctlError as exc:
            return item, None, str(exc)
        if audio.size == 0:
            return item, None, f"{item.audio_path}: audio is empty"
        return item, audio, None


def keep_list(batch: list[Decoded]) -> list[Decoded]:
    """Collate function: batches stay lists of variable-length arrays (backends pad their own way)."""
    return batch


def transcribe_safely(model: Transcriber, items: list[WorkItem], audios: list[np.ndarray]) -> list[WorkResult]:
    """Transcribe a batch; on failure retry each half, down to single utterances."""
    try:
        transcripts = model.transcribe(audios)
        if len(transcripts) != len(audios):
            raise RuntimeError(f"backend returned {len(transcripts)} results for {len(audios)} inputs")
        return [WorkResult(item.index, transcript=t) for item, t in zip(items, transcripts)]
    except Exception as exc:
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        _free_accelerator_memory()
        if len(items) == 1:
            return [WorkResult(items[0].index, error=f"{items[0].audio_path}: transcription failed ({reason})")]
        from asrctl.progress import stderr

        stderr.print(f"warning: a batch of {len(items)} failed ({reason[:200]}); retrying it in halves", style="yellow")
        half = len(items) // 2
        return transcribe_safely(model, items[:half], audios[:half]) + transcribe_safely(model, items[half:], audios[half:])


def _free_accelerator_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run(job: InferJob, spec: BackendSpec, items: list[WorkItem]) -> Iterator[list[WorkResult]]:
    if not items:
        return
    from torch.utils.data import DataLoader

    device = resolve_device(job.device)
    model = spec.load(job.model, device=device, dtype=resolve_dtype(job.dtype, device), **job.options)
    batches = duration_batches([item.duration for item in items], job.batch_size, job.batch_seconds)
    loader = DataLoader(
        AudioDataset(items), batch_sampler=batches, collate_fn=keep_list, num_workers=job.num_workers,
        prefetch_factor=2 if job.num_workers else None, persistent_workers=False,
    )
    for batch in loader:
        results = [WorkResult(item.index, error=error) for item, audio, error in batch if audio is None]
        good = [(item, audio) for item, audio, _ in batch if audio is not None]
        if good:
            results += transcribe_safely(model, [item for item, _ in good], [audio for _, audio in good])
        yield results
