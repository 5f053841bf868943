"""The gates panel: failing gates first with both numbers, details on a key, promotion after a confirmation."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlci.engine.events import GateReport, GateResult
from mlci.tui.components.gates_panel import GatesPanel, ordered
from mlci.tui.screens.gate_details_screen import GateDetailsScreen
from mlci.tui.screens.promote_confirm_screen import PromoteConfirmScreen
from textual.app import App, ComposeResult
from textual.widgets import DataTable

REPORT = GateReport(
    (
        GateResult(
            "performance",
            "accuracy >= 0.9500",
            False,
            0.919,
            0.95,
            "accuracy 0.9190 < 0.9500 (metrics.json)",
            metric="accuracy",
        ),
        GateResult(
            "performance", "f1_score >= 0.8400", True, 0.8757, 0.84, "f1_score 0.8757 >= 0.8400", metric="f1_score"
        ),
        GateResult("latency", "p99_ms <= 50 ms", True, 1.43, 50.0, "p99 1.43 ms <= 50 ms"),
        GateResult("size", "model size <= 50 MB", True, 0.054, 50.0, "models/model is 0.054 MB <= 50 MB"),
        GateResult(
            "behavioral",
            "pass rate >= 1.00",
            False,
            0.9375,
            1.0,
            "15 of 16 cases pass: rate 0.94 < 1.00; failing: rows 3",
            ("row 3: age=25, income=52000.0 -> expected 0, got 1",),
        ),
    ),
    model_uri="models/model",
    baseline="champion v1 of credit-default",
    at=0.0,
)


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The panel says how long ago a report was judged: two hours after these reports' `at=0.0`, always."""
    from types import SimpleNamespace

    monkeypatch.setattr("mlci.tui.components.ages.time", SimpleNamespace(time=lambda: 2 * 3600.0))


class GatesHost(App[None]):
    def __init__(self, report: GateReport | None, config: object = None) -> None:
        super().__init__()
        self.report = report
        self.config = config

    def compose(self) -> ComposeResult:
        yield GatesPanel(self.config)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        if self.report is not None:
            self.query_one(GatesPanel).on_engine_event(self.report)
        self.query_one(DataTable).focus()


