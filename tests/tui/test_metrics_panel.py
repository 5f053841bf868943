"""The metrics panel: live curves from MetricPoints (throttled), the tracking-store notice, candidate vs baseline."""

from __future__ import annotations

import io

from mlci.engine.events import GateReport, GateResult, MetricPoint, Notice, Tier, TierStarted
from mlci.tui.components.metrics_panel import MetricsPanel, comparison_rows
from rich.console import Console
from textual.app import App, ComposeResult
from textual.widgets import Static

from tests.pilot_wait import until

RUN = "0123456789abcdef0123456789abcdef"

REPORT = GateReport(
    (
        GateResult("performance", "accuracy >= 0.8800", True, 0.919, 0.88, "ok", metric="accuracy"),
        GateResult("performance", "f1_score >= 0.8400", True, 0.8757, 0.84, "ok", metric="f1_score"),
        GateResult(
            "regression",
            "accuracy drop vs baseline <= 0.0100",
            False,
            0.89,
            0.909,
            "worse",
            metric="accuracy",
            baseline=0.919,
        ),
        GateResult(
            "regression",
            "f1_score drop vs baseline <= 0.0100",
            True,
            0.8757,
            0.8657,
            "ok",
            metric="f1_score",
            baseline=0.8757,
        ),
        GateResult("size", "model size <= 50 MB", True, 0.05, 50.0, "ok"),
    ),
    model_uri="models/model",
    baseline="champion v1 of credit-default",
    at=0.0,
)


def epochs(count: int, start: int = 1) -> list[MetricPoint]:
    points = []
    for step in range(start, start + count):
        points.append(MetricPoint(RUN, "train_loss", step, 0.7 / step, 0))
        points.append(MetricPoint(RUN, "val_loss", step, 0.6 / step + 0.05, 0))
        points.append(MetricPoint(RUN, "val_accuracy", step, 0.95 - 0.2 / step, 0))
    return points


class MetricsHost(App[None]):
    def __init__(self, events: list[object]) -> None:
        super().__init__()
        self.events = events

    def compose(self) -> ComposeResult:
        yield MetricsPanel()

    def on_mount(self) -> None:
        panel = self.query_one(MetricsPanel)
        for event in self.events:
            panel.on_engine_event(event)  # type: ignore[arg-type]
        panel.flush()


def status(app: App[None]) -> str:
    return str(app.query_one("#metrics-status").render())


async def test_points_become_curves_and_a_new_run_starts_afresh() -> None:
    app = MetricsHost([TierStarted(1, Tier.MODEL, 1, mlflow_run_id=RUN), *epochs(3)])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        panel = app.query_one(MetricsPanel)
        assert panel.series("train_loss") == [(1, 0.7), (2, 0.35), (3, 0.7 / 3)]
        assert status(app) == "MLflow run 01234567 · 3 metrics · 9 points"
        for point in epochs(2, start=4):
            panel.on_engine_event(point)
        await until(pilot, lambda: status(app).endswith("15 points"))  # the redraw timer picks them up
        assert [s for s, _ in panel.series("val_accuracy")] == [1, 2, 3, 4, 5]
        assert status(app).endswith("15 points")
        panel.on_engine_event(TierStarted(2, Tier.MODEL, 2, mlflow_run_id="f" * 32))
        panel.flush()
        assert panel.series("train_loss") == []
        assert status(app) == "MLflow run ffffffff · 0 metrics · 0 points"


async def test_many_points_are_drawn_a_few_times_a_second_at_most() -> None:
    app = MetricsHost([])
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(MetricsPanel)
        before = panel.redraws
        for point in epochs(300):  # 900 points in one burst
            panel.add_point(point)
        assert panel.redraws == before  # buffered, not drawn per point
        await until(pilot, lambda: panel.redraws > before)
        assert 1 <= panel.redraws - before <= 4
        assert len(panel.series("train_loss")) == 300


async def test_an_unreachable_store_is_said_on_the_panel_and_cleared_when_it_is_back() -> None:
    app = MetricsHost([TierStarted(1, Tier.MODEL, 1, mlflow_run_id=RUN)])
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(MetricsPanel)
        panel.on_engine_event(
            Notice("warning", "MLflow tracking store unreachable: cannot connect to 127.0.0.1:5000", "metrics")
        )
        await pilot.pause()
        assert status(app) == "⚠ MLflow tracking store unreachable: cannot connect to 127.0.0.1:5000"
        panel.on_engine_event(Notice("warning", "polling fallback", "watch"))  # not this panel's
        panel.on_engine_event(Notice("info", "MLflow tracking store reachable again", "metrics"))
        await pilot.pause()
        assert status(app).startswith("MLflow run 01234567")


def test_comparison_rows_pair_candidate_and_baseline() -> None:
    rows = comparison_rows(REPORT)
    assert [(r.metric, r.candidate, r.baseline, r.passed) for r in rows] == [
        ("accuracy", 0.89, 0.919, False),
        ("f1_score", 0.8757, 0.8757, True),
    ]
    assert rows[0].delta is not None and round(rows[0].delta, 4) == -0.029


async def test_the_comparison_table_shows_deltas() -> None:
    app = MetricsHost([REPORT])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        console = Console(width=100, record=True, file=io.StringIO())
        console.print(app.query_one("#metrics-comparison", Static).content)
        lines = [line.split() for line in console.export_text().splitlines() if line.strip()]
        assert lines[0] == ["candidate", "vs", "champion", "v1", "of", "credit-default"]
        assert lines[1:] == [
            ["metric", "candidate", "baseline", "delta"],
            ["accuracy", "0.8900", "0.9190", "-0.0290"],
            ["f1_score", "0.8757", "0.8757", "+0.0000"],
        ]


def _snapshot_app() -> MetricsHost:
    return MetricsHost([TierStarted(1, Tier.MODEL, 1, mlflow_run_id=RUN), *epochs(12), REPORT])


def test_snapshot_curves_and_comparison_narrow(snap_compare) -> None:
    assert snap_compare(_snapshot_app(), terminal_size=(80, 30))


def test_snapshot_curves_and_comparison_wide(snap_compare) -> None:
    assert snap_compare(_snapshot_app(), terminal_size=(160, 40))
