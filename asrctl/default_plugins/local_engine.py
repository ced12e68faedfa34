"""The `local` engine: this process, with DataLoader workers for audio decoding."""

from __future__ import annotations

from asrctl.hookspecs import hookimpl
from asrctl.specs import EngineSpec


def run(job, spec, items):
    from asrctl.infer.engines import local  # numpy, torch and the audio stack load only when a job runs

    return local.run(job, spec, items)


def segment(job, spec, items):
    from asrctl.infer.engines import local

    return local.segment(job, spec, items)


@hookimpl
def register_engines(register) -> None:
    register(EngineSpec(name="local", run=run, segment=segment,
                        description="this machine: the model in-process, DataLoader workers decode audio"))
