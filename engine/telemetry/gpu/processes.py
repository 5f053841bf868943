"""Who a GPU process is: its command line, and whether it belongs to the tier mlci is running.

Tiers run in their own process group, so a process is "ours" when its process group id is one
of the groups the session reports: that covers every descendant of the tier (a DataLoader
worker, a `dvc repro` stage's python) without walking the process tree.
"""

from __future__ import annotations

import os
from collections.abc import Collection

__all__ = ["command_line", "is_ours", "process_group"]

_COMMAND_MAX = 80
"""Longer command lines are cut: the panel has one line per process."""


def process_group(pid: int) -> int | None:
    """The process group of `pid`, or None when it has exited or is not ours to inspect."""
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def is_ours(pid: int, pgids: Collection[int]) -> bool:
    """Whether `pid` belongs to one of the process groups mlci started."""
    if not pgids:
        return False
    group = process_group(pid)
    return group is not None and group in pgids


def command_line(pid: int) -> str:
    """A short command line for `pid` ("python train.py --quick"), or "" when it cannot be read.

    /proc is read directly (one small file) because it is far cheaper than any process
    library, and the sampler runs once a second.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read(4096)
    except OSError:
        return ""
    argv = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    if not argv:
        return ""
    argv[0] = os.path.basename(argv[0])
    text = " ".join(argv)
    return text if len(text) <= _COMMAND_MAX else text[: _COMMAND_MAX - 1] + "…"
