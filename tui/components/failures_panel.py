"""The failing tests of each tier, with their failure text, from pytest's own reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci.engine.events import TestOutcome, TestResult, Tier, TierStarted
from rich.text import Text
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

if TYPE_CHECKING:
    from mlci.engine.events import Event

__all__ = ["FailuresPanel"]

_FAILING = (TestOutcome.FAILED, TestOutcome.ERROR)
FAILURE_TEXT_LINES = 12
"""Lines of each failure's text shown when pytest marked no `E` lines (its tail)."""


def failure_excerpt(longrepr: str) -> list[str]:
    """The lines that say what failed: pytest's `E` lines and the location, else the tail."""
    lines = longrepr.strip().splitlines()
    errors = [line for line in lines if line.startswith("E ")]
    if not errors:
        return lines[-FAILURE_TEXT_LINES:]
    location = [lines[-1]] if lines and not lines[-1].startswith("E ") else []
    return [*errors[:FAILURE_TEXT_LINES], *location]


class FailuresPanel(VerticalScroll):
    """Failing tests, grouped by tier; a tier's list is cleared when that tier runs again."""

    DEFAULT_CSS = """
    FailuresPanel {
        border: round $error 60%;
        border-title-color: $text;
        padding: 0 1;
    }
    FailuresPanel > Static {
        width: 1fr;
    }
    """

    failures: reactive[dict[Tier, tuple[TestResult, ...]]] = reactive(dict, always_update=True)
    """Failing results by tier, from the tier's latest run."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = "Failing tests"
        self.text = Text("none", style="dim")
        """What the panel shows."""

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(Text("none", style="dim"), id="failures-body")

    def handle(self, event: Event) -> None:
        """Fold one engine event into the list."""
        if isinstance(event, TierStarted):
            if event.tier in self.failures:
                self.failures = {t: r for t, r in self.failures.items() if t is not event.tier}
        elif isinstance(event, TestResult) and event.outcome in _FAILING:
            current = dict(self.failures)
            current[event.tier] = (*current.get(event.tier, ()), event)
            self.failures = current

    def watch_failures(self, failures: dict[Tier, tuple[TestResult, ...]]) -> None:
        count = sum(len(r) for r in failures.values())
        self.border_title = f"Failing tests ({count})" if count else "Failing tests"
        if not self.is_mounted:
            return
        body = self.query_one("#failures-body", Static)
        if not count:
            self.text = Text("none", style="dim")
            body.update(self.text)
            return
        parts: list[Text] = []
        for tier, results in failures.items():
            for result in results:
                parts.append(Text.assemble(("✖ ", "bold red"), (f"{tier.value} ", "dim"), (result.nodeid, "bold")))
                parts.extend(
                    Text(f"  {line}", style="red" if line.startswith("E ") else "dim")
                    for line in failure_excerpt(result.longrepr)
                )
        self.text = Text("\n").join(parts)
        body.update(self.text)
