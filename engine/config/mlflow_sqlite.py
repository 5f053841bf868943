"""Read-only queries on an MLflow sqlite store's own tables: the reads that must not import MLflow.

Importing MLflow and opening its SQLAlchemy store costs about 2.5 CPU-s (on the sample, here);
the dashboard opening on the last known state, the live curves while a model trains and the
pre-push check's proof key each read only a few rows. These queries read MLflow's tables as
MLflow's SQLAlchemy store writes them (`metrics` since MLflow 1.x, `registered_model_aliases`
since 2.3). Every function raises `sqlite3.Error` for a store whose schema it does not know,
and answers None where the rows are ambiguous (one per MLflow workspace): the caller then asks
MLflow's client, which knows both.

The database is opened read-only (`mode=ro`): reading never creates a store, and never writes one.
"""

from __future__ import annotations

import sqlite3
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["AliasTarget", "MetricRow", "alias_target", "metric_rows", "run_metrics_and_params", "version_files"]

BUSY_TIMEOUT_S = 10.0
"""How long a read waits for a training run's write to the same file to end."""

_ALIAS_VERSIONS = "SELECT DISTINCT version FROM registered_model_aliases WHERE name = ? AND alias = ?"
_VERSION_RUNS = "SELECT DISTINCT run_id FROM model_versions WHERE name = ? AND version = ?"
_METRICS = "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? ORDER BY key, timestamp, step"
_LATEST_METRICS = "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?"
_PARAMS = "SELECT key, value FROM params WHERE run_uuid = ?"
_VERSION_LOCATION = "SELECT DISTINCT storage_location, source FROM model_versions WHERE name = ? AND version = ?"
_RUN_ARTIFACTS = "SELECT DISTINCT artifact_uri FROM runs WHERE run_uuid = ?"


@dataclass(frozen=True)
class AliasTarget:
    """The model version an alias names, and the MLflow run that produced it."""

    version: str
    """"" when no version of the model has the alias."""
    run_id: str
    """"" when the version names no run."""


@dataclass(frozen=True)
class MetricRow:
    """One logged value of a run's metric, as MLflow's `get_metric_history` gives it."""

    key: str
    value: float
    timestamp: int
    step: int


@contextmanager
def _reading(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        yield conn
    finally:
        conn.close()


def alias_target(db: Path, model: str, alias: str) -> AliasTarget | None:
    """The version of registered model `model` that `alias` names, and its run; None when the rows are
    ambiguous (one per MLflow workspace, which MLflow's client tells apart)."""
    with _reading(db) as conn:
        versions = [str(row[0]) for row in conn.execute(_ALIAS_VERSIONS, (model, alias))]
        if not versions:
            return AliasTarget("", "")
        if len(versions) > 1:
            return None
        runs = [str(row[0] or "") for row in conn.execute(_VERSION_RUNS, (model, versions[0]))]
    return AliasTarget(versions[0], runs[0]) if len(runs) == 1 else None


def run_metrics_and_params(db: Path, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    """A run's metrics (each one's latest value) and params, as MLflow's `get_run` gives them in `run.data`;
    both empty for a run the store does not hold."""
    with _reading(db) as conn:
        metrics = {
            str(key): float("nan") if is_nan else float(value)
            for key, value, is_nan in conn.execute(_LATEST_METRICS, (run_id,))
        }
        params = {str(key): str(value) for key, value in conn.execute(_PARAMS, (run_id,))}
    return metrics, params


def metric_rows(db: Path, run_id: str) -> list[MetricRow]:
    """Every value logged to `run_id`'s metrics, by key, then in the order it was logged.

    MLflow keeps a NaN as 0 with `is_nan` set; it comes back as NaN here, as from MLflow's client.
    """
    with _reading(db) as conn:
        rows = conn.execute(_METRICS, (run_id,)).fetchall()
    return [
        MetricRow(str(key), float("nan") if is_nan else float(value), int(timestamp), int(step))
        for key, value, timestamp, step, is_nan in rows
    ]


def version_files(db: Path, model: str, version: str) -> Path | None:
    """The folder on this machine that holds `version` of `model`, where MLflow's client would download it from:
    its storage location (else its source), a `file:` URI or `runs:/<run>/<path>` in a run whose artifacts are
    on this disk. None for any other store of artifacts, or rows that are ambiguous."""
    with _reading(db) as conn:
        rows = conn.execute(_VERSION_LOCATION, (model, version)).fetchall()
        if len(rows) != 1:
            return None
        location = str(rows[0][0] or rows[0][1] or "")
        if location.startswith("runs:/"):
            run_id, _, inside = location.removeprefix("runs:/").partition("/")
            artifacts = conn.execute(_RUN_ARTIFACTS, (run_id,)).fetchall()
            if len(artifacts) != 1 or not artifacts[0][0]:
                return None
            location = f"{str(artifacts[0][0]).rstrip('/')}/{inside}".rstrip("/")
    parsed = urlparse(location)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    path = Path(urllib.request.url2pathname(parsed.path))
    return path if path.is_dir() else None
