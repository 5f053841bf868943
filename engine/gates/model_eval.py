"""Measure an MLflow model on a test split: metrics, latency, size, per-group figures, behavioral cases.

The model is loaded as a pyfunc, the interface every MLflow model has, so the gates judge
sklearn, torch and hand-written models alike. Scores (for AUC) come from the richest
source the model offers: a scikit-learn flavour's `predict_proba`, a python model's own
`predict_proba`, or predictions that are already probabilities. mlflow, numpy and pandas are
imported inside the functions: the CLI and the TUI start without them.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.engine import short_lived
from mlci.engine.config.metric_names import CLASSIFICATION_METRICS, canonical
from mlci.engine.config.tracking_store import quiet_mlflow
from mlci.engine.gates.model_environment import environment_differences

__all__ = [
    "LATENCY_CALLS",
    "LATENCY_CLEAR_CALLS",
    "LATENCY_WARMUP",
    "CaseResult",
    "GroupFigure",
    "LatencyFigures",
    "LoadedModel",
    "ModelUnavailable",
    "artifact_size_bytes",
    "classification_metrics",
    "group_figures",
    "group_metric",
    "load_model",
    "load_table",
    "measure_latency",
    "run_cases",
    "same_label",
]

LATENCY_WARMUP = 100
"""Untimed calls first: the first calls pay for lazy initialisation, allocator growth and cold caches."""
LATENCY_CALLS = 1000
"""Timed single-row calls. With 1000, the p99 is the 990th-fastest call and 10 calls lie beyond it, so a
single stray pause (GC, a scheduler hiccup) moves it by one rank, not to the maximum; fewer calls would
make p99 the maximum itself. At about a millisecond a call it costs a second."""
LATENCY_CLEAR_CALLS = 300
"""Timed calls after which a clear pass ends the timing: when even the slowest of them is within every limit.
The slowest of 300 calls lies above the p99 with 95% confidence (all 300 fall below the p99 with probability
0.99**300 = 0.049), so more calls would not turn the verdict; a stray pause among them, or a limit within
reach, takes all LATENCY_CALLS."""


class ModelUnavailable(Exception):
    """The model cannot be loaded or cannot predict; the message says why, for the gate's reason."""


@dataclass
class LoadedModel:
    """A loaded pyfunc model with what its MLmodel file says about its inputs."""

    path: Path
    pyfunc: Any
    inputs: list[str] | None
    """The columns it takes (signature, else metadata `feature_columns`); None when it does not say."""
    metadata_label: str | None
    """The label column its metadata names, if any."""
    sklearn: Any = None
    """The scikit-learn estimator, for models of the sklearn flavour (their `predict_proba`)."""
    environment: tuple[str, ...] = ()
    """How this environment differs from the one the model was logged with (`model_environment`)."""

    def features(self, frame: Any, label: str | None) -> Any:
        """The model's input columns of `frame`: its declared inputs, else every column but the label."""
        if self.inputs and all(c in frame.columns for c in self.inputs):
            return frame[self.inputs]
        return frame.drop(columns=[label]) if label and label in frame.columns else frame

    def predict(self, frame: Any) -> Any:
        """Raw predictions as a 1-D numpy array."""
        import numpy as np

        out = self.pyfunc.predict(frame)
        if hasattr(out, "iloc") and getattr(out, "ndim", 1) == 2:
            out = out.iloc[:, 0]
        array = np.asarray(out)
        return array.reshape(-1) if array.ndim > 1 and array.shape[1] == 1 else array

    @property
    def classes(self) -> list[Any] | None:
        """The classes the model predicts, in its own order (scikit-learn's `classes_`); None when it does not say."""
        for source in (self.sklearn, _unwrapped(self.pyfunc)):
            found = getattr(source, "classes_", None)
            if found is not None:
                return list(found)
        return None

    @property
    def score_label(self) -> Any:
        """The class whose probability `labels_and_scores` gives: the second of `classes` (as scikit-learn's
        `predict_proba[:, 1]`), or 1 (predictions that are probabilities, thresholded to 0/1)."""
        classes = self.classes
        return classes[1] if classes is not None and len(classes) == 2 else 1

    def labels_and_scores(self, frame: Any) -> tuple[Any, Any | None, str]:
        """(predicted labels, scores of `score_label` or None, why there are no scores)."""
        import numpy as np

        raw = self.predict(frame)
        if _looks_like_probabilities(raw):
            return (raw >= 0.5).astype(np.int64), raw.astype(float), ""
        scores, why = self._scores(frame)
        return raw, scores, why

    def _scores(self, frame: Any) -> tuple[Any | None, str]:
        import numpy as np

        for source in (self.sklearn, _unwrapped(self.pyfunc)):
            proba_fn = getattr(source, "predict_proba", None)
            if proba_fn is None:
                continue
            try:
                proba = np.asarray(proba_fn(frame), dtype=float)
            except Exception as exc:
                return None, f"predict_proba failed: {exc}"
            if proba.ndim == 2:
                if proba.shape[1] != 2:
                    return None, "scores exist only for binary classifiers"
                proba = proba[:, 1]
            return proba, ""
        return None, "the model gives labels, not scores (no predict_proba)"


