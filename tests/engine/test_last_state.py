"""The last known state: what earlier sessions left in the history, read back as events when mlci opens."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import (
    Event,
    GateReport,
    GateResult,
    LastGateReport,
    LastVerdict,
    Notice,
    Tier,
    TierFinished,
    TierStarted,
    Verdict,
)
from mlci.engine.loop.history import HISTORY_FILE, History
from mlci.engine.loop.last_state import last_known_state

from tests.loop_projects import git, make_project, write

pytestmark = pytest.mark.usefixtures("only_testmon")

REPORT = GateReport(
    (
        GateResult("performance", "accuracy >= 0.9", True, 0.93, 0.9, "accuracy 0.93 >= 0.9", metric="accuracy"),
        GateResult(
            "regression",
            "accuracy vs champion",
            False,
            0.93,
            0.94,
            "0.01 below",
            metric="accuracy",
            baseline=0.95,
            interval_low=0.92,
            interval_high=0.94,
            confidence=0.95,
        ),
    ),
    model_uri="models/model.pkl",
    baseline="champion v2",
)


def _project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "proj",
        tests={"tests/test_ok.py": "def test_ok():\n    assert True\n"},
        config="tiers:\n  code:\n    tests: [tests]\n  model:\n    tests: [tests]\n",
    )


def _record_earlier_session(root: Path) -> None:
    """What a session that ran the code tier green and the model tier to its gates leaves behind."""
    history = History(root)
    try:
        history.record(TierStarted(1, Tier.CODE, plan_id=1))
        history.record(TierFinished(1, Tier.CODE, Verdict.PASSED, 1.5, passed=3))
        history.record(TierStarted(2, Tier.MODEL, plan_id=1))
        history.record(REPORT)
        history.record(TierFinished(2, Tier.MODEL, Verdict.FAILED, 40.0, reason="1 gate failed"))
    finally:
        history.close()


def _state(root: Path) -> list[Event]:
    events: list[Event] = []
    last_known_state(load_config(root), events.append)
    return events


def test_a_project_without_history_opens_on_nothing(tmp_path: Path) -> None:
    assert _state(_project(tmp_path)) == []


def test_the_last_verdicts_and_gate_report_come_back_with_their_commit(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _record_earlier_session(root)
    head = git(root, "rev-parse", "HEAD").strip()
    events = _state(root)
    verdicts = {e.tier: e for e in events if isinstance(e, LastVerdict)}
    assert verdicts[Tier.CODE].verdict is Verdict.PASSED and verdicts[Tier.CODE].passed == 3
    assert verdicts[Tier.MODEL].verdict is Verdict.FAILED and verdicts[Tier.MODEL].reason == "1 gate failed"
    assert all(v.git_commit == head and not v.stale for v in verdicts.values())
    (last_report,) = [e for e in events if isinstance(e, LastGateReport)]
    # The whole report, intervals included, as the model tier gave it.
    assert last_report.report == REPORT and last_report.git_commit == head and not last_report.stale


def test_an_edit_after_the_run_marks_every_verdict_stale(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _record_earlier_session(root)
    later = time.time() + 5
    write(root / "src" / "features.py", "X = 1\n")
    os.utime(root / "src" / "features.py", (later, later))
    events = _state(root)
    assert [e.stale for e in events if isinstance(e, LastVerdict | LastGateReport)] == [True, True, True]


def test_another_commit_marks_every_verdict_stale(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _record_earlier_session(root)
    write(root / "README.md", "more\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "more")
    events = _state(root)
    assert all(e.stale for e in events if isinstance(e, LastVerdict | LastGateReport))


def test_opening_on_a_git_project_without_dvc_leaves_nothing_in_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # what TMPDIR decides, for this process
    root = _project(tmp_path)  # a model tier, no MLflow, no DVC: the DVC metrics are looked for
    _record_earlier_session(root)
    assert {e.tier for e in _state(root) if isinstance(e, LastVerdict)} == {Tier.CODE, Tier.MODEL}
    assert sorted(p.name for p in temp.iterdir()) == []  # DVC cloned the whole repository here, each time


def test_a_cancelled_run_does_not_hide_the_verdict_before_it(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _record_earlier_session(root)
    history = History(root)
    try:
        history.record(TierStarted(3, Tier.CODE, plan_id=2))
        history.record(TierFinished(3, Tier.CODE, Verdict.CANCELLED, 0.2))
    finally:
        history.close()
    verdicts = {e.tier: e for e in _state(root) if isinstance(e, LastVerdict)}
    assert verdicts[Tier.CODE].verdict is Verdict.PASSED


def test_a_history_from_an_older_mlci_still_opens(tmp_path: Path) -> None:
    """A version-1 history has no commit and no whole report: the verdicts come back, marked stale."""
    root = _project(tmp_path)
    path = root / HISTORY_FILE
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE tier_runs (id INTEGER PRIMARY KEY, session TEXT, run_id INTEGER, plan_id INTEGER,"
            " tier TEXT, command TEXT DEFAULT '[]', full INTEGER DEFAULT 0, mlflow_run_id TEXT DEFAULT '',"
            " started REAL, finished REAL, verdict TEXT, duration REAL, passed INTEGER DEFAULT 0,"
            " failed INTEGER DEFAULT 0, reason TEXT DEFAULT '');"
            "INSERT INTO tier_runs (session, run_id, plan_id, tier, started, finished, verdict, duration, passed)"
            " VALUES ('old', 1, 1, 'code', 1.0, 2.0, 'passed', 1.0, 4);"
        )
    for _ in range(2):  # read as it is, then after this mlci's History added its columns
        events = _state(root)
        (verdict,) = [e for e in events if isinstance(e, LastVerdict)]
        assert verdict.passed == 4 and verdict.stale
        assert not [e for e in events if isinstance(e, Notice)]
        History(root).close()


_STATE_IN_A_FRESH_INTERPRETER = """
import json, math, sys
from mlci.engine.config.loader import load_config
from mlci.engine.events import MetricPoint, ReferenceRun
from mlci.engine.loop.last_state import last_known_state

