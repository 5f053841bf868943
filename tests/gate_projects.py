"""Tiny real projects for the gate, registry and report tests: git, DVC, a real MLflow model.

The model is a scikit-learn logistic regression on two features, saved with
`mlflow.sklearn.save_model` (with a signature, so its input columns are known), trained
in a second: small enough to build once per test module and copy per test.

    proj/
      mlci.yaml             mlflow: {experiment: tiny, model_name: tiny}
      model_gates.yaml      every gate family, thresholds the tiny model meets
      dvc.yaml              stage train -> models/model, data/test.csv, metrics.json
      data/test.csv         x1, x2, g (a protected attribute), y (the label)
      models/model/         the MLflow model
      metrics.json          accuracy, f1_score, auc_roc as the model scores them
      tests/cases.csv       behavioral cases: x1, x2, expected
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from tests.dvc_init import dvc_init

__all__ = [
    "GOOD_GATES",
    "build_gate_project",
    "copy_project",
    "git",
    "register_champion",
    "set_metric",
    "write_gates",
]

GOOD_GATES = """\
performance: {accuracy: {min: 0.7}, f1_score: {min: 0.6}, auc_roc: {min: 0.7}}
regression: {max_degradation: 0.02}
latency: {p50_ms: 500, p95_ms: 1000, p99_ms: 2000}
size: {max_mb: 5}
fairness: {max_disparity: 0.3, protected_attributes: [g]}
behavioral: {test_cases: tests/cases.csv, min_pass_rate: 1.0}
"""
"""Thresholds the tiny model meets with room to spare (latency generous: the test machine is shared)."""

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [data/train.csv]
    outs: [models/model, data/test.csv]
    metrics:
      - metrics.json:
          cache: false
"""

CASES = """\
x1,x2,expected
3.0,3.0,1
2.5,2.0,1
-3.0,-3.0,0
-2.0,-2.5,0
"""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {root}: {done.stderr}")
    return done.stdout.strip()


def _data(seed: int, rows: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    g = rng.choice(["a", "b"], size=rows)
    y = ((x1 + x2 + rng.normal(scale=0.6, size=rows)) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "g": g, "y": y})


PIP_REQUIREMENTS = ["scikit-learn"]
"""Given to `save_model`, so MLflow does not infer them: inferring starts a Python that imports the model (seconds)."""


def _train_and_save(root: Path) -> dict[str, float]:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    train, test = _data(0, 600), _data(1, 300)
    (root / "data").mkdir(parents=True, exist_ok=True)
    train.to_csv(root / "data" / "train.csv", index=False)
    test.to_csv(root / "data" / "test.csv", index=False)
    model = LogisticRegression().fit(train[["x1", "x2"]], train["y"])
    mlflow.sklearn.save_model(
        model,
        str(root / "models" / "model"),
        signature=infer_signature(train[["x1", "x2"]], model.predict(train[["x1", "x2"]])),
        pip_requirements=PIP_REQUIREMENTS,
        serialization_format="cloudpickle",
    )
    pred = model.predict(test[["x1", "x2"]])
    proba = model.predict_proba(test[["x1", "x2"]])[:, 1]
    return {
        "accuracy": round(float(accuracy_score(test["y"], pred)), 6),
        "f1_score": round(float(f1_score(test["y"], pred)), 6),
        "auc_roc": round(float(roc_auc_score(test["y"], proba)), 6),
    }


def build_gate_project(root: Path) -> Path:
    """Build the tiny project at `root` (git on branch main, DVC initialised, everything committed)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "config", "commit.gpgsign", "false")
    # What `dvc config core.analytics false` writes into the empty config `dvc init` leaves,
    # without a second interpreter importing DVC.
    dvc_init(root, config="[core]\n    analytics = false\n")
    metrics = _train_and_save(root)
    (root / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text("train:\n  C: 1.0\n  max_iter: 100\n")
    (root / "mlci.yaml").write_text("mlflow: {experiment: tiny, model_name: tiny}\n")
    write_gates(root, GOOD_GATES)
    (root / "tests").mkdir()
    (root / "tests" / "cases.csv").write_text(CASES)
    (root / ".gitignore").write_text("/models/\n/data/\nmlflow.db\n/mlruns/\n/.mlci/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tiny project")
    return root


def copy_project(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return dest


def write_gates(root: Path, text: str) -> None:
    (root / "model_gates.yaml").write_text(textwrap.dedent(text))


def set_metric(root: Path, name: str, value: Any) -> None:
    """Rewrite one metric of the working tree's metrics.json."""
    path = root / "metrics.json"
    data = json.loads(path.read_text())
    data[name] = value
    path.write_text(json.dumps(data, indent=2) + "\n")


def register_champion(root: Path, *, metrics: dict[str, float] | None = None) -> str:
    """Log the project's model into a run (with `metrics`), register it as `tiny`, alias it champion."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("tiny", artifact_location=(root / "mlruns").as_uri())
    run = client.create_run(experiment)
    run_id = run.info.run_id
    for key, value in (metrics or {}).items():
        client.log_metric(run_id, key, value)
    client.log_artifacts(run_id, str(root / "models" / "model"), "model")
    client.set_terminated(run_id)
    client.create_registered_model("tiny")
    version = client.create_model_version("tiny", source=f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias("tiny", "champion", version.version)
    return str(version.version)
