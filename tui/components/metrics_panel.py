"""The metrics panel: the live training curves of the model tier's run, and the candidate against the baseline.

Curves come from `MetricPoint` events (the engine's `MetricFollower` emits them as the
training script logs); they are buffered and the plot is redrawn at most a few times a
second, because a `PlotextPlot` rebuilds its whole figure on every refresh. Below the plot,
the candidate's metrics from the last `GateReport` against the baseline, with deltas.
When the tracking store cannot be reached, the panel says so on its status line.

A project without an MLflow run shows what DVC already has (`DvcMetrics`): its metrics with
their change against the main branch, and DVC's line plots, until live points arrive (from
DVCLive's files, under a `dvclive:` run id).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlci.engine.events import (
    DVCLIVE_RUN_PREFIX,
    DvcMetrics,
    GateReport,
    MetricPoint,
    Notice,
    ReferenceRun,
    Tier,
    TierStarted,
)
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

if TYPE_CHECKING:
    from mlci.engine.events import Event
    from textual.app import ComposeResult

__all__ = ["ComparisonRow", "MetricsPanel", "comparison_rows"]

NOTICE_SOURCE = "metrics"
"""Notices from this source (the engine's metric follower) are shown on the panel's status line."""


@dataclass(frozen=True)
class ComparisonRow:
    """One metric of the candidate, against the baseline when the regression gate compared it."""

    metric: str
    candidate: float | None
    baseline: float | None
    passed: bool
    """False when a gate on this metric failed (performance or regression)."""

    @property
    def delta(self) -> float | None:
        if self.candidate is None or self.baseline is None:
            return None
        return self.candidate - self.baseline


def comparison_rows(report: GateReport) -> tuple[ComparisonRow, ...]:
    """The candidate-vs-baseline rows of a gate report, in the gate file's order."""
    rows: dict[str, ComparisonRow] = {}
    for r in report.results:
        if r.gate not in ("performance", "regression") or not r.metric:
            continue
        old = rows.get(r.metric)
        candidate = r.value if r.value is not None else (old.candidate if old else None)
        baseline = r.baseline if r.baseline is not None else (old.baseline if old else None)
        passed = r.passed and (old.passed if old else True)
        rows[r.metric] = ComparisonRow(r.metric, candidate, baseline, passed)
    return tuple(rows.values())


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


class MetricsPanel(Vertical):
    """Live training curves of the current model-tier run, and the candidate's metrics against the baseline.

    Feed it engine events through `on_engine_event` (on the UI thread): `TierStarted` of the
    model tier starts a new plot for its MLflow run, `MetricPoint` adds to the curves,
    `Notice` from the metric follower shows on the status line, `GateReport` fills the table.
    """

    DEFAULT_CSS = """
    MetricsPanel {
        height: 1fr;
        min-height: 12;
        border: round $primary;
        border-title-color: $text;
        padding: 0 1;
    }
    MetricsPanel > #metrics-status {
        height: 1;
        color: $text-muted;
    }
    MetricsPanel > #metrics-status.-warning {
        color: $warning;
        text-style: bold;
    }
    MetricsPanel > #metrics-curves {
        height: 1fr;
        min-height: 6;
    }
    MetricsPanel > #metrics-comparison {
        height: auto;
    }
    """

    REDRAW_INTERVAL_S = 0.3
    """At most this often the plot is redrawn (about three times a second), however fast points arrive."""

    run_id: reactive[str] = reactive("")
    """The MLflow run whose curves are shown; empty before the first model-tier run."""
    warning: reactive[str] = reactive("")
    """The tracking-store problem to show instead of the run's status; empty when all is well."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = "Metrics"
        self._series: dict[str, dict[int, float]] = defaultdict(dict)
        self._references: dict[str, str] = {}
        """MLflow run id -> label, for runs drawn beside the current one (the champion's training)."""
        self._reference_series: dict[str, dict[int, float]] = defaultdict(dict)
        self._dirty = False
        self.redraws = 0
        """How many times the plot was rebuilt (for tests of the throttle)."""
        self.baseline_label = ""
        self.rows: tuple[ComparisonRow, ...] = ()
        self.dvc: DvcMetrics | None = None
        """The project's DVC metrics and plots, shown when there is no run's curves and no gate report."""

    def compose(self) -> ComposeResult:
        yield Static("no model-tier run yet", id="metrics-status")
        yield PlotextPlot(id="metrics-curves")
        yield Static("", id="metrics-comparison")

    def on_mount(self) -> None:
        self.set_interval(self.REDRAW_INTERVAL_S, self.flush)
        self._draw()

    # -- feeding -------------------------------------------------------------------------------

    def on_engine_event(self, event: Event) -> None:
        """Route an engine event here; the ones this panel does not show are ignored."""
        if isinstance(event, ReferenceRun):
            self._references[event.mlflow_run_id] = event.label
        elif isinstance(event, MetricPoint):
            self.add_point(event)
        elif isinstance(event, TierStarted) and event.mlflow_run_id:
            self.begin_run(event.mlflow_run_id)
        elif isinstance(event, TierStarted) and event.tier is Tier.MODEL:
            self.begin_run("")  # no MLflow run: DVCLive's points of this run start afresh, not after the last run's
        elif isinstance(event, Notice) and event.source == NOTICE_SOURCE:
            self.show_notice(event)
        elif isinstance(event, GateReport):
            self.show_gates(event)
        elif isinstance(event, DvcMetrics):
            self.show_dvc(event)

    def begin_run(self, run_id: str) -> None:
        """Clear the curves for a new MLflow run."""
        self.run_id = run_id
        self._series.clear()
        self._dirty = True

    def add_point(self, point: MetricPoint) -> None:
        """Buffer one point; the next redraw tick draws it. Points of another run start that run's plot."""
        label = self._references.get(point.mlflow_run_id)
        if label is not None:
            self._reference_series[f"{label} {point.key}"][point.step] = point.value
            self._dirty = True
            return
        if point.mlflow_run_id != self.run_id:
            self.begin_run(point.mlflow_run_id)
        self._series[point.key][point.step] = point.value
        self._dirty = True

    def show_notice(self, notice: Notice) -> None:
        self.warning = notice.text if notice.level != "info" else ""

    def show_gates(self, report: GateReport) -> None:
        self.baseline_label = report.baseline
        self.rows = comparison_rows(report)
        self._render_comparison()

    def show_dvc(self, metrics: DvcMetrics) -> None:
        """Show the project's DVC metrics (and, while no run's curves are drawn, its DVC plots)."""
        self.dvc = metrics
        self._dirty = True
        self._render_comparison()
        self._render_status()

    def flush(self) -> None:
        """Redraw the plot if points arrived since the last redraw (called by the panel's timer)."""
        if self._dirty:
            self._dirty = False
            self._draw()

    def series(self, key: str) -> list[tuple[int, float]]:
        """The points of one curve, by step."""
        return sorted(self._series.get(key, {}).items())

    # -- drawing -------------------------------------------------------------------------------

    def watch_run_id(self) -> None:
        self._render_status()

    def watch_warning(self) -> None:
        self._render_status()

    def _render_status(self) -> None:
        if not self.is_mounted:
            return
        status = self.query_one("#metrics-status", Static)
        status.set_class(bool(self.warning), "-warning")
        if self.warning:
            status.update(f"⚠ {self.warning}")
        elif self.run_id:
            points = sum(len(v) for v in self._series.values())
            if self.run_id.startswith(DVCLIVE_RUN_PREFIX):
                folder = self.run_id.removeprefix(DVCLIVE_RUN_PREFIX)
                where = "DVCLive" if folder == "dvclive" else f"DVCLive {folder}/"
            else:
                where = f"MLflow run {self.run_id[:8]}"
            status.update(f"{where} · {len(self._series)} metrics · {points} points")
        elif self.dvc is not None:
            plots = f", {len(self.dvc.plots)} plots" if self.dvc.plots else ""
            status.update(f"no MLflow run · DVC metrics{plots}")
        else:
            status.update("no model-tier run yet")

    def _draw(self) -> None:
        plot = self.query_one("#metrics-curves", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        curves: list[tuple[str, dict[int, float] | dict[float, float], str]]
        curves = [(key, self._series[key], "braille") for key in sorted(self._series)]
        # The reference (the champion's training) in dots, under its own label, for comparison.
        curves += [(key, self._reference_series[key], "dot") for key in sorted(self._reference_series)]
        if not curves and self.dvc is not None:
            # No run's curves: DVC's own line plots, as `dvc plots show` would draw them.
            curves = [(p.y, dict(zip(p.xs, p.ys, strict=True)), "braille") for p in self.dvc.plots]
        for key, series, marker in curves:
            points = sorted(series.items())
            steps = [s for s, _ in points]
            values = [v for _, v in points]
            # Losses on the left axis, rates on the right: their scales differ.
            side = "left" if "loss" in key.lower() else "right"
            plt.plot(steps, values, label=key, yside=side, marker=marker)
        plt.xlabel("step")
        if not curves:
            plt.title("waiting for the training run's metrics")
        self.redraws += 1
        plot.refresh()
        self._render_status()

    def _render_comparison(self) -> None:
        table = Table(box=None, padding=(0, 1), expand=False, show_edge=False)
        table.add_column("metric")
        table.add_column("candidate", justify="right")
        table.add_column("baseline", justify="right")
        table.add_column("delta", justify="right")
        for row in self.rows:
            delta = "—" if row.delta is None else f"{row.delta:+.4f}"
            style = "" if row.passed else "bold red"
            table.add_row(
                Text(row.metric, style=style),
                _fmt(row.candidate),
                _fmt(row.baseline),
                Text(delta, style="red" if not row.passed else ("green" if (row.delta or 0) >= 0 else "")),
            )
        title = Text(f"candidate vs {self.baseline_label or 'no baseline'}", style="bold")
        if self.rows:
            self.query_one("#metrics-comparison", Static).update(Group(title, table))
        elif self.dvc is not None:
            self.query_one("#metrics-comparison", Static).update(_dvc_table(self.dvc))
        else:
            self.query_one("#metrics-comparison", Static).update("")


def _dvc_table(metrics: DvcMetrics) -> Group | str:
    """`dvc metrics diff main`, as a table: each metric's value today, on main, and the change."""
    if not metrics.values:
        return "; ".join(metrics.errors) or "no DVC metrics"
    against = metrics.diff_against or "main"
    table = Table(box=None, padding=(0, 1), expand=False, show_edge=False)
    table.add_column("metric")
    table.add_column("now", justify="right")
    table.add_column(against, justify="right")
    table.add_column("change", justify="right")
    sources = {m.source for m in metrics.values}
    for m in metrics.values:
        name = m.key if len(sources) == 1 else f"{m.source}:{m.key}"
        change = "—" if m.value is None or m.old is None else f"{m.value - m.old:+.4f}"
        table.add_row(name, _fmt(m.value), _fmt(m.old), change)
    where = next(iter(sources)) if len(sources) == 1 else f"{len(sources)} files"
    title = f"DVC metrics ({where}) vs {against}" if metrics.diff_against else f"DVC metrics ({where}); no {against}"
    return Group(Text(title, style="bold"), table)
