"""Turn SIGTERM and SIGHUP into an exception in the main thread, so that a command's cleanup always runs.

Python's default for SIGTERM and SIGHUP is to die on the spot, which would leave a running
tier's process group behind. Inside `exit_on_signals()`, they raise `Stopped` instead (and
Ctrl-C raises KeyboardInterrupt, as always), so `finally: session.stop()` kills the runs.
Signal handlers belong to the main thread: called from any other thread, both helpers do nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Stopped", "exit_on_signals", "shielded"]


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: stop cleanly (handled wherever Ctrl-C is)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


@contextmanager
def exit_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Stopped` in the main thread (elsewhere: no effect)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def shielded() -> Iterator[None]:
    """Ignore Ctrl-C, SIGTERM and SIGHUP within the block: a second Ctrl-C must not cut a cleanup short.

    The cleanup it guards (killing the runs' process groups) is bounded by the kill grace period.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
