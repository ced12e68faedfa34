"""asrctl-nemo: NVIDIA NeMo ASR models for asrctl.

Hook implementations live here; NeMo is imported only when its backend or trainer is used
(importing it takes seconds), so every other command starts without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asrctl import BackendSpec, Transcriber, hookimpl


def load(model: str, **kwargs: Any) -> Transcriber:
    from asrctl_nemo import backend

    return backend.load(model, **kwargs)


@hookimpl
def register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(BackendSpec(
        name="nemo",
        load=load,
        description="NVIDIA NeMo ASR models (.nemo file or pretrained name): hybrid RNNT/CTC, transducer, CTC",
        options=frozenset({"allow_pickle"}),
        extra_options={
            "decoder": "rnnt or ctc: the head that decodes a hybrid model [default: rnnt where the model has it]",
            "verbose": "true: show NeMo's own log while it loads",
        },
        capabilities=frozenset({"long-form"}),
    ))
