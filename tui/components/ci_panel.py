"""The push and remote-CI panel: the push as it happens, then the CI runs it started, job by job."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci.engine.events import CiStatus, PushProgress
from rich.console import Group
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

if TYPE_CHECKING:
    from mlci.engine.events import CiJob, CiRun, Event
    from rich.console import RenderableType

__all__ = ["CiPanel"]

MAX_PUSH_LINES = 8
"""Push steps kept on screen; older ones scroll away (git reports one line per step)."""

BAR_WIDTH = 24

_CONCLUSION_STYLE = {
    "success": ("✔", "bold green"),
    "failure": ("✘", "bold red"),
    "cancelled": ("■", "yellow"),
    "timed_out": ("⏱", "bold red"),
    "skipped": ("↷", "dim"),
    "neutral": ("●", "dim"),
    "action_required": ("!", "bold yellow"),
}
_STATUS_STYLE = {
    "queued": ("◌", "cyan"),
    "in_progress": ("◐", "bold cyan"),
}


def _state(status: str, conclusion: str | None) -> tuple[str, str, str]:
    """(mark, words, style) for a run or job."""
    if status == "completed":
        mark, style = _CONCLUSION_STYLE.get(conclusion or "", ("?", "yellow"))
        return mark, (conclusion or "completed").replace("_", " "), style
    mark, style = _STATUS_STYLE.get(status, ("◌", "dim"))
    return mark, status.replace("_", " "), style


def _same_step(previous: PushProgress, event: PushProgress) -> bool:
    """Both are git progress of the same step ("Writing objects 3/9", "Writing objects 7/9")."""
    if previous.stage != "push" or event.stage != "push":
        return False
    if previous.percent is None or event.percent is None:
        return False
    return previous.message.split(" ")[:2] == event.message.split(" ")[:2]


def _bar(percent: float) -> Text:
    filled = round(BAR_WIDTH * min(max(percent, 0.0), 100.0) / 100)
    return Text.assemble(("█" * filled, "green"), ("░" * (BAR_WIDTH - filled), "dim"), f" {percent:3.0f}%")


class CiPanel(Widget):
    """The last push (check, git's progress, the outcome) and the remote CI runs of the pushed commit.

    Fed by `handle(event)` with PushProgress and CiStatus events; other events are ignored.
    A skipped pre-push check (`--no-verify`) stays visible on the panel until the next push.
    """

    DEFAULT_CSS = """
    CiPanel {
        height: auto;
        min-height: 4;
        border: round $primary;
        padding: 0 1;
    }
    """

    push_lines: reactive[tuple[PushProgress, ...]] = reactive((), always_update=True, layout=True)
    """The last push's steps, oldest first (at most MAX_PUSH_LINES)."""
    push_percent: reactive[float | None] = reactive(None, layout=True)
    """git's progress in the current step; None when it reports none."""
    push_ok: reactive[bool | None] = reactive(None)
    """None while a push is in flight (or before any); True or False once it ended."""
    check_skipped: reactive[bool] = reactive(False, layout=True)
    """The last push ran without the pre-push check."""
    ci: reactive[CiStatus | None] = reactive(None, always_update=True, layout=True)
    """The latest status of the remote runs; None before the first push."""

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.border_title = "Push & CI"

    def handle(self, event: Event) -> None:
        """Fold one engine event into the panel."""
        if isinstance(event, PushProgress):
            self._push(event)
        elif isinstance(event, CiStatus):
            self.ci = event

    def _push(self, event: PushProgress) -> None:
        lines = self.push_lines
        finished = bool(lines) and lines[-1].stage == "done"
        if event.stage == "check" and (not lines or finished):
            lines, self.ci, self.check_skipped = (), None, False  # a new push starts afresh
        if "--no-verify" in event.message:
            self.check_skipped = True
        if lines and _same_step(lines[-1], event):
            lines = lines[:-1]  # git's per-percent updates of one step replace each other
        self.push_lines = (*lines, event)[-MAX_PUSH_LINES:]
        self.push_percent = event.percent if event.stage == "push" else self.push_percent
        self.push_ok = event.ok if event.stage == "done" else None

    def render(self) -> RenderableType:
        parts: list[RenderableType] = []
        if not self.push_lines and self.ci is None:
            return Text("No push yet: the push and the remote CI runs it starts show here.", style="dim")
        if self.check_skipped:
            parts.append(Text("⚠ pre-push check SKIPPED (--no-verify)", style="bold yellow"))
        for line in self.push_lines:
            parts.append(self._push_line(line))
        in_flight = self.push_ok is None and self.push_lines and self.push_lines[-1].stage == "push"
        if in_flight and self.push_percent is not None:
            parts.append(_bar(self.push_percent))
        if self.ci is not None:
            parts.append(Text(f"Remote CI for {self.ci.sha[:8]}", style="bold"))
            parts.extend(self._ci_lines(self.ci))
        return Group(*parts)

    def _push_line(self, event: PushProgress) -> Text:
        if event.ok is True:
            return Text(f"✔ {event.message}", style="bold green")
        if event.ok is False:
            return Text(f"✘ {event.message}", style="bold red")
        if event.stage == "push":
            return Text(f"· {event.message}", style="dim")
        return Text(f"▶ {event.message}")

    def _ci_lines(self, status: CiStatus) -> list[Text]:
        if status.message:
            return [Text(status.message, style="yellow")]
        if not status.runs:
            return [Text("waiting for the provider to start a run…", style="dim")]
        lines: list[Text] = []
        for run in status.runs:
            lines.append(self._run_line(run))
            lines.extend(self._job_line(job) for job in run.jobs)
        return lines

    def _run_line(self, run: CiRun) -> Text:
        mark, words, style = _state(run.status, run.conclusion)
        return Text.assemble((f"{mark} ", style), (run.name, "bold"), "  ", (words, style))

    def _job_line(self, job: CiJob) -> Text:
        mark, words, style = _state(job.status, job.conclusion)
        return Text.assemble("   ", (f"{mark} ", style), job.name, "  ", (words, style))
