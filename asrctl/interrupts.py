"""Ctrl-C that is never lost.

Python turns SIGINT into KeyboardInterrupt wherever the main thread happens to be. Raised inside a
finalizer (a `__del__` or weakref callback the garbage collector runs at any moment), it is printed
as "Exception ignored" and dropped, and the job would run on and write its output as if it had
never been interrupted. The handler installed here also records the signal, and every point where
a job commits its output calls `raise_if_interrupted()` first.

A job made of batches (`asrctl infer`) or steps (`asrctl finetune`) runs `between_batches()`: the
first Ctrl-C says so at once and lets the batch or step in hand finish and be saved; a second stops
at once. Either way the job then stops with KeyboardInterrupt, and Ctrl-C during the clean-up that
follows (closing the output, joining decoding workers, writing the checkpoint of the last step) is
only noted, so the clean-up is not cut short into "Exception ignored" noise.

Ctrl-C at a terminal reaches every process of the job. Processes forked from the one that installed
the handler (data-loader workers) inherit it and leave the signal to their parent, which stops them
when it stops: a worker cut short in the middle of handing a batch over would print a traceback,
and the step in hand would lose its data.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_interrupted = False
_owner: int | None = None  # the process that installed the handler
_stopping_line = b""


class Interrupted(KeyboardInterrupt):
    """A job stopped by Ctrl-C, with the line that says how to go on; the CLI prints it and exits 130
    (as it does for any KeyboardInterrupt, with "interrupted")."""


def _ours() -> bool:
    return os.getpid() == _owner


def _note(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    if _ours():
        _interrupted = True


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _ours():
        _note(signum, frame)
        raise KeyboardInterrupt


def install() -> None:
    """Record Ctrl-C from now on, unless SIGINT was set aside (ignored, as `nohup` does, or handled)."""
    global _owner
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _owner = os.getpid()
        signal.signal(signal.SIGINT, _on_sigint)


def _finish_batch(signum: int, frame: FrameType | None) -> None:
    if not _ours():
        return
    _note(signum, frame)
    signal.signal(signal.SIGINT, _stop_now)
    # Straight to the file descriptor: sys.stderr may be mid-write in the code this interrupts,
    # and a buffered writer entered again raises "reentrant call".
    os.write(2, _stopping_line)


def _stop_now(signum: int, frame: FrameType | None) -> None:
    if _ours():
        _stopping()
        raise KeyboardInterrupt


def _stopping() -> None:
    if signal.getsignal(signal.SIGINT) in (_finish_batch, _stop_now):
        signal.signal(signal.SIGINT, _note)


def raise_if_interrupted() -> None:
    """KeyboardInterrupt if Ctrl-C came at any time since `install()`, even if it was swallowed."""
    if _interrupted:
        _stopping()
        raise KeyboardInterrupt


# Steps between the moments the processes of a distributed training agree on stopping: the
# agreement is a collective, which waits for the device, so not every step.
STOP_CHECK_STEPS = 10


def stop_requested() -> bool:
    """Whether Ctrl-C asked the job to stop. Once the job has seen it, Ctrl-C is only noted: the job
    is on its way out, saving what it has done (a trainer its checkpoint of the step in hand)."""
    if _interrupted:
        _stopping()
    return _interrupted


@contextmanager
def between_batches(unit: str = "batch") -> Iterator[None]:
    """The first Ctrl-C during the block asks the job to stop after its current batch, or other
    `unit` of work (the job calls `raise_if_interrupted()` after saving each, or asks
    `stop_requested()`); the second stops it at once."""
    global _stopping_line
    if signal.getsignal(signal.SIGINT) is not _on_sigint:
        yield
        return
    _stopping_line = f"stopping after the current {unit} (Ctrl-C again to stop now)\n".encode()
    signal.signal(signal.SIGINT, _finish_batch)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is _finish_batch:  # no Ctrl-C came: back to stopping at once
            signal.signal(signal.SIGINT, _on_sigint)


@contextmanager
def deferred() -> Iterator[None]:
    """Ctrl-C during the block takes effect when it ends. For importing torch: a KeyboardInterrupt
    raised through its C++ start-up aborts the process ("Aborted (core dumped)") or leaves it half
    imported, where the job should stop as from anywhere else, with its exit code and message."""
    if signal.getsignal(signal.SIGINT) is not _on_sigint:
        yield
        return
    signal.signal(signal.SIGINT, _note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, _on_sigint)
    raise_if_interrupted()
