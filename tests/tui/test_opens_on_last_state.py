"""The dashboard opens on the last known state: earlier verdicts, gate report and curves, marked stale when due."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from mlci.engine.events import (
    ChangeDetected,
    LastGateReport,
    LastVerdict,
    MetricPoint,
    PlanMade,
    ReferenceRun,
    Tier,
    TierFinished,
    TierStarted,
    Trigger,
    Verdict,
)
from mlci.tui.app import EngineEvent
from mlci.tui.components.gates_panel import GatesPanel
from mlci.tui.components.metrics_panel import MetricsPanel
from mlci.tui.components.tier_panel import TierPanel
from textual.widgets import Static

from tests.engine.test_last_state import REPORT
from tests.tui.test_dashboard import dashboard

COMMIT = "1a2b3c4d5e6f7a8b9c0d"
HOURS_AGO = time.time() - 3 * 3600


def _earlier(stale: bool = False) -> list[object]:
    return [
        LastVerdict(Tier.CODE, Verdict.PASSED, HOURS_AGO, 2.5, passed=36, git_commit=COMMIT, stale=stale),
        LastVerdict(Tier.MODEL, Verdict.FAILED, HOURS_AGO, 41.0, reason="1 gate failed", git_commit=COMMIT),
        LastGateReport(replace(REPORT, at=HOURS_AGO), COMMIT, stale=stale),
        *[MetricPoint("run-last", "val_auc", step, 0.8 + step / 100) for step in range(5)],
        ReferenceRun("run-champion", "champion"),
        *[MetricPoint("run-champion", "val_auc", step, 0.82 + step / 100) for step in range(5)],
    ]


async def _play(app, pilot, events: list[object]) -> None:  # type: ignore[no-untyped-def]
    for event in events:
        app.post_message(EngineEvent(event))  # type: ignore[arg-type]
    await pilot.pause(0.5)


async def test_earlier_verdicts_show_with_their_age_and_commit(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await _play(app, pilot, _earlier())
        code = app.query_one(TierPanel).row(Tier.CODE)
        assert code is not None and code.status == "passed" and code.counts == "36 passed, 0 failed"
        assert code.earlier == "passed 3 h ago on 1a2b3c4d" and not code.earlier_stale
        data = app.query_one(TierPanel).row(Tier.DATA)
        assert data is not None and data.status == "idle"
        gates = app.query_one(GatesPanel)
        assert gates.report == replace(REPORT, at=HOURS_AGO)
        judged = str(gates.query_one("#gates-judged", Static).render())
        assert "judged 3 h ago on 1a2b3c4d" in judged and "stale" not in judged
        metrics = app.query_one(MetricsPanel)
        assert metrics.run_id == "run-last" and len(metrics.series("val_auc")) == 5


async def test_a_stale_earlier_verdict_says_so(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await _play(app, pilot, _earlier(stale=True))
        code = app.query_one(TierPanel).row(Tier.CODE)
        assert code is not None and code.earlier_stale
        assert "stale: the tree changed since" in app.query_one(TierPanel).render().plain  # type: ignore[union-attr]
        assert app.query_one(GatesPanel).stale


async def test_an_edit_marks_the_gates_stale_until_the_model_tier_judges_again(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await _play(app, pilot, _earlier())
        gates = app.query_one(GatesPanel)
        assert not gates.stale
        change = ChangeDetected(("src/credit/features.py",))
        plan = PlanMade(1, (Tier.CODE, Tier.MODEL), (Trigger(Tier.MODEL, "dependency of stage train"),))
        await _play(app, pilot, [change, plan])
        assert gates.stale
        assert "these gates judged an older model" in str(gates.query_one("#gates-judged", Static).render())
        # The code tier's own verdict replaces the earlier one.
        await _play(
            app,
            pilot,
            [TierStarted(1, Tier.CODE, plan_id=1), TierFinished(1, Tier.CODE, Verdict.FAILED, 2.0, failed=1)],
        )
        code = app.query_one(TierPanel).row(Tier.CODE)
        assert code is not None and code.status == "failed" and code.earlier == ""
        await _play(app, pilot, [REPORT])
        assert not gates.stale


async def test_a_run_already_started_keeps_running_and_says_what_came_before(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await _play(app, pilot, [TierStarted(1, Tier.CODE, plan_id=1), *_earlier()])
        code = app.query_one(TierPanel).row(Tier.CODE)
        assert code is not None and code.status == "running" and code.earlier.startswith("passed 3 h ago")
