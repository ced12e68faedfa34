"""Ctrl-C that is never lost.

Python turns SIGINT into KeyboardInterrupt wherever the main thread happens to be. Raised inside a
finalizer (a `__del__` or weakref callback the garbage collector runs at any moment), it is printed
as "Exception ignored" and dropped, and the job would run on and write its output as if it had
never been interrupted. The handler installed here also records the signal, and every point where
a job commits its output calls `raise_if_interrupted()` first.
"""

from __future__ import annotations

import signal
from types import FrameType

_interrupted = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def install() -> None:
    """Record Ctrl-C from now on, unless SIGINT was set aside (ignored, as `nohup` does, or handled)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def raise_if_interrupted() -> None:
    """KeyboardInterrupt if Ctrl-C came at any time since `install()`, even if it was swallowed."""
    if _interrupted:
        raise KeyboardInterrupt
