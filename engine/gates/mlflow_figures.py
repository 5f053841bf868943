"""Log the gates' figures and their intervals to an MLflow run, beside the metrics training logged there.

Key names follow the metric: `accuracy`, `accuracy_ci_low`, `accuracy_ci_high` for a
performance gate; `accuracy_vs_baseline` (candidate minus baseline) and its paired interval
for a regression gate; `accuracy_disparity_gender` for a fairness gate; `behavioral_pass_rate`
for the behavioral cases. Figures read from a metrics file have no interval and log only
their value. The interval's level and resampling go in the run's tags, once.
"""

from __future__ import annotations

import re
from typing import Any

from mlci.engine.config.loader import Config
from mlci.engine.config.tracking_store import quiet_mlflow, unreachable_reason
from mlci.engine.errors import MlciError
from mlci.engine.events import GateReport, GateResult
from mlci.engine.gates.intervals import DEFAULT_RESAMPLES, DEFAULT_SEED

__all__ = ["INTERVAL_TAG", "gate_figures", "log_gate_figures"]

INTERVAL_TAG = "mlci.intervals"
"""Run tag: how the logged intervals were made ("95% percentile bootstrap, 1000 resamples, seed 13")."""


def _key(*parts: str) -> str:
    """An MLflow metric key from names that may hold anything (a protected attribute called "age group")."""
    return "_".join(re.sub(r"[^A-Za-z0-9_.\-/]+", "_", p).strip("_") for p in parts if p)


def _figure(result: GateResult) -> tuple[str, float, float | None, float | None] | None:
    """(key, value, low, high) of a gate on the scale people read it; None for a gate with nothing to log."""
    if result.value is None:
        return None
    low, high = result.interval_low, result.interval_high
    if result.gate == "performance" and result.metric:
        return _key(result.metric), result.value, low, high
    if result.gate == "regression" and result.metric and result.baseline is not None:
        base = result.baseline
        return (
            _key(result.metric, "vs_baseline"),
            result.value - base,
            None if low is None else low - base,
            None if high is None else high - base,
        )
    if result.gate == "fairness":
        attribute = result.check.split(":", 1)[0]
        metric = result.check.split(":", 1)[1].split()[0] if ":" in result.check else "metric"
        return _key(metric, "disparity", attribute), result.value, low, high
    if result.gate == "behavioral":
        return "behavioral_pass_rate", result.value, low, high
    return None


def gate_figures(report: GateReport) -> dict[str, float]:
    """Every figure to log: metric key -> value, with `<key>_ci_low` / `<key>_ci_high` where there is an interval."""
    out: dict[str, float] = {}
    for result in report.results:
        found = _figure(result)
        if found is None:
            continue
        key, value, low, high = found
        out[key] = value
        if low is not None and high is not None:
            out[f"{key}_ci_low"] = low
            out[f"{key}_ci_high"] = high
    return out


def log_gate_figures(config: Config, run_id: str, report: GateReport) -> dict[str, float]:
    """Log `report`'s figures into MLflow run `run_id` of the config's store; returns what was logged.

    Raises MlciError when the store or the run cannot be reached.
    """
    figures = gate_figures(report)
    if not figures:
        return figures
    reason = unreachable_reason(config.mlflow.tracking_uri)
    if reason is not None:
        raise MlciError(f"MLflow tracking store unreachable: {reason}")
    quiet_mlflow()
    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client: Any = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    levels = sorted({r.confidence for r in report.results if r.confidence is not None})
    tags = []
    if levels:
        shown = " or ".join(f"{level:.0%}" for level in levels)
        how = f"{shown} percentile bootstrap, {DEFAULT_RESAMPLES} resamples, seed {DEFAULT_SEED}"
        tags.append(RunTag(INTERVAL_TAG, how))
    stamp = int(report.at * 1000)
    try:
        client.log_batch(
            run_id, metrics=[Metric(key, float(value), stamp, 0) for key, value in figures.items()], tags=tags
        )
    except MlflowException as exc:
        raise MlciError(f"could not log the gate figures to MLflow run {run_id}: {exc}") from exc
    return figures
