"""Ctrl-C that is never lost.

Python turns SIGINT into KeyboardInterrupt wherever the main thread happens to be. Raised inside a
finalizer (a `__del__` or weakref callback the garbage collector runs at any moment), it is printed
as "Exception ignored" and dropped, and the job would run on and write its output as if it had
never been interrupted. The handler installed here also records the signal, and every point where
a job commits its output calls `raise_if_interrupted()` first.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_interrupted = False


def _note(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    _interrupted = True


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _note(signum, frame)
    raise KeyboardInterrupt


def install() -> None:
    """Record Ctrl-C from now on, unless SIGINT was set aside (ignored, as `nohup` does, or handled)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def raise_if_interrupted() -> None:
    """KeyboardInterrupt if Ctrl-C came at any time since `install()`, even if it was swallowed."""
    if _interrupted:
        raise KeyboardInterrupt


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
