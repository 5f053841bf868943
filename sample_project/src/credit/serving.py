"""The MLflow pyfunc model: raw columns in, default labels (or probabilities) out.

    model = mlflow.pyfunc.load_model("models/model")
    model.predict(df)                               # int64 0/1 labels (1 = default)
    model.predict(df, params={"output": "proba"})   # float64 P(default = 1)
    model.unwrap_python_model().predict_proba(df)   # the same probabilities, no schema check

`df` holds the raw feature columns (credit.FEATURE_COLUMNS); other columns, the
label among them, are ignored. The preprocessing (features.FeatureTransformer)
lives inside the model.

The model is saved "from code" (MLflow's recommended way, no pickled object):
pyfunc_entry.py builds a CreditModel, and the fitted state travels as the
model_config (transformer, architecture) and artifacts (weights / estimator).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from credit import FEATURE_COLUMNS, LABEL_COLUMN
from credit.features import FeatureTransformer

THRESHOLD = 0.5
ENTRY = Path(__file__).resolve().parent / "pyfunc_entry.py"


class CreditModel(mlflow.pyfunc.PythonModel):
    def __init__(self) -> None:
        self.kind = "torch"
        self.threshold = THRESHOLD
        self._tf: FeatureTransformer | None = None
        self._est: Any = None

    def load_context(self, context) -> None:
        cfg = context.model_config or {}
        self.kind = cfg["kind"]
        self.threshold = float(cfg.get("threshold", THRESHOLD))
        self._tf = FeatureTransformer.from_dict(cfg["transformer"])
        if self.kind == "torch":
            import torch

            from credit.model import MLP

            torch.set_num_threads(1)  # single-row calls: threads only add latency
            arch = cfg["arch"]
            net = MLP(self._tf.n_features, arch["hidden"], arch.get("dropout", 0.0))
            net.load_state_dict(torch.load(context.artifacts["weights"], weights_only=True))
            net.eval()
            self._est = net
        else:
            with open(context.artifacts["estimator"], "rb") as fh:
                self._est = pickle.load(fh)

    def predict_proba(self, model_input: pd.DataFrame) -> np.ndarray:
        """P(default = 1) per row, float64."""
        x = self._tf.transform(model_input)
        if self.kind == "torch":
            import torch

            with torch.inference_mode():
                return torch.sigmoid(self._est(torch.from_numpy(x))).numpy().astype(np.float64)
        return self._est.predict_proba(x)[:, 1].astype(np.float64)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        proba = self.predict_proba(model_input)
        if (params or {}).get("output", "label") == "proba":
            return proba
        return (proba >= self.threshold).astype(np.int64)


def pyfunc_kwargs(kind: str, transformer: FeatureTransformer, estimator: Any, arch: dict | None,
                  workdir: Path) -> dict[str, Any]:
    """Everything mlflow.pyfunc.save_model / log_model need; artifacts are written into workdir."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "torch":
        import torch

        weights = workdir / "weights.pt"
        torch.save(estimator.state_dict(), weights)
        artifacts = {"weights": str(weights)}
    else:
        path = workdir / "estimator.pkl"
        with open(path, "wb") as fh:
            pickle.dump(estimator, fh)
        artifacts = {"estimator": str(path)}
    # No input schema on purpose: MLflow's schema check rejects an int64 column where it
    # expects double ("Can not safely convert int64 to float64"), so a CSV whose incomes
    # happen to be whole numbers would fail. The model casts its inputs itself; the
    # expected columns are in the model's metadata instead.
    signature = ModelSignature(
        inputs=None,
        outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,))]),
        params=ParamSchema([ParamSpec("output", "string", "label")]),
    )
    return {
        "python_model": str(ENTRY),
        "model_config": {"kind": kind, "threshold": THRESHOLD, "transformer": transformer.to_dict(),
                         "arch": arch or {}},
        "artifacts": artifacts,
        "code_paths": [str(ENTRY.parent)],
        "signature": signature,
        "metadata": {"feature_columns": list(FEATURE_COLUMNS), "label_column": LABEL_COLUMN,
                     "predict_output": "0/1 labels; params={'output': 'proba'} for P(label = 1)"},
        "pip_requirements": _requirements(kind),  # given, so mlflow does not infer them (slow)
    }


def _requirements(kind: str) -> list[str]:
    from importlib.metadata import version

    pkgs = ["mlflow", "numpy", "pandas", "PyYAML"] + (["torch"] if kind == "torch" else ["scikit-learn"])
    return [f"{p}=={version(p).split('+')[0]}" for p in pkgs]  # 2.13.0+cpu -> 2.13.0
