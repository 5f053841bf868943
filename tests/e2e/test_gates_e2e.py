"""Gates, registry, live metrics and the report on the demo sandbox: real git, DVC, MLflow and training."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlci.engine.events import Event, MetricPoint
from mlci.engine.gates.pr_report import format_number

pytestmark = pytest.mark.e2e

WAIT_S = 300.0


@pytest.fixture(autouse=True)
def _own_store_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process calls read the sandbox's own store: `mlflow.set_tracking_uri` (the demo builder calls it)
    also sets MLFLOW_TRACKING_URI in this process's environment, pointing at the shared template."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)


def mlci(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def gates_json(env: dict[str, str], root: Path) -> tuple[int, dict[str, Any]]:
    proc = mlci(env, root, "gates", "--json", str(root))
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def by_check(data: dict[str, Any], gate: str, start: str = "") -> dict[str, Any]:
    found = [r for r in data["results"] if r["gate"] == gate and r["check"].startswith(start)]
    assert len(found) == 1, [r["check"] for r in data["results"]]
    return found[0]


def edit_yaml(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def repro_quick(
    env: dict[str, str], root: Path, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`dvc repro` as the model tier runs it: quick mode, the sandbox's MLflow store."""
    stage_env = {
        **env,
        "MLCI_TRAIN_MODE": "quick",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", *args],
        cwd=root,
        env=stage_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def test_the_sample_model_passes_every_gate(sandbox: Path, tool_env: dict[str, str]) -> None:
    code, data = gates_json(tool_env, sandbox)
    assert code == 0, [r["reason"] for r in data["results"] if not r["passed"]]
    assert data["passed"] and data["baseline"] == "champion v1 of credit-default"
    assert {r["gate"] for r in data["results"]} == {
        "performance",
        "regression",
        "latency",
        "size",
        "fairness",
        "behavioral",
    }
    assert len([r for r in data["results"] if r["gate"] == "fairness"]) == 2  # gender and age_group
    assert (
        subprocess.run(["git", "status", "--porcelain"], cwd=sandbox, capture_output=True, text=True).stdout == ""
    )  # gates change nothing in the project


def test_a_raised_threshold_turns_that_gate_red_with_both_numbers(sandbox: Path, tool_env: dict[str, str]) -> None:
    measured = json.loads((sandbox / "metrics.json").read_text())["auc_roc"]
    edit_yaml(sandbox / "model_gates.yaml", lambda g: g["performance"]["auc_roc"].update(min=0.999))
    proc = mlci(tool_env, sandbox, "gates", "--quiet", str(sandbox))
    assert proc.returncode == 1
    red = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert len(red) == 1 and red[0].startswith("FAIL  performance auc_roc >= 0.9990")
    assert red[0].endswith(f"auc_roc {measured:.4f} < 0.9990 (metrics.json)")
    assert proc.stdout.splitlines()[-1] == "12 of 13 gates pass, 1 fail"


def test_a_metric_that_does_not_exist_fails_as_missing(sandbox: Path, tool_env: dict[str, str]) -> None:
    edit_yaml(sandbox / "model_gates.yaml", lambda g: g["performance"].update(specificity={"min": 0.5}))
    code, data = gates_json(tool_env, sandbox)
    assert code == 1
    missing = by_check(data, "performance", "specificity")
    assert not missing["passed"] and missing["value"] is None
    assert missing["reason"] == "missing: no metric 'specificity' in metrics.json or computed from the model"


def test_a_worse_model_than_champion_fails_the_regression_gate(sandbox: Path, tool_env: dict[str, str]) -> None:
    champion = json.loads((sandbox / "metrics.json").read_text())
    edit_yaml(sandbox / "params.yaml", lambda p: p["train"]["quick"].update(epochs=1))
    repro = repro_quick(tool_env, sandbox)
    out, _ = repro.communicate(timeout=WAIT_S)
    assert repro.returncode == 0, out
    worse = json.loads((sandbox / "metrics.json").read_text())
    assert worse["accuracy"] < champion["accuracy"] - 0.01, (worse, champion)
    code, data = gates_json(tool_env, sandbox)
    assert code == 1
    accuracy = by_check(data, "regression", "accuracy")
    assert not accuracy["passed"]
    assert accuracy["metric"] == "accuracy" and accuracy["baseline"] == champion["accuracy"]
    assert accuracy["reason"] == (
        f"accuracy {worse['accuracy']:.4f} is {champion['accuracy'] - worse['accuracy']:.4f} worse than "
        f"{champion['accuracy']:.4f} (champion v1 of credit-default), more than the 0.0100 allowed"
    )


def test_a_passing_candidate_is_registered_as_challenger_and_promoted(sandbox: Path, tool_env: dict[str, str]) -> None:
    from mlci.engine.config.loader import load_config
    from mlci.engine.gates.evaluate import evaluate_gates
    from mlci.engine.gates.registry import alias_state, register_challenger

    config = load_config(sandbox)
    report = evaluate_gates(config)
    assert report.passed, [r.reason for r in report.results if not r.passed]
    registration = register_challenger(config, sandbox / "models" / "model", report=report)
    assert registration.describe() == "credit-default v2 registered, alias challenger set"
    assert alias_state(config).champion == "1"
    promoted = mlci(tool_env, sandbox, "promote", "--yes", str(sandbox))
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.strip() == "credit-default: champion moved from v1 to v2"
    assert alias_state(config).champion == "2"
    # The new champion is the baseline now, and the unchanged candidate still passes against it.
    code, data = gates_json(tool_env, sandbox)
    assert code == 0 and data["baseline"] == "champion v2 of credit-default"
    accuracy = by_check(data, "regression", "accuracy")
    assert accuracy["reason"].endswith("(champion v2 of credit-default): +0.0000, within 0.0100")
    # v2's run (made at registration) recorded no metrics: the champion model itself was evaluated.
    assert accuracy["details"][1].endswith("(champion v2 of credit-default, computed on data/prepared/test.csv)")


def test_the_follower_sees_the_curve_grow_while_training(sandbox: Path, tool_env: dict[str, str]) -> None:
    from mlci.engine.telemetry.live_metrics import MetricFollower
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{sandbox / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.get_experiment_by_name("credit").experiment_id).info.run_id
    points: list[MetricPoint] = []
    lock = threading.Lock()

    def emit(event: Event) -> None:
        if isinstance(event, MetricPoint):
            with lock:
                points.append(event)

    def count() -> int:
        with lock:
            return len(points)

    follower = MetricFollower(uri, run_id, emit, interval_s=0.25)
    follower.start()
    repro = repro_quick(tool_env, sandbox, "--force", "--single-item", "train", extra_env={"MLFLOW_RUN_ID": run_id})
    try:
        deadline = time.monotonic() + WAIT_S
        while count() == 0 and repro.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        early = count()
        out, _ = repro.communicate(timeout=WAIT_S)
    finally:
        follower.stop()
    assert repro.returncode == 0, out
    assert early > 0, "no metric point arrived while the training ran"
    steps = sorted(p.step for p in points if p.key == "train_loss")
    assert steps == list(range(1, 13))
    assert count() > early  # the curve grew after the first points were seen


def test_the_report_on_a_branch_matches_the_gates(sandbox: Path, tool_env: dict[str, str], tmp_path: Path) -> None:
    subprocess.run(["git", "checkout", "-q", "-b", "wider-net"], cwd=sandbox, check=True)
    edit_yaml(sandbox / "params.yaml", lambda p: p["train"].update(dropout=0.2))
    saved = tmp_path / "gates.json"
    proc = mlci(tool_env, sandbox, "gates", "--json", str(sandbox))
    saved.write_text(proc.stdout)
    out = tmp_path / "pr" / "report.md"
    report = mlci(tool_env, sandbox, "report", "--json", "--gates", str(saved), "--output", str(out), str(sandbox))
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    gates = json.loads(saved.read_text())
    assert data["gates"] == gates
    markdown = out.read_text()
    assert markdown.startswith("# mlci report: `wider-net` @ `")
    assert "| train.dropout | 0.2 | 0.1 |" in markdown
    for r in gates["results"]:
        row = next(line for line in markdown.splitlines() if f"| {r['check']} |" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3:5] == [format_number(r["value"]), format_number(r["threshold"])]
    metrics = {m["name"]: m for m in data["metrics"]}
    assert metrics["accuracy"]["value"] == by_check(gates, "performance", "accuracy")["value"]
    assert metrics["accuracy"]["baseline"] == by_check(gates, "regression", "accuracy")["baseline"]
    assert re.search(r"\| accuracy \| 0\.\d{4} \| 0\.\d{4} \| \+0\.0000 \| metrics\.json \|", markdown)
    for title, name in (("training curves", "training_curves.png"), ("confusion matrix", "confusion_matrix.png")):
        png = out.parent / "report_assets" / name
        assert data["plots"][title] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"![{title}](report_assets/{name})" in markdown


def test_without_mlflow_the_gates_use_the_dvc_metrics(sandbox: Path, tool_env: dict[str, str]) -> None:
    (sandbox / "mlflow.db").unlink()
    shutil.rmtree(sandbox / "models")
    (sandbox / "model_gates.yaml").write_text(
        "performance: {accuracy: {min: 0.88}, f1_score: {min: 0.84}, auc_roc: {min: 0.95}}\n"
        "regression: {max_degradation: 0.01}\n"
    )
    code, data = gates_json(tool_env, sandbox)
    assert code == 0, data
    recorded = json.loads((sandbox / "metrics.json").read_text())
    for name in ("accuracy", "f1_score", "auc_roc"):
        r = by_check(data, "performance", name)
        assert r["value"] == recorded[name] and r["reason"].endswith("(metrics.json)")
    assert data["baseline"] == "metrics.json on main"
