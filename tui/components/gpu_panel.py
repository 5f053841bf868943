"""The GPU panel: one row per GPU with utilisation and memory bars, figures and a sparkline.

Under each GPU come its compute processes, the model tier's own marked with ▶. Without a GPU
the panel is one line saying why (no driver, no device), and the rest of the app is unaffected.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from mlci.engine.events import GpuDevice, GpuProcess, GpuSample
from mlci.tui.components.gpu_gauges import bar, sparkline
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["GpuPanel"]

_GIB = 1024.0
_OURS = "▶"
_TIER_TAG = "model tier"
_WIDE = 110
"""From this many cells on, the panel shows power limits and names the model tier in words."""
_MIN_BARS = 6


def _short_name(name: str, width: int) -> str:
    """The device name, without the vendor on a narrow panel ("H200")."""
    short = name.removeprefix("NVIDIA ") if width < 64 else name
    return short[:16]


def _gib(mib: float | None) -> str:
    return "  n/a" if mib is None else f"{mib / _GIB:5.1f}"


def _figure(value: float | None, fmt: str, width: int) -> str:
    return ("n/a" if value is None else fmt.format(value)).rjust(width)


class GpuPanel(Widget):
    """Every GPU's utilisation, memory, temperature and power, with its recent utilisation as a sparkline.

    Fed by `update_sample` with each `GpuSample` the engine's GPU monitor emits (once a second).
    The history behind the sparklines lives here: it is a drawing concern, not the engine's.
    """

    DEFAULT_CSS = """
    GpuPanel {
        height: auto;
        border: round $primary;
        border-title-color: $text;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    HISTORY = 60
    """Samples of utilisation kept per GPU: a minute at one sample a second."""
    MAX_PROCESSES = 4
    """Processes listed under one GPU; the rest are counted."""

    sample: reactive[GpuSample | None] = reactive(None, layout=True)
    """The latest sample; None until the first one arrives."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = "GPU"
        self._history: dict[int, deque[float | None]] = {}

    def update_sample(self, sample: GpuSample) -> None:
        """Show `sample` and add each GPU's utilisation to its sparkline. Call on the UI thread."""
        for device in sample.devices:
            history = self._history.setdefault(device.index, deque(maxlen=self.HISTORY))
            history.append(device.utilization_pct)
        self.sample = sample

    def history(self, index: int) -> tuple[float | None, ...]:
        """The recent utilisation of GPU `index`, oldest first."""
        return tuple(self._history.get(index, ()))

    def render(self) -> Content:
        sample = self.sample
        if sample is None:
            return Content.styled("waiting for the first sample", "$text-muted")
        if not sample.devices:
            return Content.styled(sample.status or "no GPU", "$text-muted")
        width = max(self.size.width, 20)
        names = {d.index: _short_name(d.name, width) for d in sample.devices}
        name_width = max(len(n) for n in names.values())
        pid_width = max((len(str(p.pid)) for d in sample.devices for p in d.processes), default=1)
        lines: list[Content] = []
        for device in sample.devices:
            lines.append(self._device_line(device, names[device.index].ljust(name_width), width))
            lines.extend(self._process_lines(device.processes, pid_width, width))
        return Content("\n").join(lines)

    def _device_line(self, device: GpuDevice, name: str, width: int) -> Content:
        ours = any(p.ours for p in device.processes)
        head = Content.assemble(
            (f"{_OURS} " if ours else "  ", "bold $accent"),
            (f"{device.index} ", "bold"),
            (name, "bold" if ours else ""),
            "  ",
        )
        if device.status:
            return head + Content.styled(f"✗ {device.status}", "bold $error")
        util = _figure(device.utilization_pct, "{:.0f}%", 4)
        memory = f"{_gib(device.memory_used_mib)}/{_gib(device.memory_total_mib).strip()} GiB"
        power = _figure(device.power_w, "{:.0f}", 3) + (
            f"/{_figure(device.power_limit_w, '{:.0f}', 3)} W" if width >= _WIDE else " W"
        )
        extras = [_figure(device.temperature_c, "{:.0f}°C", 4), power]
        # Bars need a few cells to mean anything: drop power, then temperature, on a narrow panel.
        while True:
            fixed = head.cell_length + 1 + len(util) + 2 + 1 + len(memory) + sum(2 + len(e) for e in extras) + 2
            free = width - fixed
            if free >= _MIN_BARS + 4 or not extras:
                break
            extras.pop()
        spark_width = min(self.HISTORY, free // 3) if free >= _MIN_BARS + 4 else 0
        bar_width = max(3, min(30, (free - spark_width) // 2))
        memory_share = (
            device.memory_used_mib / device.memory_total_mib
            if device.memory_used_mib is not None and device.memory_total_mib
            else None
        )
        utilisation = None if device.utilization_pct is None else device.utilization_pct / 100
        parts: list[str | tuple[str, str]] = [
            (bar(utilisation, bar_width), "$accent"),
            " ",
            util,
            "  ",
            (bar(memory_share, bar_width), "$secondary"),
            " ",
            memory,
        ]
        for extra in extras:
            parts += ["  ", extra]
        if spark_width:
            parts += ["  ", (sparkline(self._history.get(device.index, ()), spark_width), "$accent")]
        return head + Content.assemble(*parts)

    def _process_lines(self, processes: Iterable[GpuProcess], pid_width: int, width: int) -> list[Content]:
        listed = sorted(processes, key=lambda p: (not p.ours, -(p.used_memory_mib or 0.0)))
        # On a narrow panel the ▶ alone marks the model tier's processes, leaving room for the command.
        tag = f"  {_TIER_TAG}" if width >= _WIDE // 2 else ""
        name_width = max(8, min(48, width - (4 + 2 + pid_width + 2 + 2 + 9 + len(tag))))
        lines = []
        for process in listed[: self.MAX_PROCESSES]:
            lines.append(
                Content.assemble(
                    "    ",
                    (f"{_OURS} " if process.ours else "  ", "bold $accent"),
                    (f"{process.pid:>{pid_width}}", "$text-muted"),
                    "  ",
                    ((process.name or "?")[:name_width].ljust(name_width), "" if process.ours else "$text-muted"),
                    "  ",
                    f"{_gib(process.used_memory_mib)} GiB",
                    (tag if process.ours else "", "bold $accent"),
                )
            )
        hidden = len(listed) - self.MAX_PROCESSES
        if hidden > 0:
            lines.append(Content.styled(f"      … {hidden} more", "$text-muted"))
        return lines