def _unwrapped(pyfunc: Any) -> Any:
    try:
        return pyfunc.unwrap_python_model()
    except Exception:  # not a python_function model written in Python: no predict_proba there
        return None


def _looks_like_probabilities(values: Any) -> bool:
    import numpy as np

    if values.dtype.kind != "f" or values.size == 0:
        return False
    finite = values[np.isfinite(values)]
    return (
        bool(finite.size) and bool(np.all((finite >= 0) & (finite <= 1))) and bool(np.any(finite != np.round(finite)))
    )


def load_model(path: Path) -> LoadedModel:
    """Load the MLflow model at `path`; raises ModelUnavailable with the reason."""
    if not path.exists():
        raise ModelUnavailable(f"no model at {path}")
    if path.is_dir() and not (path / "MLmodel").is_file():
        raise ModelUnavailable(f"{path} is not an MLflow model (no MLmodel file)")
    quiet_mlflow()
    try:
        with short_lived.loading():  # MLflow and the model's framework: most of the heap (`short_lived`)
            import mlflow.pyfunc

            # Its check of the model's requirements is made below (`model_environment`, `environment`): MLflow's
            # costs 0.2 CPU-s a gates run and warns where the dashboard does not show it.
            pyfunc = mlflow.pyfunc.load_model(str(path), suppress_warnings=True)
    except Exception as exc:
        raise ModelUnavailable(f"unreadable model at {path}: {type(exc).__name__}: {exc}") from exc
    meta = pyfunc.metadata
    inputs: list[str] | None = None
    schema = meta.get_input_schema() if meta.signature is not None else None
    if schema is not None and schema.has_input_names():
        inputs = list(schema.input_names())
    extra = meta.metadata or {}
    if inputs is None and isinstance(extra.get("feature_columns"), list):
        inputs = [str(c) for c in extra["feature_columns"]]
    label = extra.get("label_column")
    sklearn_model = None
    if "sklearn" in meta.flavors:
        try:
            import mlflow.sklearn

            sklearn_model = mlflow.sklearn.load_model(str(path))
        except Exception:  # the pyfunc loaded; scores are a bonus
            sklearn_model = None
    return LoadedModel(
        path, pyfunc, inputs, str(label) if label else None, sklearn_model, tuple(environment_differences(path))
    )


