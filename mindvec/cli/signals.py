"""SIGTERM, in the command line only, cleans up as Ctrl-C does.

A library must never install signal handlers in its user's process, so this lives in the CLI.
With it, ``kill PID`` during ``mindvec sign`` or ``make`` unwinds through the atomic writer,
which removes its temporary file. ``kill -9`` cannot be caught: it can leave a
``.<name>.<pid>.<random>.mindvec-tmp`` file beside the target, which nothing ever reads and
the next write of that target removes (``mindvec._fs``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives (a BaseException, like KeyboardInterrupt)."""


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the duration; restore the old handler after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (e.g. main() called in a test)
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
