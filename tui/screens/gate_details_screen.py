"""The details of one gate: its check, both numbers and the interval, the reason, and the lines behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mlci.tui.components.gate_figures import format_interval, format_value
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from mlci.engine.events import GateResult
    from textual.app import ComposeResult

__all__ = ["GateDetailsScreen"]


class GateDetailsScreen(ModalScreen[None]):
    """One gate in full: its check, verdict, both numbers, the reason, and the lines behind it.

    | Key | Action |
    | :- | :- |
    | `escape`, `enter`, `q` | Close. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "dismiss", "Close")]

    DEFAULT_CSS = """
    GateDetailsScreen {
        align: center middle;
    }
    GateDetailsScreen > #gate-dialog {
        width: 90%;
        max-width: 110;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    GateDetailsScreen #gate-lines {
        height: auto;
        max-height: 20;
        margin-top: 1;
    }
    """

    def __init__(self, result: GateResult) -> None:
        super().__init__()
        self.result = result

    def compose(self) -> ComposeResult:
        r = self.result
        verdict = Text("PASS", style="bold green") if r.passed else Text("FAIL", style="bold red")
        head = Text.assemble(verdict, "  ", (r.gate, "bold"), "  ", r.check)
        if r.borderline:
            head.append("  borderline", style="bold yellow")
        figures = Text(f"value {format_value(r, r.value)}    threshold {format_value(r, r.threshold)}")
        if r.baseline is not None:
            figures.append(f"    baseline {format_value(r, r.baseline)}")
        if r.confidence is not None and r.interval_low is not None:
            figures.append(f"    {r.confidence:.0%} interval {format_interval(r)}")
        if r.interval_note:
            figures.append(f"\n{r.interval_note}", style="dim")
        if r.borderline:
            figures.append("\nborderline: the value passes, but its interval crosses the threshold", style="yellow")
        with Vertical(id="gate-dialog"):
            yield Static(head, id="gate-head")
            yield Static(figures, id="gate-figures")
            yield Static(Text(r.reason), id="gate-reason")
            with VerticalScroll(id="gate-lines"):
                yield Static(Text("\n".join(r.details) if r.details else "(no further details)"))
