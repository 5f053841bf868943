"""DVCLive's files give live curves during the model tier, in a project with no MLflow (issue 12, item 4).

The project's stage logs as DVCLive does (`dvclive/metrics.json` and one
`dvclive/plots/metrics/<name>.tsv` per metric, rewritten each step). It holds before its last
step until the test has seen the earlier steps as MetricPoints: the curves are followed while
the tier runs, not read after it. Real git, DVC and pytest, through the session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import DVCLIVE_RUN_PREFIX, DvcMetrics, MetricPoint, Tier, TierFinished, Verdict
from mlci.engine.loop.session import Session
from mlci.engine.telemetry.dvclive_follower import DvcLiveFollower, dvclive_dirs

from tests.loop_projects import EventLog, is_finished
from tests.unprepared_projects import build_unprepared_project, mlci_env, porcelain, set_quality


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in mlci_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return build_unprepared_project(tmp_path / "project")


def _points(log: EventLog, key: str) -> dict[int, float]:
    return {e.step: e.value for e in log.snapshot() if isinstance(e, MetricPoint) and e.key == key}


def test_dvclive_files_give_live_curves_while_the_model_tier_runs(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = tmp_path / "go-on"
    monkeypatch.setenv("TRAIN_HOLD_FILE", str(hold))
    set_quality(project, 0.8)  # a change, so the tier reruns the stage and the curves are new
    log = EventLog()
    session = Session(load_config(project), emit=log, watch=False)
    session.start()
    try:
        session.request([Tier.MODEL], reason="test")
        # Steps 0-4 arrive while the stage waits before step 5: followed live.
        log.wait_for(lambda e: isinstance(e, MetricPoint) and e.key == "accuracy" and e.step == 4, timeout=300)
        assert not log.finished(Tier.MODEL)
        early = _points(log, "accuracy")
        assert sorted(early) == [0, 1, 2, 3, 4] and early[0] == 0.4
        points = [e for e in log.snapshot() if isinstance(e, MetricPoint)]
        assert {p.mlflow_run_id for p in points} == {f"{DVCLIVE_RUN_PREFIX}dvclive"}
        hold.touch()
        done = log.wait_for(is_finished(Tier.MODEL), timeout=300)
        assert isinstance(done, TierFinished) and done.verdict is Verdict.PASSED
        # The last step too, once, and the losses beside the accuracies.
        assert _points(log, "accuracy")[5] == 0.7875
        assert sorted(_points(log, "loss")) == [0, 1, 2, 3, 4, 5]
        steps = [(e.key, e.step) for e in log.snapshot() if isinstance(e, MetricPoint)]
        assert len(steps) == len(set(steps))
        # Then the project's DVC metrics again, as the stage left them, against main.
        after = log.wait_for(lambda e: isinstance(e, DvcMetrics), timeout=120)
        assert isinstance(after, DvcMetrics)
        accuracy = next(m for m in after.values if m.key == "accuracy")
        assert (accuracy.value, accuracy.old) == (0.7875, 0.8859)
    finally:
        session.stop()
    assert (
        porcelain(project) == " M dvc.lock\n M dvclive/metrics.json\n M dvclive/plots/metrics/accuracy.tsv\n"
        " M dvclive/plots/metrics/loss.tsv\n M params.yaml\n"
    )  # the stage's own outputs, and no more
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()


def test_the_previous_runs_files_are_not_taken_for_the_new_run(project: Path) -> None:
    log = EventLog()
    follower = DvcLiveFollower([project / "dvclive"], "r", log)
    assert follower.poll_once() == 0  # what the last run left is not this run's curve
    tsv = project / "dvclive" / "plots" / "metrics" / "loss.tsv"
    tsv.write_text("step\tloss\n0\t0.9\n")  # DVCLive starts the file afresh
    assert follower.poll_once() == 1
    tsv.write_text("step\tloss\n0\t0.9\n1\t0.7\n")
    assert follower.poll_once() == 1
    tsv.write_text("step\tloss\n0\t0.9\n1\t0.7\n2\t0.")  # caught mid-write: read again next poll
    assert follower.poll_once() == 0
    tsv.write_text("step\tloss\n0\t0.9\n1\t0.7\n2\t0.6\n")
    assert follower.poll_once() == 1
    assert [(e.step, e.value) for e in log.snapshot() if isinstance(e, MetricPoint)] == [(0, 0.9), (1, 0.7), (2, 0.6)]
    assert os.environ.get("MLFLOW_TRACKING_URI") is None


def test_dvclive_folders_anywhere_two_levels_deep_are_followed_each_under_its_name(tmp_path: Path) -> None:
    # DVC's example-get-started logs into results/train and results/evaluate.
    for folder in ("results/train", "eval"):
        plots = tmp_path / folder / "plots" / "metrics" / "train"
        plots.mkdir(parents=True)
        (tmp_path / folder / "metrics.json").write_text('{"step": 0}')
    (tmp_path / ".git" / "x" / "plots" / "metrics").mkdir(parents=True)
    dirs = dvclive_dirs(tmp_path)
    assert [d.relative_to(tmp_path).as_posix() for d in dirs] == ["eval", "results/train"]
    log = EventLog()
    follower = DvcLiveFollower(dirs, "r", log)
    (tmp_path / "results/train/plots/metrics/train/loss.tsv").write_text("timestamp\tstep\tloss\n1\t0\t0.5\n")
    (tmp_path / "eval/metrics.json").write_text('{"step": 3, "test": {"auc": 0.9}}')  # a summary-only metric
    assert follower.poll_once() == 2
    got = {(e.key, e.step, e.value) for e in log.snapshot() if isinstance(e, MetricPoint)}
    assert got == {("train/train/loss", 0, 0.5), ("eval/test/auc", 3, 0.9)}
