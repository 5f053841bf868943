"""The metrics panel of a project without MLflow: its DVC metrics against main, DVC's plots, DVCLive's live curves."""

from __future__ import annotations

import io

from mlci.engine.events import (
    DVCLIVE_RUN_PREFIX,
    DvcMetric,
    DvcMetrics,
    DvcPlot,
    GateReport,
    GateResult,
    MetricPoint,
    Tier,
    TierStarted,
)
from mlci.tui.components.metrics_panel import MetricsPanel
from rich.console import Console
from textual.app import App, ComposeResult
from textual.widgets import Static

from tests.pilot_wait import until

DVC = DvcMetrics(
    (
        DvcMetric("eval/metrics.json", "accuracy", 0.8761, 0.8859),
        DvcMetric("eval/metrics.json", "loss", 0.1239, 0.1141),
    ),
    "main",
    (DvcPlot("eval/plots/loss.tsv", "step", "loss", (0.0, 1.0, 2.0), (0.5, 0.3, 0.1239)),),
    at=0.0,
)
LIVE = f"{DVCLIVE_RUN_PREFIX}dvclive"


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield MetricsPanel()


def text(app: App[None], selector: str) -> str:
    return str(app.query_one(selector).render())


def comparison(app: App[None]) -> str:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(app.query_one("#metrics-comparison", Static).content)
    return console.export_text()


async def test_without_a_run_the_panel_shows_the_dvc_metrics_against_main_and_the_dvc_plots() -> None:
    app = Host()
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(MetricsPanel)
        panel.on_engine_event(DVC)
        await until(pilot, lambda: panel.redraws >= 2)  # the panel's redraw timer draws the plot
        assert text(app, "#metrics-status") == "no MLflow run · DVC metrics, 1 plots"
        shown = comparison(app)
        assert "DVC metrics (eval/metrics.json) vs main" in shown
        assert "0.8761" in shown and "0.8859" in shown and "-0.0098" in shown
        assert panel.redraws >= 2  # the DVC plot was drawn


async def test_dvclive_points_replace_the_dvc_plots_and_a_new_model_run_starts_afresh() -> None:
    app = Host()
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(MetricsPanel)
        panel.on_engine_event(DVC)
        panel.on_engine_event(TierStarted(1, Tier.MODEL, 1))
        for step in range(5):
            panel.on_engine_event(MetricPoint(LIVE, "loss", step, 1.0 / (step + 1), 0))
        panel.flush()
        await pilot.pause()
        assert text(app, "#metrics-status") == "DVCLive · 1 metrics · 5 points"
        panel.on_engine_event(TierStarted(2, Tier.MODEL, 2))
        panel.on_engine_event(MetricPoint(LIVE, "loss", 0, 0.9, 0))
        panel.flush()
        await pilot.pause()
        assert panel.series("loss") == [(0, 0.9)]  # not the last run's five steps


async def test_a_gate_report_takes_the_table_over_from_the_dvc_metrics() -> None:
    report = GateReport(
        (GateResult("performance", "accuracy >= 0.8659", True, 0.8761, 0.8659, "ok", metric="accuracy"),),
        baseline="dvclive/metrics.json on main",
        at=0.0,
    )
    app = Host()
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(MetricsPanel)
        panel.on_engine_event(DVC)
        panel.on_engine_event(report)
        await pilot.pause()
        shown = comparison(app)
        assert "candidate vs dvclive/metrics.json on main" in shown
