"""One fine-tuning job in several processes: `asrctl finetune --nproc-per-node N [--nnodes M ...]`.

Trainers that run under torchrun (TrainerSpec.launcher == "torchrun", e.g. the transformers
Trainer) get the same command run by torchrun in every process; each one sees torchrun's
environment (RANK, LOCAL_RANK, WORLD_SIZE) and joins the process group itself. Trainers that
start their own processes (launcher == "self", e.g. Lightning's DDP) read recipe["distributed"]
on one machine; a job of several machines runs under torchrun for them too, whose rendezvous at
--rdzv-endpoint is where the nodes meet and get their ranks.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

from asrctl.errors import AsrctlError

DEFAULT_PORT = 29500


def in_torchrun() -> bool:
    """True in a process that torchrun started (it sets TORCHELASTIC_RUN_ID in each)."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def is_main_process() -> bool:
    """Rank 0 of the job, or the only process: the one that prints and writes the job's own files.
    torchrun sets RANK in each process; Lightning's DDP sets only LOCAL_RANK and NODE_RANK in the
    processes it starts."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"]) == 0
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def check_distributed(settings: dict[str, Any]) -> tuple[int, int]:
    """(processes per node, nodes) from the recipe's distributed section, checked."""
    nproc, nnodes = settings.get("nproc_per_node") or 1, settings.get("nnodes") or 1
    for key, value in (("nproc_per_node", nproc), ("nnodes", nnodes)):
        if not isinstance(value, int) or value < 1:
            raise AsrctlError(f"distributed.{key}: expected a whole number >= 1, got {value!r}")
    if nnodes > 1 and not settings.get("rdzv_endpoint"):
        raise AsrctlError("--nnodes > 1 needs --rdzv-endpoint HOST[:PORT] (a host every node reaches, "
                          "e.g. the first node of the allocation)")
    return nproc, nnodes


def torchrun_arguments(settings: dict[str, Any], argv: list[str]) -> list[str]:
    """torchrun's arguments for running `asrctl ARGV` in every process of the job."""
    nproc, nnodes = check_distributed(settings)
    arguments = [f"--nproc-per-node={nproc}"]
    if nnodes == 1 and not settings.get("rdzv_endpoint"):
        arguments.append("--standalone")  # a free local port, no rendezvous server to name
    else:
        endpoint = settings["rdzv_endpoint"]
        endpoint = endpoint if ":" in endpoint else f"{endpoint}:{DEFAULT_PORT}"
        arguments += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}",
                      f"--rdzv-id={settings.get('rdzv_id') or 'asrctl'}"]
    return [*arguments, "-m", "asrctl", *argv]


def run_under_torchrun(settings: dict[str, Any], argv: list[str]) -> NoReturn:
    """Run the job's processes with torchrun and exit with their status.

    Each process prints its own errors; a failure then ends this one with the same exit code,
    without torchrun's own traceback and failure report.
    """
    import importlib.util
    import logging

    if importlib.util.find_spec("torch") is None:
        raise AsrctlError("--nproc-per-node needs PyTorch's torchrun (pip install torch)")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # The cores shared out (torchrun would print a banner and give each process one thread).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // check_distributed(settings)[0])))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(parse_args(torchrun_arguments(settings, argv)))
    except ChildFailedError as exc:
        codes = [failure.exitcode for failure in exc.failures.values()]
        raise SystemExit(next((code for code in codes if code > 0), 1)) from None
    raise SystemExit(0)
