"""Cheap text gauges for GPU figures: a bar in eighth-blocks and a sparkline of recent values.

Plain strings, so a panel redrawn once a second per GPU costs microseconds, not a plot.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["bar", "sparkline"]

_EIGHTHS = " ▏▎▍▌▋▊▉"
_TICKS = "▁▂▃▄▅▆▇█"


def bar(fraction: float | None, width: int) -> str:
    """A bar `width` cells wide, filled to `fraction` (0..1) with eighth-cell precision; blank for None."""
    if width <= 0:
        return ""
    if fraction is None:
        return "·" * width
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, rest = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[rest] if rest else "")
    return text.ljust(width, " ")


def sparkline(values: Iterable[float | None], width: int, top: float = 100.0) -> str:
    """The last `width` values as ticks on a fixed 0..`top` scale (so 50% always looks like 50%)."""
    if width <= 0:
        return ""
    recent = list(values)[-width:]
    ticks = []
    for value in recent:
        if value is None:
            ticks.append(" ")
            continue
        level = min(max(value / top, 0.0), 1.0)
        ticks.append(_TICKS[min(len(_TICKS) - 1, int(level * len(_TICKS)))])
    return "".join(ticks).rjust(width, " ")
