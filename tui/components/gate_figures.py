"""How a gate's figures are written: one place, so the panel and the details screen agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlci.engine.events import GateResult

__all__ = ["format_value"]


def format_value(result: GateResult, value: float | None) -> str:
    """A gate figure with its unit: milliseconds for latency, megabytes for size, 4 decimals otherwise."""
    if value is None:
        return "—"
    if result.gate == "latency":
        return f"{value:.2f} ms"
    if result.gate == "size":
        return f"{value:.3f} MB"
    return f"{value:.4f}"
