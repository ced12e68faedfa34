"""The `ray` engine: Ray Data over a Ray cluster (RAY_ADDRESS), or a Ray started on this machine."""

from __future__ import annotations

from asrctl.hookspecs import hookimpl
from asrctl.specs import EngineSpec

OPTIONS = {
    "address": "Ray cluster to join (host:port, or auto); default RAY_ADDRESS, else a Ray started here.",
    "workers": "Model workers: N, or MIN-MAX to autoscale (default: one per GPU of the cluster, 1 without GPUs).",
    "gpus_per_worker": "GPUs per model worker, fractions allowed (default: 1 if the cluster has GPUs, else 0).",
    "cpus_per_worker": "CPUs per model worker, the threads it computes with on the CPU (default: 1 without GPUs, "
                       "with them half the cluster's CPUs per GPU).",
}


def run(job, spec, items):
    from asrctl.infer.engines import ray_data  # ray loads only when a job runs on it

    return ray_data.run(job, spec, items)


def segment(job, spec, items):
    from asrctl.infer.engines import ray_data

    return ray_data.segment(job, spec, items)


@hookimpl
def register_engines(register) -> None:
    register(EngineSpec(name="ray", run=run, segment=segment, options=OPTIONS,
                        description="a Ray cluster: Ray Data decodes audio in CPU tasks, model workers one per GPU"))
