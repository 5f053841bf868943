"""The gates panel: every gate's value, threshold and verdict, failing gates first; details and promotion on keys.

Filled from the engine's `GateReport`. Gates whose figure has a bootstrap interval show it in an
interval column; a gate that passes on its value while the interval crosses the threshold is
borderline: marked `≈` in yellow, with "borderline" beside its interval, and counted in the summary.

`enter` (or `d`) opens the selected gate's details:
its reason in words and the lines behind it (per-group figures, failing behavioral cases).
`p` asks to promote the `challenger` model to `champion`, after a confirmation that names
both versions; the registry calls run in worker threads, never on the UI thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mlci.engine.events import GateReport, GateResult, LastGateReport, PlanMade, Tier
from mlci.tui.components.ages import judged
from mlci.tui.components.gate_figures import format_interval, format_value
from mlci.tui.screens.gate_details_screen import GateDetailsScreen
from mlci.tui.screens.promote_confirm_screen import PromoteConfirmScreen
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static

if TYPE_CHECKING:
    from mlci.engine.config.loader import Config
    from mlci.engine.events import Event
    from textual.app import ComposeResult

__all__ = ["GatesPanel", "ordered"]


def ordered(report: GateReport) -> list[GateResult]:
    """Failing gates first, then borderline ones, then the rest, each group in the gate file's order."""
    return sorted(report.results, key=lambda r: (r.passed, not r.borderline))


COLUMNS = ("", "gate", "check", "value", "threshold")
INTERVAL_COLUMN = "interval"
"""Shown only when a gate of the report has an interval (reports from before intervals have none)."""


def _mark(r: GateResult) -> Text:
    if not r.passed:
        return Text("✗", style="bold red")
    return Text("≈", style="bold yellow") if r.borderline else Text("✓", style="bold green")