def table_rows(app: App[None]) -> list[list[str]]:
    table = app.query_one(DataTable)
    return [[str(getattr(c, "plain", c)) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_failing_gates_come_first_with_value_and_threshold() -> None:
    app = GatesHost(REPORT)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert table_rows(app) == [
            ["✗", "performance", "accuracy >= 0.9500", "0.9190", "0.9500"],
            ["✗", "behavioral", "pass rate >= 1.00", "0.9375", "1.0000"],
            ["✓", "performance", "f1_score >= 0.8400", "0.8757", "0.8400"],
            ["✓", "latency", "p99_ms <= 50 ms", "1.43 ms", "50.00 ms"],
            ["✓", "size", "model size <= 50 MB", "0.054 MB", "50.000 MB"],
        ]
        summary = str(app.query_one("#gates-summary").render())
        assert summary == "✗ 2 of 5 gates fail  · baseline champion v1 of credit-default"


async def test_details_open_on_enter_and_d_and_close_on_escape() -> None:
    app = GatesHost(REPORT)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        assert isinstance(app.screen, GateDetailsScreen)
        assert app.screen.result.gate == "behavioral"
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "15 of 16 cases pass" in text and "row 3: age=25, income=52000.0 -> expected 0, got 1" in text
        assert "value 0.9375    threshold 1.0000" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, GateDetailsScreen)
        await pilot.press("up", "g")
        assert isinstance(app.screen, GateDetailsScreen) and app.screen.result.check == "accuracy >= 0.9500"


async def test_before_any_report_the_panel_says_so() -> None:
    app = GatesHost(None)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert "no gate report yet" in str(app.query_one("#gates-summary").render())
        await pilot.press("g")
        assert not isinstance(app.screen, GateDetailsScreen)


def test_order_is_failing_first_then_file_order() -> None:
    assert [r.check for r in ordered(REPORT)][:2] == ["accuracy >= 0.9500", "pass rate >= 1.00"]


@pytest.fixture
def registry_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from mlci.engine.config.loader import load_config
    from mlci.engine.gates.registry import register_challenger

    from tests.gate_projects import build_gate_project, register_champion

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = build_gate_project(tmp_path / "proj")
    register_champion(root)
    register_challenger(load_config(root), root / "models" / "model", report=GateReport((REPORT.results[1],)))
    return root


async def test_promote_asks_first_and_moves_champion_on_yes(registry_project: Path) -> None:
    from mlci.engine.config.loader import load_config
    from mlci.engine.gates.registry import alias_state

    config = load_config(registry_project)
    app = GatesHost(REPORT, config)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("P")
        await _wait_for(pilot, lambda: isinstance(app.screen, PromoteConfirmScreen))
        assert app.screen.question == "Move tiny's champion from v1 to v2 (the challenger)?"
        await pilot.press("n")
        await pilot.pause()
        assert alias_state(config).champion == "1"
        await pilot.press("P")
        await _wait_for(pilot, lambda: isinstance(app.screen, PromoteConfirmScreen))
        await pilot.press("y")
        await _wait_for(pilot, lambda: alias_state(config).champion == "2")
        await _wait_for(pilot, lambda: any("champion moved from v1 to v2" in n.message for n in app._notifications))


async def _wait_for(pilot: object, condition: object, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await pilot.pause(0.1)  # type: ignore[attr-defined]


def test_snapshot_gates_narrow(snap_compare) -> None:
    assert snap_compare(GatesHost(REPORT), terminal_size=(80, 24))


def test_snapshot_gates_wide(snap_compare) -> None:
    assert snap_compare(GatesHost(REPORT), terminal_size=(160, 40))


def test_snapshot_details_wide(snap_compare) -> None:
    assert snap_compare(GatesHost(REPORT), terminal_size=(160, 40), press=["down", "enter"])


NOISY = GateReport(
    (
        GateResult(
            "performance",
            "accuracy >= 0.9150",
            True,
            0.919,
            0.915,
            "accuracy 0.9190 >= 0.9150 (metrics.json); borderline: its 95% interval [0.9105, 0.9275] crosses 0.9150",
            metric="accuracy",
            interval_low=0.9105,
            interval_high=0.9275,
            confidence=0.95,
            borderline=True,
            interval_note="95% bootstrap interval, 1000 resamples of 4000 rows of data/prepared/test.csv",
        ),
        GateResult(
            "regression",
            "accuracy drop vs baseline <= 0.0100",
            False,
            0.9005,
            0.909,
            "accuracy 0.9005 vs 0.9190 (champion v1 of credit-default) on the same 4000 rows: -0.0185, "
            "95% interval [-0.0260, -0.0110] does not lie above -0.0100 (0.0100 allowed)",
            metric="accuracy",
            baseline=0.919,
            interval_low=0.893,
            interval_high=0.908,
            confidence=0.95,
            interval_note="paired: candidate - baseline on the same 4000 rows",
        ),
        GateResult(
            "performance",
            "f1_score >= 0.8400",
            True,
            0.8757,
            0.84,
            "f1_score 0.8757 >= 0.8400 (metrics.json)",
            metric="f1_score",
            interval_note="no rows to resample: f1_score 0.8757 is read from metrics.json",
        ),
        GateResult("latency", "p99_ms <= 50 ms", True, 1.43, 50.0, "p99 1.43 ms <= 50 ms"),
    ),
    model_uri="models/model",
    baseline="champion v1 of credit-default",
    at=0.0,
)
"""A report with intervals: a borderline pass, a paired regression failing on its interval, a figure without rows."""


async def test_intervals_get_a_column_and_a_borderline_gate_is_marked_and_counted() -> None:
    app = GatesHost(NOISY)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert table_rows(app) == [
            ["✗", "regression", "accuracy drop vs baseline <= 0.0100", "0.9005", "0.9090", "[0.8930, 0.9080]"],
            ["≈", "performance", "accuracy >= 0.9150", "0.9190", "0.9150", "[0.9105, 0.9275] borderline"],
            ["✓", "performance", "f1_score >= 0.8400", "0.8757", "0.8400", "—"],
            ["✓", "latency", "p99_ms <= 50 ms", "1.43 ms", "50.00 ms", "—"],
        ]
        summary = str(app.query_one("#gates-summary").render())
        assert summary == "✗ 1 of 4 gates fail  · 1 borderline  · baseline champion v1 of credit-default"
        await pilot.press("down", "enter")
        assert isinstance(app.screen, GateDetailsScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "value 0.9190    threshold 0.9150    95% interval [0.9105, 0.9275]" in text
        assert "borderline: the value passes, but its interval crosses the threshold" in text
        assert "1000 resamples of 4000 rows" in text


async def test_a_report_from_before_intervals_keeps_its_five_columns() -> None:
    app = GatesHost(NOISY)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.query_one(GatesPanel).on_engine_event(REPORT)
        await pilot.pause()
        assert [len(row) for row in table_rows(app)] == [5] * len(REPORT.results)


def test_snapshot_borderline_narrow(snap_compare) -> None:
    assert snap_compare(GatesHost(NOISY), terminal_size=(80, 24))


def test_snapshot_borderline_wide(snap_compare) -> None:
    assert snap_compare(GatesHost(NOISY), terminal_size=(160, 40))


def test_snapshot_borderline_details_wide(snap_compare) -> None:
    assert snap_compare(GatesHost(NOISY), terminal_size=(160, 40), press=["down", "enter"])
