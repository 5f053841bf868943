"""The tier strip: every tier's status on one line, for screens too narrow for the tier panel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci.tui.components.tier_panel import TierRow, status_label
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["TierStrip"]


class TierStrip(Widget):
    """One line: `code ● passed 3.2s │ data ⏸ held │ model ◐ running`, fed the tier panel's rows.

    Shown only in the narrow layout, above whichever panel is on screen, so the verdicts
    stay visible on an 80x24 projector.
    """

    DEFAULT_CSS = """
    TierStrip {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    rows: reactive[tuple[TierRow, ...]] = reactive((), always_update=True)
    """The tier panel's rows, copied by the app after each event."""

    def render(self) -> RenderableType:
        parts: list[Text] = []
        for row in self.rows:
            label, style = status_label(row.status)
            part = Text.assemble((row.tier.value, "bold"), " ", (label, style))
            if row.duration_s is not None:
                part.append(f" {row.duration_s:.1f}s", style="dim")
            if row.stale:
                part.append(" stale", style="bold yellow")
            parts.append(part)
        return Text(" │ ", style="dim").join(parts) if parts else Text("no tiers", style="dim")
