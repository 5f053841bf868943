"""Stage `evaluate`: models/model on data/prepared/test.csv -> metrics.json.

metrics.json: accuracy, f1_score, auc_roc, precision, recall, plus the accuracy
per protected group and its disparity (max - min) per protected attribute.
The test metrics are also logged (prefixed "test_") to the training run.
"""

from __future__ import annotations

from credit.tracking import quiet_offline_env

quiet_offline_env()  # before mlflow is imported

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from credit import FEATURE_COLUMNS, LABEL_COLUMN, PROTECTED_ATTRIBUTES  # noqa: E402

MODEL_DIR = Path("models/model")
RUN_JSON = Path("models/train_run.json")
TEST_CSV = Path("data/prepared/test.csv")
METRICS = Path("metrics.json")


def compute_metrics(df: pd.DataFrame, proba: np.ndarray, threshold: float = 0.5) -> dict:
    # The counts' formulas rather than scikit-learn's metrics: importing sklearn.metrics is
    # a quarter of this stage's imports, for five divisions (the same figures to the digit).
    from credit.model import binary_auc

    y = df[LABEL_COLUMN].to_numpy()
    pred = (proba >= threshold).astype(int)
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y != 1)))
    fn = int(np.sum((pred != 1) & (y == 1)))
    out = {
        "accuracy": float(np.mean(pred == y)),
        "f1_score": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "auc_roc": binary_auc(y == 1, proba),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "rows": len(y),
    }
    fairness = {}
    for attr in PROTECTED_ATTRIBUTES:
        groups = {str(g): float(np.mean(pred[idx] == y[idx])) for g, idx in df.groupby(attr).indices.items()}
        fairness[attr] = {"accuracy": groups, "accuracy_disparity": max(groups.values()) - min(groups.values())}
    out["fairness"] = fairness
    return _round(out)


def _round(v):
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, float):
        return round(v, 6)
    return v


def log_to_run(metrics: dict) -> None:
    """Best effort: the test metrics into the training run (or $MLFLOW_RUN_ID's)."""
    import mlflow

    from credit.tracking import tracking_uri

    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id and RUN_JSON.exists():
        run_id = json.loads(RUN_JSON.read_text()).get("mlflow_run_id")
    if not run_id:
        return
    try:
        mlflow.set_tracking_uri(tracking_uri())
        client = mlflow.MlflowClient()
        for k in ("accuracy", "f1_score", "auc_roc", "precision", "recall"):
            client.log_metric(run_id, f"test_{k}", float(metrics[k]))
    except Exception as exc:  # the metrics file is what counts
        print(f"evaluate: could not log to MLflow run {run_id}: {exc}", file=sys.stderr)


def main() -> int:
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(MODEL_DIR))
    df = pd.read_csv(TEST_CSV)
    proba = np.asarray(model.predict(df[FEATURE_COLUMNS], params={"output": "proba"}), dtype=float)
    metrics = compute_metrics(df, proba)
    METRICS.write_text(json.dumps(metrics, indent=2) + "\n")
    log_to_run(metrics)
    fair = ", ".join(f"{a} disparity {v['accuracy_disparity']:.4f}" for a, v in metrics["fairness"].items())
    print(f"evaluate: accuracy={metrics['accuracy']:.4f} f1={metrics['f1_score']:.4f} "
          f"auc={metrics['auc_roc']:.4f} ({fair})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
