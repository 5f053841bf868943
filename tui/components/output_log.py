"""The live output of the running tier: batched writes into a capped log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci.engine.events import OutputLines, TierFinished, TierStarted
from textual.widgets import RichLog

if TYPE_CHECKING:
    from mlci.engine.events import Event

__all__ = ["OutputLog"]


class OutputLog(RichLog):
    """The output of the tiers as they run, newest at the bottom.

    Lines arrive from the engine already batched (one `OutputLines` event per ~50-100 ms),
    and each batch is one write, so a chatty test suite never floods the UI. The log keeps
    `MAX_LINES` lines; older ones scroll away.
    """

    DEFAULT_CSS = """
    OutputLog {
        border: round $primary;
        border-title-color: $text;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    """

    MAX_LINES = 2000
    """Lines kept; a long training log does not grow memory without bound."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            max_lines=self.MAX_LINES, wrap=False, markup=False, highlight=False, name=name, id=id, classes=classes
        )
        self.border_title = "Output"
        self.running: set[str] = set()

    def _title(self) -> None:
        self.border_title = f"Output · {', '.join(sorted(self.running))} running" if self.running else "Output"

    def handle(self, event: Event) -> None:
        """Fold one engine event into the log."""
        if isinstance(event, TierStarted):
            self.running.add(event.tier.value)
            command = " ".join(event.command)
            self.write(f"── {event.tier.value} tier (run {event.run_id}) ── {command}".rstrip())
            self._title()
        elif isinstance(event, OutputLines):
            self.write(
                "\n".join(f"[{event.tier.value}] {line}" if len(self.running) > 1 else line for line in event.lines)
            )
        elif isinstance(event, TierFinished):
            self.running.discard(event.tier.value)
            reason = f": {event.reason}" if event.reason else ""
            self.write(f"── {event.tier.value} tier {event.verdict.value} in {event.duration_s:.1f}s{reason}")
            self._title()
