"""The whole dashboard, fed a scripted engine event stream: what a user sees during a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import (
    GateReport,
    GateResult,
    GitState,
    GpuSample,
    MetricPoint,
    OutputLines,
    PlanMade,
    TestOutcome,
    TestResult,
    Tier,
    TierFinished,
    TierStale,
    TierStarted,
    Trigger,
    Verdict,
)
from mlci.engine.telemetry.gpu.recorded import load_recording
from mlci.tui.app import EngineEvent, MlciApp
from mlci.tui.components.failures_panel import FailuresPanel
from mlci.tui.components.output_log import OutputLog
from mlci.tui.components.tier_panel import TierPanel

GPU_RECORDINGS = Path(__file__).resolve().parent.parent / "data" / "gpu"

FAILURE = (
    "def test_income_is_scaled():\n"
    ">       assert scale(income) == pytest.approx(1.0)\n"
    "E       assert 0.5 == 1.0 ± 1.0e-06"
)


def script() -> list[object]:
    """A change to features.py: code tier fails, model tier trains and reaches the gates."""
    return [
        GitState(
            branch="feature/scaling",
            head="1a2b3c4d",
            upstream="origin/feature/scaling",
            ahead=2,
            dirty=("src/credit/features.py",),
        ),
        PlanMade(
            plan_id=1,
            tiers=(Tier.CODE, Tier.MODEL),
            triggers=(
                Trigger(Tier.CODE, "src/**/*.py", ("src/credit/features.py",)),
                Trigger(Tier.MODEL, "dependency of stage train", ("src/credit/features.py",)),
            ),
            stages=("train", "evaluate"),
            at=0.0,
        ),
        TierStarted(run_id=1, tier=Tier.CODE, plan_id=1, command=("pytest", "tests/unit"), at=0.0),
        OutputLines(Tier.CODE, 1, ("tests/unit/test_features.py .F.", "tests/unit/test_model.py ....")),
        TestResult(
            Tier.CODE, 1, "tests/unit/test_features.py::test_income_is_scaled", TestOutcome.FAILED, 0.01, FAILURE
        ),
        TierFinished(run_id=1, tier=Tier.CODE, verdict=Verdict.FAILED, duration_s=3.2, passed=35, failed=1, at=0.0),
        TierStarted(
            run_id=2,
            tier=Tier.MODEL,
            plan_id=1,
            command=("dvc", "repro", "train", "evaluate"),
            mlflow_run_id="run42",
            at=0.0,
        ),
        *[
            MetricPoint("run42", key, step, value, 0)
            for step in range(8)
            for key, value in (("val_auc", 0.90 + step * 0.009), ("val_loss", 0.40 - step * 0.03))
        ],
        TierStale(Tier.MODEL, 2, 1),
        GateReport(
            results=(
                GateResult(
                    "performance",
                    "accuracy >= 0.88",
                    True,
                    0.919,
                    0.88,
                    "accuracy 0.9190 >= 0.8800",
                    metric="accuracy",
                    baseline=0.918,
                ),
                GateResult(
                    "regression",
                    "auc_roc vs champion",
                    False,
                    0.951,
                    0.964,
                    "auc_roc 0.9510 is 0.0230 below champion 0.9740 (max 0.0100)",
                    metric="auc_roc",
                    baseline=0.974,
                ),
                GateResult("latency", "p99_ms <= 50", True, 1.2, 50.0, "p99 1.20 ms <= 50 ms"),
            ),
            model_uri="models/model",
            baseline="champion v1",
            at=0.0,
        ),
    ]


def dashboard(tmp_path: Path) -> MlciApp:
    root = tmp_path / "credit"
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "data").mkdir()
    (root / "dvc.yaml").write_text("stages: {}\n")
    # The real app, with no engine: the test posts the events the engine would.
    return MlciApp(load_config(root), start_engine=False)


async def play(app: MlciApp, pilot, events: list[object]) -> None:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()
    for event in events:
        app.post_message(EngineEvent(event))  # type: ignore[arg-type]
    gpu: list[GpuSample] = load_recording(GPU_RECORDINGS / "h200_training.jsonl")
    app.post_message(EngineEvent(gpu[-1]))
    await pilot.pause(0.5)


async def test_a_failing_code_tier_names_the_test_and_shows_its_failure(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await play(app, pilot, script())
        code = app.query_one(TierPanel).row(Tier.CODE)
        assert code is not None and code.status == "failed" and code.counts == "35 passed, 1 failed"
        assert code.trigger == "src/**/*.py: src/credit/features.py"
        model = app.query_one(TierPanel).row(Tier.MODEL)
        assert model is not None and model.status == "running" and model.stale == 1
        failures = app.query_one(FailuresPanel)
        assert failures.border_title == "Failing tests (1)"
        shown = failures.text.plain
        assert "tests/unit/test_features.py::test_income_is_scaled" in shown
        assert "assert 0.5 == 1.0" in shown
        log = app.query_one(OutputLog)
        assert any("test_features.py .F." in line.text for line in log.lines)
        assert log.border_title == "Output · model running"


async def test_a_rerun_clears_the_tiers_old_failures(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await play(
            app,
            pilot,
            [
                *script()[:6],
                TierStarted(run_id=3, tier=Tier.CODE, plan_id=2),
                TierFinished(run_id=3, tier=Tier.CODE, verdict=Verdict.PASSED, duration_s=2.9, passed=36),
            ],
        )
        assert app.query_one(FailuresPanel).border_title == "Failing tests"
        code = app.query_one(TierPanel).row(Tier.CODE)
        assert code is not None and code.status == "passed"


async def test_keys_without_an_engine_say_so_and_the_app_keeps_going(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        assert any("still starting" in str(n.message) for n in app._notifications)
        await pilot.press("q")


@pytest.mark.parametrize("width", [100, 120, 149, 150, 160, 220])
async def test_every_column_stays_on_screen_with_long_output(tmp_path: Path, width: int) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(width, 40)) as pilot:
        await play(app, pilot, [*script(), OutputLines(Tier.MODEL, 2, ("x" * 400,))])
        for column in ("#left", "#center", "#right"):
            region = app.query_one(column).region
            assert region.width > 0 and region.right <= width, f"{column} at {region} off a {width}-wide screen"
