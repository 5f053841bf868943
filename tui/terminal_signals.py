"""Quitting on `kill` and on the terminal closing as on `q`: the runs stopped, nothing left in /tmp.

Python's default for SIGTERM and SIGHUP ends the process on the spot: a tier's run and its warm
server could stay behind, and the watcher's private index (`mlci-watch-*` in TMPDIR) did, one
more each time a terminal window was closed on the dashboard.

- SIGTERM: the terminal is still there, so the app exits as on `q`, and restores it.
- SIGHUP: the terminal is gone. Textual's exit restores the terminal first, and was seen blocked
  for good there, on its output queue, after a hang-up. So a thread of its own stops the engine
  and ends the process, whatever the UI thread is doing: there is no screen left to put back.

Only for an app on a real terminal (`mlci-tui`), never in a headless test of the app.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from mlci.engine.process_exit import exit_without_terminal

__all__ = ["quit_on_signals"]


class _Quittable(Protocol):
    def exit(self, result: int | None = None) -> None: ...

    def stop_engine(self) -> None: ...


def quit_on_signals(app: _Quittable) -> Callable[[], None]:
    """Install the two handlers (on the app's event loop, in the main thread); return what removes them."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, app.exit, 128 + signal.SIGTERM)
    hung_up = threading.Event()

    def on_hangup(_signum: int, _frame: FrameType | None) -> None:
        if hung_up.is_set():
            return
        hung_up.set()
        threading.Thread(target=_end_after_hangup, args=(app,), name="mlci-hangup", daemon=True).start()

    previous = signal.signal(signal.SIGHUP, on_hangup)

    def remove() -> None:
        loop.remove_signal_handler(signal.SIGTERM)
        # None: the handler before was set from C, which Python cannot put back; the default then.
        signal.signal(signal.SIGHUP, signal.SIG_DFL if previous is None else previous)

    return remove


def _end_after_hangup(app: _Quittable) -> None:
    app.stop_engine()
    exit_without_terminal(128 + signal.SIGHUP)
