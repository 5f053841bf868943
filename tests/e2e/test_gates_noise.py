"""Gates that know their noise, on the demo sandbox: real models, real DVC retraining, the real MLflow store.

Every figure the gates compute on rows carries a bootstrap interval; the regression gate pairs
candidate and champion on the same rows; `confidence` makes a gate decide on its interval, and
a pass whose interval crosses the threshold is borderline.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.e2e.test_gates_e2e import WAIT_S, by_check, edit_yaml, gates_json, mlci, repro_quick
from tests.tmux import Tmux

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _own_store_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)


def with_confidence(root: Path, level: float = 0.95) -> None:
    edit_yaml(root / "model_gates.yaml", lambda g: g["regression"].update(confidence=level))


def retrain(env: dict[str, str], root: Path, change: Any) -> None:
    edit_yaml(root / "params.yaml", change)
    repro = repro_quick(env, root)
    out, _ = repro.communicate(timeout=WAIT_S)
    assert repro.returncode == 0, out


def regression(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in data["results"] if r["gate"] == "regression"]


def test_the_champion_against_itself_differs_by_exactly_zero_and_passes(
    sandbox: Path, tool_env: dict[str, str]
) -> None:
    with_confidence(sandbox)
    code, data = gates_json(tool_env, sandbox)
    assert code == 0, [r["reason"] for r in data["results"] if not r["passed"]]
    checks = regression(data)
    assert [r["metric"] for r in checks] == ["accuracy", "f1_score", "auc_roc"]
    for r in checks:
        assert r["passed"] and r["confidence"] == 0.95 and not r["borderline"]
        # The interval is the baseline plus the paired difference's: exactly [0, 0] for the same model.
        assert r["interval_low"] - r["baseline"] == 0.0 and r["interval_high"] - r["baseline"] == 0.0
        assert "+0.0000, 95% interval [+0.0000, +0.0000] lies above -0.0100" in r["reason"]
        assert r["interval_note"].startswith("paired: candidate - baseline on the same 4000 rows")
    # Every other figure computed on rows has its interval, as numbers.
    for gate in ("performance", "fairness", "behavioral"):
        for r in (r for r in data["results"] if r["gate"] == gate):
            assert isinstance(r["interval_low"], float) and isinstance(r["interval_high"], float), r
            assert r["confidence"] == 0.95 and r["interval_low"] <= r["interval_high"]
            # Around the value; a disparity (max - min of noisy groups) leans upwards, so only below it.
            assert r["interval_low"] <= r["value"] or gate == "fairness", r
            assert r["value"] <= r["interval_high"], r
    accuracy = by_check(data, "performance", "accuracy")
    assert accuracy["interval_note"].endswith("(the model scores metrics.json's figure there)")
    assert 0.005 < accuracy["interval_high"] - accuracy["interval_low"] < 0.03  # +- 2 standard errors on 4000 rows
    latency = by_check(data, "latency", "p99")
    assert latency["interval_low"] is None and latency["confidence"] is None  # a timing, not rows


def test_a_candidate_with_another_seed_gets_intervals_and_the_same_verdict_twice(
    sandbox: Path, tool_env: dict[str, str]
) -> None:
    retrain(tool_env, sandbox, lambda p: p["train"].update(seed=7))
    with_confidence(sandbox)
    first_code, first = gates_json(tool_env, sandbox)
    second_code, second = gates_json(tool_env, sandbox)
    assert first_code == second_code
    for a, b in zip(regression(first), regression(second), strict=True):
        assert a["interval_low"] is not None and a["interval_high"] is not None
        assert a["interval_low"] < a["interval_high"]  # a different model: the rows disagree somewhere
        same = ("passed", "interval_low", "interval_high", "reason")
        assert [a[k] for k in same] == [b[k] for k in same]


def test_a_model_trained_on_a_tenth_of_the_data_is_red_naming_interval_and_threshold(
    sandbox: Path, tool_env: dict[str, str]
) -> None:
    retrain(tool_env, sandbox, lambda p: p["train"]["quick"].update(subset=400))
    with_confidence(sandbox)
    proc = mlci(tool_env, sandbox, "gates", "--quiet", str(sandbox))
    assert proc.returncode == 1
    red = [line for line in proc.stdout.splitlines() if line.startswith("FAIL  regression")]
    assert red, proc.stdout
    for line in red:
        assert "on the same 4000 rows" in line and "95% interval [" in line
        assert line.endswith("does not lie above -0.0100 (0.0100 allowed)")


def test_a_borderline_gate_is_shown_as_such_and_confidence_turns_it_red(
    sandbox: Path, tool_env: dict[str, str]
) -> None:
    measured = json.loads((sandbox / "metrics.json").read_text())["accuracy"]
    edge = round(measured - 0.002, 4)  # the point passes; a 4000-row interval is about +-0.008 wide
    edit_yaml(sandbox / "model_gates.yaml", lambda g: g["performance"]["accuracy"].update(min=edge))
    proc = mlci(tool_env, sandbox, "gates", "--quiet", str(sandbox))
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"PASS  performance accuracy >= {edge:.4f}"))
    assert "borderline: its 95% interval [" in lines[at] and lines[at].endswith(f"crosses {edge:.4f}")
    assert lines[at + 1].strip().startswith("BORDERLINE: 95% interval [")
    assert lines[-1].endswith("; 1 borderline (the value passes, its interval crosses the threshold)")

    edit_yaml(sandbox / "model_gates.yaml", lambda g: g["performance"]["accuracy"].update(confidence=0.95))
    code, data = gates_json(tool_env, sandbox)
    assert code == 1
    accuracy = by_check(data, "performance", "accuracy")
    assert not accuracy["passed"] and accuracy["borderline"]
    assert accuracy["interval_low"] < edge <= accuracy["value"]
    assert f"but its 95% interval [{accuracy['interval_low']:.4f}, " in accuracy["reason"]


def test_the_report_and_the_mlflow_run_carry_the_intervals(
    sandbox: Path, tool_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "pr" / "report.md"
    report = mlci(tool_env, sandbox, "report", "--json", "--output", str(out), str(sandbox))
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    markdown = out.read_text()
    assert "| | gate | check | value | threshold | interval | reason |" in markdown
    accuracy = by_check(data["gates"], "performance", "accuracy")
    low, high = accuracy["interval_low"], accuracy["interval_high"]
    assert f"| [{low:.4f}, {high:.4f}] |" in markdown  # the gate row and the metrics row
    assert "Intervals: 95% bootstrap confidence intervals" in markdown

    run_id = json.loads((sandbox / "models" / "train_run.json").read_text())["mlflow_run_id"]
    logged = mlci(tool_env, sandbox, "gates", "--log-to-run", run_id, str(sandbox))
    assert logged.returncode == 0, logged.stdout + logged.stderr
    run = MlflowClient(tracking_uri=f"sqlite:///{sandbox / 'mlflow.db'}").get_run(run_id)
    metrics = run.data.metrics
    assert "test_accuracy" in metrics  # what the evaluate stage logged, and beside it the gates' figures
    assert metrics["accuracy_ci_low"] == pytest.approx(low) and metrics["accuracy_ci_high"] == pytest.approx(high)
    assert metrics["accuracy_ci_low"] <= metrics["accuracy"] <= metrics["accuracy_ci_high"]
    assert metrics["accuracy_vs_baseline"] == 0.0
    assert metrics["accuracy_vs_baseline_ci_low"] == 0.0 == metrics["accuracy_vs_baseline_ci_high"]
    assert "accuracy_disparity_gender_ci_high" in metrics and "behavioral_pass_rate_ci_low" in metrics
    assert run.data.tags["mlci.intervals"] == "95% percentile bootstrap, 1000 resamples, seed 13"


def test_the_dashboards_model_tier_shows_a_borderline_gate_and_logs_the_intervals_to_its_run(
    sandbox: Path, tmux: Tmux
) -> None:
    measured = json.loads((sandbox / "metrics.json").read_text())["accuracy"]
    edge = round(measured - 0.002, 4)
    edit_yaml(sandbox / "model_gates.yaml", lambda g: g["performance"]["accuracy"].update(min=edge))
    tmux.width = 200
    tmux.start([str(Path(sys.executable).parent / "mlci-tui"), str(sandbox)], env={"NO_COLOR": "1"})
    tmux.wait_for("watching", timeout=120)
    tmux.send_keys("m")  # the model tier: stages up to date, its tests, then the gates
    screen = tmux.wait_for("1 borderline", timeout=600)
    row = next(line for line in screen.splitlines() if f"accuracy >= {edge:.4f}" in line)
    assert "≈" in row  # the mark; the word "borderline" beside the interval may be cut by the column's width
    low, high = (float(x) for x in re.findall(r"\[(0\.\d{4}), (0\.\d{4})\]", row)[0])
    assert low < edge < high
    tmux.send_keys("q")
    tmux.wait_until_dead(timeout=60)
    # The model tier's own MLflow run carries each figure beside its interval.
    client = MlflowClient(tracking_uri=f"sqlite:///{sandbox / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("credit")
    runs = client.search_runs([experiment.experiment_id], "tags.`mlci.tier` = 'model'")
    assert len(runs) == 1
    logged = runs[0].data.metrics
    assert round(logged["accuracy_ci_low"], 4) == low and round(logged["accuracy_ci_high"], 4) == high
    assert logged["accuracy_vs_baseline_ci_low"] == 0.0 == logged["accuracy_vs_baseline_ci_high"]