class GatesPanel(Vertical):
    """Every gate of the last gate report: verdict, gate, check, value and threshold; failing gates first.

    | Key | Action |
    | :- | :- |
    | `enter`, `g` | Details of the selected gate. |
    | `P` | Promote the challenger model to champion (asks first). |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,g", "details", "Gate details"),
        Binding("P", "promote", "Promote"),
    ]

    DEFAULT_CSS = """
    GatesPanel {
        height: auto;
        max-height: 20;
        border: round $primary;
        border-title-color: $text;
        padding: 0 1;
    }
    GatesPanel > #gates-judged {
        height: auto;
    }
    GatesPanel > #gates-summary {
        height: auto;
    }
    GatesPanel > DataTable {
        height: auto;
        max-height: 16;
    }
    """

    report: reactive[GateReport | None] = reactive(None, always_update=True)
    """The last gate report; None until the first model-tier run reaches the gates."""

    class Promoted(Message):
        """The champion alias moved, or promotion failed (`ok` False). Handled by `on_gates_panel_promoted`."""

        def __init__(self, text: str, ok: bool) -> None:
            super().__init__()
            self.text = text
            self.ok = ok

    def __init__(
        self,
        config: Config | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.config = config
        """For promotion: the project's MLflow store and model name; None disables `p`."""
        self.border_title = "Gates"
        self._judged: tuple[str, bool] = ("", False)
        """The commit the shown report judged ("" when unknown), and whether the tree moved on since."""
        self._rows: list[GateResult] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(self._empty_text(), style="dim"), id="gates-summary")
        yield Static("", id="gates-judged")
        table: DataTable[Text | str] = DataTable(cursor_type="row", zebra_stripes=False, show_cursor=True)
        table.add_columns(*COLUMNS)
        yield table

    def _empty_text(self) -> str:
        if self.config is not None and self.config.gates_path is None:
            return "no gate file (model_gates.yaml): `mlci gates init` writes one from the project's metrics"
        return "no gate report yet: the model tier evaluates the gates"

    def on_engine_event(self, event: Event) -> None:
        """Route an engine event here: gate reports, and the changes that make them stale."""
        if isinstance(event, GateReport):
            self._judged = ("", False)
            self.report = event
        elif isinstance(event, LastGateReport):
            self._judged = (event.git_commit, event.stale)
            self.report = event.report
        elif isinstance(event, PlanMade) and Tier.MODEL in event.tiers and self.report is not None:
            # The tree changed in a way the model depends on: until the model tier evaluates the
            # gates again, these verdicts are about an older model.
            self._judged = (self._judged[0], True)
        else:
            return
        self._render_judged()

    @property
    def stale(self) -> bool:
        """Whether the report shown judged a model the tree has moved on from."""
        return self._judged[1]

    def _render_judged(self) -> None:
        if not self.is_mounted or self.report is None:
            return
        commit, stale = self._judged
        line = Text(f"judged {judged(self.report.at, commit)}", style="dim")
        if stale:
            line.append("  · stale: the tree changed since; these gates judged an older model", style="bold yellow")
        self.query_one("#gates-judged", Static).update(line)

    def watch_report(self, report: GateReport | None) -> None:
        if report is None or not self.is_mounted:
            return
        table = self.query_one(DataTable)
        with_intervals = any(r.interval_low is not None for r in report.results)
        table.clear(columns=True)
        table.add_columns(*COLUMNS, *((INTERVAL_COLUMN,) if with_intervals else ()))
        self._rows = ordered(report)
        for r in self._rows:
            style = "red" if not r.passed else ("yellow" if r.borderline else "")
            cells: list[Text | str] = [
                _mark(r),
                Text(r.gate, style=style),
                Text(r.check, style=style),
                Text(format_value(r, r.value), style=style),
                format_value(r, r.threshold),
            ]
            if with_intervals:
                interval = Text(format_interval(r) or "—", style="" if r.interval_low is not None else "dim")
                if r.borderline:
                    interval.append(" borderline", style="bold yellow")
                cells.append(interval)
            table.add_row(*cells)
        failed = sum(not r.passed for r in report.results)
        if report.passed:
            summary = Text(f"✓ all {len(report.results)} gates pass", style="bold green")
        elif not report.results:
            summary = Text("✗ no gate was evaluated", style="bold red")
        else:
            summary = Text(f"✗ {failed} of {len(report.results)} gates fail", style="bold red")
        borderline = sum(r.borderline for r in report.results)
        if borderline:
            summary.append(f"  · {borderline} borderline", style="bold yellow")
        if report.baseline:
            summary.append(f"  · baseline {report.baseline}", style="dim")
        self.query_one("#gates-summary", Static).update(summary)

    def selected(self) -> GateResult | None:
        """The gate under the cursor."""
        if not self._rows:
            return None
        row = self.query_one(DataTable).cursor_row
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        result = self.selected()
        if result is not None:
            self.app.push_screen(GateDetailsScreen(result))

    def action_promote(self) -> None:
        if self.config is None:
            self.notify("promotion needs the project's config", severity="warning")
            return
        self._ask_promote()

    @work(thread=True, exclusive=True, group="registry")
    def _ask_promote(self) -> None:
        from mlci.engine.errors import MlciError
        from mlci.engine.gates.registry import alias_state

        assert self.config is not None
        try:
            state = alias_state(self.config)
        except MlciError as exc:
            self.post_message(self.Promoted(str(exc), False))
            return
        if state.challenger is None:
            self.post_message(self.Promoted(f"nothing to promote: {state.name} has no challenger", False))
            return
        if state.champion == state.challenger:
            self.post_message(self.Promoted(f"{state.name} v{state.challenger} is already champion", True))
            return
        before = f"v{state.champion}" if state.champion else "no version"
        question = f"Move {state.name}'s champion from {before} to v{state.challenger} (the challenger)?"
        self.app.call_from_thread(self.app.push_screen, PromoteConfirmScreen(question), self._answered)

    def _answered(self, yes: bool | None) -> None:
        if yes:
            self._promote()

    @work(thread=True, exclusive=True, group="registry")
    def _promote(self) -> None:
        from mlci.engine.errors import MlciError
        from mlci.engine.gates.registry import promote

        assert self.config is not None
        try:
            self.post_message(self.Promoted(promote(self.config).describe(), True))
        except MlciError as exc:
            self.post_message(self.Promoted(str(exc), False))

    def on_gates_panel_promoted(self, message: Promoted) -> None:
        self.notify(message.text, severity="information" if message.ok else "error")
