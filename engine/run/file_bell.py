"""A file descriptor that becomes readable when a file is written: the runner's doorbell for the test report.

The pytest plugin writes each result to a report file; the runner waited up to a polling
interval (`BATCH_S`) to read it, which is most of what stood between the affected tests'
last line and the first verdict. With inotify (`IN_MODIFY` on the file) the runner's
`select` wakes as the line lands. Where inotify is missing (not Linux, no instance left), the
bell never rings and the runner keeps its interval.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from pathlib import Path

__all__ = ["FileBell"]

_IN_MODIFY = 0x2


class FileBell:
    """Rings (its `fd` is readable) each time the file at `path` is written; `clear` after each ring."""

    def __init__(self, path: Path) -> None:
        self.fd: int | None = None
        if not sys.platform.startswith("linux"):
            return
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            fd = int(libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK))
            if fd < 0:
                return
            if libc.inotify_add_watch(fd, os.fsencode(path), _IN_MODIFY) < 0:
                os.close(fd)
                return
            self.fd = fd

    def clear(self) -> None:
        """Drain the rings so far (the file is read after: nothing written before this call is missed)."""
        if self.fd is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self.fd, 4096):
                pass

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