events = []
last_known_state(load_config(sys.argv[1]), events.append)
points = [[e.mlflow_run_id, e.key, e.step, None if math.isnan(e.value) else e.value] for e in events
          if isinstance(e, MetricPoint)]
references = [[e.mlflow_run_id, e.label] for e in events if isinstance(e, ReferenceRun)]
print(json.dumps({"points": points, "references": references, "mlflow": "mlflow" in sys.modules}))
"""


def test_the_last_training_and_the_champions_curves_come_back_from_sqlite_without_loading_mlflow(
    tmp_path: Path,
) -> None:
    """The dashboard opens on both curves, as MLflow's client reads them, without paying for MLflow's import."""
    import json
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    root = make_project(
        tmp_path / "proj",
        tests={"tests/test_ok.py": "def test_ok():\n    assert True\n"},
        config=(
            "tiers:\n  code:\n    tests: [tests]\n  model:\n    tests: [tests]\n"
            "mlflow:\n  tracking_uri: sqlite:///mlflow.db\n  model_name: credit\n"
        ),
    )
    client = MlflowClient(tracking_uri=f"sqlite:///{(root / 'mlflow.db').as_posix()}")
    experiment = client.create_experiment("mlci")
    champion = client.create_run(experiment).info.run_id
    training = client.create_run(experiment).info.run_id
    for step in range(3):
        client.log_metric(champion, "val_loss", 0.5 / (step + 1), step=step)
        client.log_metric(training, "val_loss", 0.6 / (step + 1), step=step)
    client.log_metric(training, "val_loss", float("nan"), step=3)  # a diverged epoch stays one
    client.log_metric(training, "val_accuracy", 0.81, step=0)
    client.create_registered_model("credit")
    version = client.create_model_version("credit", (tmp_path / "model").as_uri(), run_id=champion)
    client.set_registered_model_alias("credit", "champion", version.version)
    history = History(root)
    try:
        history.record(TierStarted(1, Tier.MODEL, plan_id=1, mlflow_run_id=training))
        history.record(TierFinished(1, Tier.MODEL, Verdict.PASSED, 30.0))
    finally:
        history.close()

    shown = subprocess.run(
        [sys.executable, "-c", _STATE_IN_A_FRESH_INTERPRETER, str(root)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )
    state = json.loads(shown.stdout)
    expected = [
        [run, m.key, m.step, None if m.value != m.value else m.value]
        for run in (training, champion)
        for key in ("val_accuracy", "val_loss")
        for m in sorted(client.get_metric_history(run, key), key=lambda m: (m.timestamp, m.step))
    ]
    assert sorted(state["points"], key=str) == sorted(expected, key=str)
    assert [training, "val_loss", 3, None] in state["points"]
    assert state["references"] == [[champion, "champion"]]
    assert state["mlflow"] is False