def load_table(path: Path) -> Any:
    """A CSV, TSV or Parquet file as a DataFrame."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")


def _binary(y: Any, labels: Any) -> bool:
    import numpy as np

    values = set(np.unique(np.concatenate([np.asarray(y).ravel(), np.asarray(labels).ravel()])).tolist())
    return values <= {0, 1}


def classification_metrics(
    y: Any, labels: Any, scores: Any | None, *, no_scores_reason: str = ""
) -> tuple[dict[str, float], dict[str, str]]:
    """Every metric in CLASSIFICATION_METRICS: (name -> value, name -> why it could not be computed).

    The figures are the bootstrap's formulas (`intervals.classification_samples`) with every row
    counted once: a metric's value and its interval cannot disagree on a definition, and the
    gates need no scikit-learn (0.7 s of imports in each gates process, scipy.stats mostly). The
    formulas are scikit-learn's: `average="binary"` (positive class 1) for 0/1 labels, else the
    macro average over the classes of `y` and `labels`, `zero_division=0`, tied scores counted
    half in AUC, probabilities clipped at float64's epsilon in log loss.
    """
    import numpy as np
    from mlci.engine.gates.intervals import classification_samples

    if len(y) == 0:
        return {}, dict.fromkeys(CLASSIFICATION_METRICS, "the test split is empty")
    y, labels = np.asarray(y), np.asarray(labels)
    once = np.ones((1, len(y)))
    figures = classification_samples(once, y, labels, None if scores is None else np.asarray(scores))
    binary = _binary(y, labels)
    values: dict[str, float] = {}
    missing: dict[str, str] = {}
    for name in ("accuracy", "balanced_accuracy", "f1_score", "precision", "recall"):
        # No label 1 anywhere: the positive class's figures are 0, as zero_division=0 makes them.
        values[name] = float(figures[name][0]) if name in figures else 0.0
    if "auc_roc" in figures:
        values["auc_roc"] = float(figures["auc_roc"][0])
        values["log_loss"] = float(figures["log_loss"][0])
    elif scores is None:
        missing["auc_roc"] = missing["log_loss"] = no_scores_reason or "the model gives no scores"
    elif not binary:
        missing["auc_roc"] = missing["log_loss"] = "computed only for binary labels"
    elif len(set(y.tolist())) < 2:
        missing["auc_roc"] = missing["log_loss"] = "the test split holds one class only"
    else:  # the bootstrap's formulas leave scores holding NaN or infinities out
        missing["auc_roc"] = missing["log_loss"] = "the model's scores hold NaN or infinite values"
    return values, missing


def group_metric(metric: str, y: Any, labels: Any, scores: Any | None) -> float:
    """One fairness metric on one group's rows; NaN when it is undefined there (fail closed upstream)."""
    import numpy as np

    name = canonical(metric)
    y = np.asarray(y)
    labels = np.asarray(labels)
    if name == "selection_rate":
        return float(np.mean(labels == 1)) if len(labels) else math.nan
    if name == "false_positive_rate":
        negatives = y == 0
        return float(np.mean(labels[negatives] == 1)) if negatives.any() else math.nan
    if name == "auc_roc" and (scores is None or len(set(y.tolist())) < 2):
        return math.nan
    if name == "recall" and not (y == 1).any():
        return math.nan
    if name == "precision" and not (labels == 1).any():
        return math.nan
    values, _ = classification_metrics(y, labels, scores)
    return values.get(name, math.nan)


@dataclass(frozen=True)
class GroupFigure:
    group: str
    rows: int
    value: float


def group_figures(groups: Any, metric: str, y: Any, labels: Any, scores: Any | None) -> list[GroupFigure]:
    """The metric per group of a protected attribute's column, groups in sorted order."""
    import numpy as np

    keys = np.asarray(groups).astype(str)
    out = []
    for group in sorted(set(keys.tolist())):
        mask = keys == group
        out.append(
            GroupFigure(
                group,
                int(mask.sum()),
                group_metric(
                    metric, np.asarray(y)[mask], np.asarray(labels)[mask], None if scores is None else scores[mask]
                ),
            )
        )
    return out


