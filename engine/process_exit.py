"""Ending a finished command's process without the interpreter's teardown.

Once a command has returned, Python's shutdown waits for the non-daemon threads, runs the
atexit handlers (the warm runner stops its servers there) and flushes stdout and stderr. Its
last step then tears down every module, one by one: a second of CPU once torch and MLflow are
loaded (`mlci gates`, which is also the model tier's gates child, `mlci report`, a check that
ran the model tier, the dashboard), spent on a process about to go. `exit_without_teardown`
does the first steps, in the same order, and ends the process there. `mlci` and `mlci-tui`
end through it, and so does a tier's cold pytest run (`run.pytest_main`), in the project's
interpreter: standard library only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

__all__ = ["exit_without_teardown", "exit_without_terminal"]


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with `code` as Python's own shutdown would, less the modules' teardown."""
    wait_for_threads = getattr(threading, "_shutdown", None)  # what Python's shutdown calls first
    if wait_for_threads is None:  # another interpreter: its own shutdown, whatever it costs
        sys.exit(code)
    wait_for_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone (a closed pipe), a stream closed
            stream.flush()
    os._exit(code)


def exit_without_terminal(code: int) -> NoReturn:
    """End the process at once, from any thread, once its terminal has gone (SIGHUP): the atexit handlers, then the
    end. Nothing waits for the other threads (one may be blocked writing to that terminal) and nothing is flushed
    to it."""
    atexit._run_exitfuncs()
    os._exit(code)
