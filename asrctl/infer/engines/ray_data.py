"""The ray engine: Ray Data streams the planned batches through audio decoding and a pool of
model actors, on a Ray cluster (`-E address`, else RAY_ADDRESS) or on a Ray started here.

Batches are planned exactly as the local engine plans them (plan_batches), and each one
travels through Ray Data as a single opaque row: Ray Data would otherwise re-batch rows by count
(with GPUs it insists on a count), losing the padded-seconds bound, and the same batches give the
same outputs. Decoding and transcription are the local engine's own steps (asrctl.infer.steps).
Results come back as batches finish (streaming execution) and the core saves them at once, so a
crash loses only the batches in flight and a re-run resumes after the finished rows.

A model actor that dies (lost node, out of memory, segfault) is restarted and the batches it
held are re-run, by Ray Data's own defaults for map actors (docs/scaling.md, "When a worker
dies"). A batch whose worker dies every time is therefore retried without end; stop the job and
drop that row. Exceptions raised by a backend are not retried by Ray: transcribe_safely already
contains them to the utterances that cause them.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from asrctl.errors import AsrctlError
from asrctl.infer.job import InferJob, WorkItem, WorkResult
from asrctl.infer.steps import decode, find_speech, load_model, plan_batches, transcribe_batch
from asrctl.specs import BackendSpec

try:
    import ray
    import ray.data
except ImportError:
    raise AsrctlError("the ray engine needs Ray: pip install 'asrctl[ray]'") from None


@dataclass(frozen=True)
class Settings:
    """The -E options of the ray engine, checked; None means: decide from the cluster."""

    address: str | None = None
    workers: tuple[int, int] | None = None  # (min, max) model actors
    gpus_per_worker: float | None = None
    cpus_per_worker: float | None = None

    @classmethod
    def parse(cls, options: dict[str, Any]) -> Settings:
        address = options.get("address")
        gpus = options.get("gpus_per_worker")
        return cls(
            address=None if address is None else str(address),
            workers=_workers(options["workers"]) if "workers" in options else None,
            gpus_per_worker=None if gpus is None else _number("gpus_per_worker", gpus, allow_zero=True),
            cpus_per_worker=None if options.get("cpus_per_worker") is None
            else _number("cpus_per_worker", options["cpus_per_worker"], allow_zero=False),
        )


def _workers(value: Any) -> tuple[int, int]:
    low, sep, high = str(value).partition("-")
    if low.isdigit() and (high.isdigit() or not sep) and 1 <= int(low) <= int(high or low):
        return int(low), int(high or low)
    raise AsrctlError(f"-E workers={value}: expected N or MIN-MAX with 1 <= MIN <= MAX, e.g. 4 or 1-8")


def _number(name: str, value: Any, *, allow_zero: bool) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (value > 0 or (allow_zero and value == 0)):
        return float(value)
    raise AsrctlError(f"-E {name}={value}: expected a number {'>= 0' if allow_zero else '> 0'}")


def run(job: InferJob, spec: BackendSpec, items: list[WorkItem]) -> Iterator[list[WorkResult]]:
    if not items:
        return
    settings = Settings.parse(job.engine_options)
    connect(settings.address)
    for row in dataset(job, spec, items, settings).iter_rows():
        if row["failure"]:
            # No ray.shutdown() here: Ray Data's executor thread is still running, and Ray ends the
            # process at once when that thread touches a shut-down worker, before the error is printed.
            # Ray's own exit handler disconnects after it.
            raise AsrctlError(row["failure"])
        yield unpack(row["results"])
    if _started_here:
        ray.shutdown()


def segment(job: InferJob, spec: BackendSpec, items: list[WorkItem]) -> Iterator[tuple[WorkItem, list | str]]:
    """The items' speech segments, found in Ray CPU tasks (one item each, longest first); Ray stays
    up for the transcription that follows."""
    connect(Settings.parse(job.engine_options).address)
    longest_first = sorted(items, key=lambda item: -item.duration)
    rows = [{"item": pack(item)} for item in longest_first]
    found = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        find_rows, batch_size=1, num_cpus=1, fn_kwargs={"job": job, "spec": spec})
    for row in found.iter_rows():
        yield unpack(row["found"])


def find_rows(rows: dict[str, Any], job: InferJob, spec: BackendSpec) -> dict[str, list[bytes]]:
    """Ray Data task: each WorkItem -> (item, its speech segments or the reason they could not be found)."""
    return {"found": [pack(find_speech(job, spec, unpack(item))) for item in rows["item"]]}


_started_here = False  # this process started Ray (not a cluster it joined): it shuts it down


def connect(address: str | None) -> None:
    """Join the cluster at `address` (or RAY_ADDRESS), else start Ray here."""
    global _started_here
    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS")
    if target:
        _check_reachable(target)
    start_only = {} if target else {"include_dashboard": False}
    try:
        ray.init(address=target, logging_level=logging.ERROR, **start_only)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise AsrctlError(f"cannot join the Ray cluster at {target or 'this machine'}: {exc}") from None
    _started_here = not target
    # Ray's own progress bars and INFO logs would fight the core's progress display.
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes: ray.init keeps retrying an address where nothing listens."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or address, int(port) if port.isdigit() else 6379), timeout=5).close()
    except OSError as exc:
        raise AsrctlError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start one with "
                          "`ray start --head`, or fix -E address / RAY_ADDRESS") from None


def dataset(job: InferJob, spec: BackendSpec, items: list[WorkItem], settings: Settings) -> ray.data.Dataset:
    """Planned batches -> decoded batches -> results, one row per batch, in Ray Data."""
    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    gpus = settings.gpus_per_worker if settings.gpus_per_worker is not None else float(cluster_gpus > 0)
    low, high = settings.workers or ((max(1, int(cluster_gpus // gpus)),) * 2 if gpus else (1, 1))
    batches = plan_batches(job, spec, items)
    rows = [{"batch": pack([items[i] for i in batch])} for batch in batches]
    cpus = worker_cpus(settings, gpus, ray.cluster_resources())
    # Without GPUs both stages ask for the same resources, so Ray Data fuses them and each worker
    # decodes its own batches (on a CPU there is nothing to overlap decoding with); with GPUs,
    # decoding runs in separate one-CPU tasks ahead of the model workers.
    decode_cpus = cpus if not gpus else 1
    return (
        ray.data.from_items(rows, override_num_blocks=len(rows))  # one block per batch: results stream back per batch
        .map_batches(decode_rows, batch_size=1, num_cpus=decode_cpus)
        .map_batches(ModelWorker, batch_size=1, fn_constructor_args=(job, spec), num_cpus=cpus,
                     num_gpus=gpus, compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high))
    )


def worker_cpus(settings: Settings, gpus: float, cluster: dict[str, float]) -> float:
    """CPUs a model worker asks for (Ray gives it as many threads): -E cpus_per_worker, else one
    without GPUs, and with them half the cluster's CPUs per GPU share (the rest decode audio), for
    what the worker computes on the CPU around the model (features, decoding of tokens)."""
    if settings.cpus_per_worker is not None:
        return settings.cpus_per_worker
    if not gpus or not cluster.get("GPU"):
        return 1.0
    return max(1.0, float(int(cluster.get("CPU", 1) / cluster["GPU"] * gpus / 2)))


def pack(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(payload: bytes) -> Any:
    return pickle.loads(payload)


def decode_rows(rows: dict[str, Any]) -> dict[str, list[bytes]]:
    """Ray Data task: each planned batch of WorkItems -> its decoded audio (or reasons)."""
    return {"batch": [pack([decode(item) for item in unpack(batch)]) for batch in rows["batch"]]}


class ModelWorker:
    """A model worker (Ray actor): loads the model once, then transcribes decoded batches."""

    def __init__(self, job: InferJob, spec: BackendSpec) -> None:
        self.failure = ""
        self.spec = spec
        try:
            self.model = load_model(job, spec)
        except AsrctlError as exc:
            # Reported as data, not raised: Ray would restart the actor and log tracebacks; the
            # driver ends the job with this one line instead, as the local engine would.
            self.failure = str(exc)

    def __call__(self, rows: dict[str, Any]) -> dict[str, list]:
        count = len(rows["batch"])
        if self.failure:
            return {"results": [pack([])] * count, "failure": [self.failure] * count}
        results = [pack(transcribe_batch(self.model, unpack(batch), self.spec)) for batch in rows["batch"]]
        return {"results": results, "failure": [""] * count}