@dataclass(frozen=True)
class LatencyFigures:
    """Percentiles of single-row prediction time, and how they were measured."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    calls: int
    warmup: int
    distinct_rows: int
    clear: bool = False
    """Stopped after LATENCY_CLEAR_CALLS: the slowest call was within every limit."""

    def get(self, name: str) -> float:
        value: float = getattr(self, name)
        return value


def measure_latency(
    model: LoadedModel,
    features: Any,
    *,
    warmup: int = LATENCY_WARMUP,
    calls: int = LATENCY_CALLS,
    clear_below_ms: float | None = None,
) -> LatencyFigures:
    """Time `calls` single-row predictions (rows of `features`, cycled) after `warmup` untimed ones; stop after
    LATENCY_CLEAR_CALLS when the slowest of them took at most `clear_below_ms` (the tightest limit)."""
    import numpy as np

    if len(features) == 0:
        raise ModelUnavailable("the test split is empty: no rows to time")
    clear_at = LATENCY_CLEAR_CALLS if clear_below_ms is not None and calls > LATENCY_CLEAR_CALLS else None

    def cut(upto: int) -> None:
        # One-row frames are cut before they are timed, so the figures are the model's, not pandas' slicing
        # (a slice: a tenth of a millisecond a row, where a list index takes three times as long).
        rows.extend(features.iloc[i : i + 1] for i in range(len(rows), min(len(features), upto)))

    rows: list[Any] = []
    cut(clear_at or calls)
    predict = model.pyfunc.predict
    timed = calls
    try:
        for i in range(warmup):
            predict(rows[i % len(rows)])
        timings = np.empty(calls, dtype=np.float64)
        for i in range(calls):
            row = rows[i % len(rows)]
            start = time.perf_counter_ns()
            predict(row)
            timings[i] = time.perf_counter_ns() - start
            if i + 1 == clear_at:
                if clear_below_ms is not None and timings[:clear_at].max() / 1e6 <= clear_below_ms:
                    timed = clear_at
                    break
                cut(calls)  # no clear pass: the rest of the rows, between two timed calls
    except Exception as exc:
        raise ModelUnavailable(f"single-row prediction failed: {type(exc).__name__}: {exc}") from exc
    p50, p95, p99 = (float(v) / 1e6 for v in np.percentile(timings[:timed], [50, 95, 99]))
    return LatencyFigures(p50, p95, p99, timed, warmup, len(rows), clear=timed < calls)


def artifact_size_bytes(path: Path) -> int:
    """Bytes of the model artifact as it ships: every file under the directory, links followed.

    A model whose weights are links (into the DVC cache, or a linked folder of them) ships
    what the links point to, so that is what counts; a folder reached twice through links
    counts once. A dangling link raises ModelUnavailable: what it stood for cannot be weighed.
    """
    if path.is_file():
        return path.stat().st_size
    total = 0
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(path, followlinks=True):
        here = Path(folder).stat()
        if (here.st_dev, here.st_ino) in seen:
            dirs[:] = []  # a link back up the tree (or a folder linked twice): counted already
            continue
        seen.add((here.st_dev, here.st_ino))
        for name in files:  # a dangling link is listed here: it is not a folder
            entry = Path(folder) / name
            try:
                total += entry.stat().st_size
            except OSError as exc:
                raise ModelUnavailable(
                    f"{entry} is a broken link: the model cannot be weighed ({exc.strerror})"
                ) from exc
    return total


def same_label(expected: Any, got: Any) -> bool:
    """Equal as labels: 1, 1.0, "1" and True are one label; strings compare stripped."""
    return _label_text(expected) == _label_text(got)


def _label_text(value: Any) -> str:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return text
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


@dataclass(frozen=True)
class CaseResult:
    """One behavioral case: its row in the CSV (1-based, after the header), inputs, and outcome."""

    row: int
    inputs: dict[str, Any]
    expected: Any
    got: Any
    passed: bool

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.inputs.items())
        return f"row {self.row}: {shown} -> expected {self.expected}, got {self.got}"


def run_cases(model: LoadedModel, cases: Any, expected_column: str, *, label: str | None) -> list[CaseResult]:
    """Predict every case of the behavioral CSV in one call and compare with its expected output."""
    inputs = cases.drop(columns=[expected_column])
    features = model.features(inputs, label)
    try:
        labels, _scores, _why = model.labels_and_scores(features)
    except Exception as exc:
        raise ModelUnavailable(f"the model could not predict the cases: {type(exc).__name__}: {exc}") from exc
    results = []
    for i, (expected, got) in enumerate(zip(cases[expected_column].tolist(), list(labels), strict=True)):
        shown = {k: _plain(v) for k, v in inputs.iloc[i].items()}
        got_plain = _plain(got)
        results.append(CaseResult(i + 1, shown, _plain(expected), got_plain, same_label(expected, got_plain)))
    return results


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
