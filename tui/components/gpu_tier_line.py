"""One line of GPU use for beside the model tier's training curve.

It shows only the GPUs the model tier's processes run on, so a training curve that slows
down can be read against the GPU that stalled, without looking across at the GPU panel.
"""

from __future__ import annotations

from collections import deque

from mlci.engine.events import GpuSample
from mlci.tui.components.gpu_gauges import sparkline
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

__all__ = ["GpuTierLine"]

_SPARK = 20


class GpuTierLine(Widget):
    """The utilisation (with a sparkline) and memory of each GPU the model tier runs on.

    Fed by `update_sample` with the same `GpuSample` events as `GpuPanel`.
    """

    DEFAULT_CSS = """
    GpuTierLine {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    HISTORY = 60
    """Samples of utilisation kept per GPU."""

    sample: reactive[GpuSample | None] = reactive(None)
    """The latest sample; None until the first one arrives."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._history: dict[int, deque[float | None]] = {}

    def update_sample(self, sample: GpuSample) -> None:
        """Show `sample`; every GPU's history is kept, so a GPU the tier moves onto has its past."""
        for device in sample.devices:
            self._history.setdefault(device.index, deque(maxlen=self.HISTORY)).append(device.utilization_pct)
        self.sample = sample

    def render(self) -> Content:
        sample = self.sample
        if sample is None:
            return Content("")
        if not sample.devices:
            return Content.assemble(("GPU  ", "bold"), (sample.status or "no GPU", "$text-muted"))
        parts: list[str | tuple[str, str]] = [("GPU  ", "bold")]
        for device in sample.devices:
            ours = [p for p in device.processes if p.ours]
            if not ours:
                continue
            if len(parts) > 1:
                parts.append("   ")
            util = "n/a" if device.utilization_pct is None else f"{device.utilization_pct:.0f}%"
            used = sum(p.used_memory_mib or 0.0 for p in ours) / 1024
            parts += [
                (f"{device.index} ", "bold"),
                (sparkline(self._history.get(device.index, ()), _SPARK), "$accent"),
                f" {util:>4}  {used:.1f} GiB",
            ]
        if len(parts) == 1:
            parts.append(("the model tier is not on a GPU", "$text-muted"))
        return Content.assemble(*parts)
