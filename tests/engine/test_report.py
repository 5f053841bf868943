"""`mlci report`: Markdown with metrics vs baseline, params that differ, the gate table and PNG plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlci.engine.gates.pr_report import format_number as fmt
from mlflow.tracking import MlflowClient

from tests.gate_projects import build_gate_project, copy_project, git

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gate_project(tmp_path_factory.mktemp("report") / "proj")


@pytest.fixture
def project(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return copy_project(template, tmp_path / "proj")


def mlci(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )


def report(project: Path, *extra: str) -> tuple[dict[str, Any], str]:
    out = project.parent / "out" / "report.md"
    proc = mlci("report", "--json", "--output", str(out), *extra, str(project), cwd=project)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), out.read_text()


@pytest.fixture(scope="module")
def untouched(template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    """`mlci report` and `mlci gates --json` on an untouched copy, once for the tests that only read them:
    (the report's JSON, its Markdown, the gates' JSON text)."""
    project = copy_project(template, tmp_path_factory.mktemp("untouched") / "proj")
    data, markdown = report(project)
    gates = mlci("gates", "--json", str(project), cwd=project)
    assert gates.returncode == 0, gates.stderr
    return data, markdown, gates.stdout


def log_training_run(project: Path) -> str:
    uri = f"sqlite:///{(project / 'mlflow.db').as_posix()}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("tiny")).info.run_id
    for step in range(1, 6):
        client.log_metric(run_id, "train_loss", 1.0 / step, step=step)
        client.log_metric(run_id, "val_accuracy", 0.6 + step / 20, step=step)
    client.log_metric(run_id, "test_accuracy", 0.85)  # one value: not a curve
    return run_id


def test_the_report_numbers_match_mlci_gates_json(untouched: tuple[dict[str, Any], str, str]) -> None:
    data, markdown, gates = untouched
    expected = json.loads(gates)
    deterministic = [r for r in expected["results"] if r["gate"] != "latency"]  # latency is re-measured
    got = {r["check"]: r for r in data["gates"]["results"]}
    for r in deterministic:
        assert got[r["check"]]["value"] == r["value"] and got[r["check"]]["passed"] == r["passed"]
    for r in data["gates"]["results"]:
        row = next(line for line in markdown.splitlines() if f"| {r['check']} |" in line)
        assert f"| {fmt(r['value'])} | {fmt(r['threshold'])} |" in row
        assert ("✅" if r["passed"] else "❌") in row
    accuracy = next(m for m in data["metrics"] if m["name"] == "accuracy")
    assert accuracy["baseline"] == accuracy["value"] and accuracy["delta"] == 0.0
    assert f"| accuracy | {fmt(accuracy['value'])} | {fmt(accuracy['baseline'])} | +0.0000 | metrics.json |" in markdown
    assert markdown.startswith("# mlci report: `main` @ `")
    assert "**✅ all 12 gates pass**" in markdown and "baseline: metrics.json on main" in markdown


def test_a_saved_gate_report_is_reused_exactly(project: Path, untouched: tuple[dict[str, Any], str, str]) -> None:
    saved = project.parent / "gates.json"
    saved.write_text(untouched[2])
    data, _markdown = report(project, "--gates", str(saved))
    assert data["gates"] == json.loads(saved.read_text())


def test_params_that_differ_from_main_and_metric_deltas(project: Path) -> None:
    git(project, "checkout", "-q", "-b", "tweak")
    (project / "params.yaml").write_text("train:\n  C: 0.01\n  max_iter: 100\n  solver: saga\n")
    metrics = json.loads((project / "metrics.json").read_text())
    metrics["accuracy"] = round(metrics["accuracy"] - 0.03, 6)
    (project / "metrics.json").write_text(json.dumps(metrics))
    data, markdown = report(project)
    assert data["params"]["differ"] == [
        {"name": "train.C", "branch": "0.01", "baseline": "1.0"},
        {"name": "train.solver", "branch": "saga", "baseline": None},
    ]
    assert "## Params that differ from `main`" in markdown
    assert "| train.C | 0.01 | 1.0 |" in markdown and "| train.solver | saga | (absent) |" in markdown
    accuracy = next(m for m in data["metrics"] if m["name"] == "accuracy")
    assert accuracy["delta"] == pytest.approx(-0.03)
    assert "| -0.0300 | metrics.json |" in markdown
    assert "# mlci report: `tweak`" in markdown and "❌ 1 of 12 gates fail" in markdown


def test_plots_are_pngs_linked_from_the_markdown(project: Path) -> None:
    run_id = log_training_run(project)
    data, markdown = report(project)
    assert data["mlflow_run_id"] == run_id
    assert set(data["plots"]) == {"training curves", "confusion matrix"}
    out = project.parent / "out"
    for name in ("training_curves.png", "confusion_matrix.png"):
        png = out / "report_assets" / name
        assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 5000
        assert f"](report_assets/{name})" in markdown
    import matplotlib.image

    assert matplotlib.image.imread(out / "report_assets" / "training_curves.png").shape[2] in (3, 4)


def test_without_a_store_the_report_says_why_there_are_no_curves(untouched: tuple[dict[str, Any], str, str]) -> None:
    data, markdown, _gates = untouched
    assert list(data["plots"]) == ["confusion matrix"]
    assert any(
        n.startswith("no training curves: MLflow store unreachable (no MLflow database at") for n in data["notes"]
    )
    assert "## Notes" in markdown
