"""Run history: what `mlci why` reads back, from real runs and from concurrent writers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import (
    GateReport,
    GateResult,
    PlanMade,
    TestOutcome,
    TestResult,
    Tier,
    TierFinished,
    TierStarted,
    Trigger,
    Verdict,
)
from mlci.engine.loop.history import HISTORY_FILE, History, read_last_plans
from mlci.engine.loop.session import Session

from tests.loop_projects import EventLog, git, make_project

pytestmark = pytest.mark.usefixtures("only_testmon")


def test_a_run_is_recorded_with_its_plan_verdicts_and_failing_tests(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        tests={
            "tests/unit/test_u.py": "def test_ok():\n    pass\n\ndef test_broken():\n    assert 2 < 1, 'nope'\n",
            "tests/data/test_d.py": "def test_d():\n    pass\n",
        },
        config="tiers:\n  code:\n    tests: [tests/unit]\n  data:\n    tests: [tests/data]\n",
    )
    session = Session(load_config(root), emit=EventLog(), watch=False)
    session.start()
    try:
        session.request(reason="pressed r")
        assert session.wait_idle(120)
    finally:
        session.stop()
    (plan,) = read_last_plans(root)
    assert plan.tiers == ("code", "data")
    assert [(t.tier, t.rule) for t in plan.triggers] == [(Tier.CODE, "pressed r"), (Tier.DATA, "pressed r")]
    code, data = plan.runs
    assert (code.tier, code.verdict, code.passed, code.failed) == ("code", "failed", 1, 1)
    assert code.failed_tests == ("tests/unit/test_u.py::test_broken",)
    assert code.duration_s is not None and code.duration_s > 0
    assert (data.tier, data.verdict, data.reason) == ("data", "held", "held: code tier is red")
    with sqlite3.connect(root / HISTORY_FILE) as conn:
        (longrepr,) = conn.execute("SELECT longrepr FROM test_results WHERE outcome='failed'").fetchone()
        assert "nope" in longrepr
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    # The history never shows up as a change in the user's repository.
    assert git(root, "status", "--porcelain") == ""


def _run(history: History, plan_id: int, run_id: int, tier: Tier, verdict: Verdict, failed: str = "") -> None:
    history.record(PlanMade(plan_id, (tier,), (Trigger(tier, f"rule {plan_id}", ("a.py",)),), changed=("a.py",)))
    history.record(TierStarted(run_id, tier, plan_id, command=("pytest",)))
    if failed:
        history.record(TestResult(tier, run_id, failed, TestOutcome.FAILED, 0.1, "E boom"))
    history.record(TierFinished(run_id, tier, verdict, 1.5, failed=int(bool(failed)), plan_id=plan_id))


def test_two_writers_at_once_keep_their_plans_apart(tmp_path: Path) -> None:
    first, second = History(tmp_path), History(tmp_path)
    _run(first, 1, 1, Tier.CODE, Verdict.FAILED, failed="t.py::one")
    _run(second, 1, 1, Tier.CODE, Verdict.PASSED)
    _run(first, 2, 2, Tier.CODE, Verdict.PASSED)
    first.close()
    second.close()
    newest, middle, oldest = read_last_plans(tmp_path)
    assert [p.triggers[0].rule for p in (newest, middle, oldest)] == ["rule 2", "rule 1", "rule 1"]
    assert [r.verdict for r in oldest.runs] == ["failed"]
    assert oldest.runs[0].failed_tests == ("t.py::one",)
    assert [r.verdict for r in middle.runs] == ["passed"]
    assert len(read_last_plans(tmp_path, limit=1)) == 1


def test_a_gate_report_belongs_to_the_model_run(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.record(TierStarted(4, Tier.MODEL, 9, mlflow_run_id="abc"))
    report = GateReport((GateResult("performance", "accuracy >= 0.9", False, 0.81, 0.9, "accuracy 0.81 < 0.9"),))
    history.record(report)
    history.record(TierFinished(4, Tier.MODEL, Verdict.FAILED, 30.0, plan_id=9))
    history.close()
    with sqlite3.connect(tmp_path / HISTORY_FILE) as conn:
        row = conn.execute(
            "SELECT r.tier, r.mlflow_run_id, g.passed, g.results FROM gate_reports g "
            "JOIN tier_runs r ON r.id = g.tier_run"
        ).fetchone()
    tier, mlflow_run_id, passed, results = row
    assert (tier, mlflow_run_id, passed) == ("model", "abc", 0)
    assert json.loads(results)[0]["reason"] == "accuracy 0.81 < 0.9"


def mlci(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )


def test_mlci_why_shows_the_last_plans_and_their_reasons(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests={"tests/test_x.py": "def test_x():\n    pass\n"})
    empty = mlci("why", cwd=root)
    assert empty.returncode == 0 and empty.stdout.startswith("no runs yet")
    history = History(root)
    _run(history, 1, 1, Tier.CODE, Verdict.FAILED, failed="tests/test_x.py::test_x")
    _run(history, 2, 2, Tier.CODE, Verdict.PASSED)
    history.close()
    shown = mlci("why", "-n", "1", cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert "plan #2" in shown.stdout and "plan #1" not in shown.stdout
    assert "why   code <- rule 2: a.py" in shown.stdout
    both = mlci("why", str(root), cwd=tmp_path)
    assert "failed tests/test_x.py::test_x" in both.stdout
    data = json.loads(mlci("why", "--json", cwd=root).stdout)
    assert [p["plan_id"] for p in data] == [2, 1]
    assert data[1]["runs"][0]["failed_tests"] == ["tests/test_x.py::test_x"]


def test_a_proof_is_recalled_by_its_content_key_and_survives_a_writer(tmp_path: Path) -> None:
    from mlci.engine.loop.history import recall_proof, remember_proof
    from mlci.engine.loop.proof import content_key

    root = make_project(tmp_path / "p", tests={"tests/test_a.py": "def test_a():\n    pass\n"})
    sha = git(root, "rev-parse", "HEAD").strip()
    config = load_config(root)
    key = content_key(config, sha, full=False)
    assert recall_proof(root, key.digest) is None  # no history yet: nothing proven, nothing created
    assert not (root / HISTORY_FILE).exists()

    History(root).close()  # a watch session's history, before any proof
    remember_proof(root, key, sha)
    proof = recall_proof(root, key.digest)
    assert proof is not None and proof.sha == sha
    assert dict(key.parts)["tree"] == git(root, "rev-parse", "HEAD^{tree}").strip()
    # Quick and full training are different proofs; so is another commit's tree.
    assert recall_proof(root, content_key(config, sha, full=True).digest) is None
    (root / "tests" / "test_a.py").write_text("def test_a():\n    assert True\n")
    git(root, "commit", "-qam", "another tree")
    other = content_key(config, git(root, "rev-parse", "HEAD").strip(), full=False)
    assert other.digest != key.digest and recall_proof(root, other.digest) is None
    assert not git(root, "status", "--porcelain").strip()  # .mlci/ keeps itself out of git's sight


def test_an_older_history_without_proofs_proves_nothing(tmp_path: Path) -> None:
    from mlci.engine.loop.history import recall_proof

    (tmp_path / ".mlci").mkdir()
    with sqlite3.connect(tmp_path / HISTORY_FILE) as conn:
        conn.execute("CREATE TABLE plans (id INTEGER PRIMARY KEY)")
    assert recall_proof(tmp_path, "0" * 64) is None
