"""The tier panel: each tier's status, duration, last trigger, a stale mark, and the code tier's first verdict."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mlci.engine.events import (
    AffectedVerdict,
    LastVerdict,
    PlanMade,
    Tier,
    TierFinished,
    TierStale,
    TierStarted,
    Verdict,
)
from mlci.tui.components.ages import judged
from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

if TYPE_CHECKING:
    from mlci.engine.events import Event
    from rich.console import RenderableType

__all__ = ["TierPanel", "TierRow", "affected_text", "status_label"]

_STATUS_STYLE = {
    "idle": ("○ idle", "dim"),
    "queued": ("◌ queued", "cyan"),
    "running": ("◐ running", "bold cyan"),
    Verdict.PASSED.value: ("● passed", "bold green"),
    Verdict.FAILED.value: ("✖ failed", "bold red"),
    Verdict.ERROR.value: ("✖ error", "bold red"),
    Verdict.TIMED_OUT.value: ("⏱ timed out", "bold red"),
    Verdict.CANCELLED.value: ("◌ cancelled", "yellow"),
    Verdict.HELD.value: ("⏸ held", "yellow"),
}


def _counts(passed: int, failed: int) -> str:
    return f"{passed} passed, {failed} failed" if (passed or failed) else ""


def status_label(status: str) -> tuple[str, str]:
    """A status in a few characters with its style: ("● passed", "bold green")."""
    return _STATUS_STYLE.get(status, (status, ""))


@dataclass(frozen=True)
class TierRow:
    """What the panel shows for one tier."""

    tier: Tier
    status: str = "idle"
    duration_s: float | None = None
    trigger: str = ""
    """Why it last ran, in words: the rule and the first path."""
    counts: str = ""
    stale: int = 0
    """Changes since the running model tier started (it finishes, then reruns once)."""
    reason: str = ""
    affected: str = ""
    """The first verdict, of the tests the change affects ("5 affected passed in 0.09 s"); "" before it."""
    affected_green: bool = True
    earlier: str = ""
    """The verdict an earlier session gave, from the history ("passed 3 h ago on 1a2b3c4d"), until this
    session's own; "" once there is one."""
    earlier_stale: bool = False
    """The tree moved on since the earlier verdict."""


def affected_text(event: AffectedVerdict) -> str:
    """The first verdict in a few words, for beside the tier."""
    if not event.nodeids:
        return "no test affected"
    n = len(event.nodeids)
    counts = f"{n} affected passed" if event.is_green else f"{event.failed} of {n} affected failed"
    first = " (first run)" if event.why.startswith("first run") else ""
    return f"{counts} in {event.duration_s:.2f} s{first}"


class TierPanel(Widget):
    """The configured tiers in gating order, updated from engine events."""

    DEFAULT_CSS = """
    TierPanel {
        height: auto;
        border: round $primary;
        border-title-color: $text;
        padding: 0 1;
    }
    """

    rows: reactive[tuple[TierRow, ...]] = reactive((), always_update=True, layout=True)
    """One row per configured tier."""

    class RerunRequested(Message):
        """A tier's line was clicked: rerun it. Handled by `on_tier_panel_rerun_requested`."""

        def __init__(self, tier: Tier) -> None:
            super().__init__()
            self.tier = tier

    def __init__(self, tiers: tuple[Tier, ...], *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.set_reactive(TierPanel.rows, tuple(TierRow(t) for t in tiers))
        self.border_title = "Tiers"

    def _update(self, tier: Tier, **changes: object) -> None:
        self.rows = tuple(replace(r, **changes) if r.tier is tier else r for r in self.rows)  # type: ignore[arg-type]

    def row(self, tier: Tier) -> TierRow | None:
        return next((r for r in self.rows if r.tier is tier), None)

    def handle(self, event: Event) -> None:
        """Fold one engine event into the rows."""
        if isinstance(event, PlanMade):
            for trigger in event.triggers:
                first = trigger.paths[0] if trigger.paths else ""
                more = f" +{len(trigger.paths) - 1}" if len(trigger.paths) > 1 else ""
                self._update(trigger.tier, trigger=f"{trigger.rule}: {first}{more}" if first else trigger.rule)
            for tier in event.tiers:
                row = self.row(tier)
                if row is not None and row.status != "running":
                    self._update(tier, status="queued")
        elif isinstance(event, TierStarted):
            self._update(event.tier, status="running", stale=0, reason="", duration_s=None, affected="")
        elif isinstance(event, AffectedVerdict):
            # Red affected tests make the tier red at once; its own verdict follows.
            extra = {} if event.is_green else {"status": Verdict.FAILED.value}
            self._update(event.tier, affected=affected_text(event), affected_green=event.is_green, **extra)
        elif isinstance(event, LastVerdict):
            self._restore(event)
        elif isinstance(event, TierFinished):
            counts = _counts(event.passed, event.failed)
            self._update(
                event.tier,
                status=event.verdict.value,
                duration_s=event.duration_s,
                counts=counts,
                reason=event.reason,
                earlier="",
                earlier_stale=False,
            )
        elif isinstance(event, TierStale):
            self._update(event.tier, stale=event.changes_since_start)

    def _restore(self, event: LastVerdict) -> None:
        """Show an earlier session's verdict, unless this session already has its own."""
        row = self.row(event.tier)
        if row is None or (row.status != "idle" and not row.earlier and row.status != "running"):
            return
        earlier = f"{event.verdict.value} {judged(event.finished_at, event.git_commit)}"
        if row.status == "running":  # the run at start is on its way: keep it, say what came before
            self._update(event.tier, earlier=earlier, earlier_stale=event.stale)
            return
        counts = _counts(event.passed, event.failed)
        self._update(
            event.tier,
            status=event.verdict.value,
            duration_s=event.duration_s,
            counts=counts,
            reason=event.reason,
            earlier=earlier,
            earlier_stale=event.stale,
        )

    def on_click(self, event: events.Click) -> None:
        tier = self.tier_at(event.y - self.gutter.top)
        if tier is not None:
            self.post_message(self.RerunRequested(tier))

    def tier_at(self, line: int) -> Tier | None:
        """The tier whose lines include content line `line` (0 is the first), None past the last."""
        top = 0
        for row in self.rows:
            height = 1 + bool(row.earlier) + bool(row.reason or row.counts) + bool(row.trigger)
            if top <= line < top + height:
                return row.tier
            top += height
        return None

    def render(self) -> RenderableType:
        lines: list[Text] = []
        for row in self.rows:
            label, style = status_label(row.status)
            line = Text.assemble((f"{row.tier.value:<6}", "bold"), (f"{label:<12}", style))
            if row.duration_s is not None:
                line.append(f" {row.duration_s:6.1f}s")
            if row.affected:
                line.append(f"  {row.affected}", style="green" if row.affected_green else "bold red")
            if row.stale:
                changes = f"{row.stale} change{'s' if row.stale > 1 else ''}"
                line.append(f"  stale: {changes} since start", style="bold yellow")
            lines.append(line)
            if row.earlier:
                earlier = Text(f"      last: {row.earlier}", style="dim")
                if row.earlier_stale:
                    earlier.append("  stale: the tree changed since", style="bold yellow")
                lines.append(earlier)
            detail = row.reason or row.counts
            if detail:
                lines.append(Text(f"      {detail}", style="dim"))
            if row.trigger:
                lines.append(Text(f"      why: {row.trigger}", style="dim italic"))
        return Text("\n").join(lines) if lines else Text("no tiers: nothing configured or inferred", style="dim")
