"""How long ago something happened, in the few characters a panel line has room for."""

from __future__ import annotations

import time

__all__ = ["ago", "judged"]


def ago(at: float, now: float | None = None) -> str:
    """ "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"."""
    seconds = max(0.0, (time.time() if now is None else now) - at)
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def judged(at: float, commit: str, now: float | None = None) -> str:
    """ "3 h ago on 1a2b3c4d": when a verdict was given, and on which commit."""
    return f"{ago(at, now)} on {commit[:8]}" if commit else ago(at, now)
