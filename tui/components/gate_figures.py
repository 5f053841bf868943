"""How a gate's figures are written: one place, so the panel and the details screen agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlci.engine.events import GateResult

__all__ = ["format_interval", "format_value"]


def format_value(result: GateResult, value: float | None) -> str:
    """A gate figure with its unit: milliseconds for latency, megabytes for size, 4 decimals otherwise."""
    if value is None:
        return "—"
    if result.gate == "latency":
        return f"{value:.2f} ms"
    if result.gate == "size":
        return f"{value:.3f} MB"
    return f"{value:.4f}"


def format_interval(result: GateResult) -> str:
    """The gate's confidence interval on the scale of its value ("[0.9105, 0.9275]"); "" when it has none."""
    if result.interval_low is None or result.interval_high is None:
        return ""
    return f"[{format_value(result, result.interval_low)}, {format_value(result, result.interval_high)}]"
