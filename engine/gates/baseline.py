"""The regression baseline: the registered model's `champion`, else the metrics committed on main.

The champion's figures are the metrics recorded on the MLflow run that produced it (any
spelling, `test_accuracy` included). A metric that run does not hold is computed by
evaluating the champion model itself on the current test split, which also makes the
comparison fair when the test split has changed. Without a champion, the DVC metrics
files as committed on the main branch are the baseline. With neither, there is no
baseline, and the regression gate says so and fails.
"""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.engine.config.loader import Config
from mlci.engine.config.mlflow_sqlite import alias_versions, run_metrics_and_params, version_run_id
from mlci.engine.config.tracking_store import quiet_mlflow, sqlite_path, unreachable_reason
from mlci.engine.gates.metrics_source import read_dvc_metrics

__all__ = ["CHAMPION", "Baseline", "baseline_identity", "find_baseline"]

CHAMPION = "champion"
"""The alias of the production model in the MLflow model registry."""


@dataclass(frozen=True)
class Baseline:
    """What the candidate is compared with; `label` is empty when there is no baseline."""

    label: str
    """"champion v3 of credit-default" or "metrics.json on main"; empty when there is none."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Recorded metrics, any spelling (looked up through metric_names)."""
    model: tuple[str, str] | None = None
    """(registered model name, version) of the champion, to compute what its run did not record."""
    params: dict[str, str] = field(default_factory=dict)
    """The champion run's params (for the report's "params that differ")."""
    run_id: str | None = None
    why_none: str = ""
    """With no baseline: every place that was looked at, and what was found there."""

    @property
    def exists(self) -> bool:
        return bool(self.label)


def _registry_champion(config: Config) -> tuple[Any, Any] | str:
    """MLflow's client and the model version the `champion` alias names; or why there is none."""
    name = config.mlflow.model_name
    uri = config.mlflow.tracking_uri
    reason = unreachable_reason(uri)
    if reason is not None:
        return f"no {CHAMPION}: MLflow store unreachable ({reason})"
    quiet_mlflow()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        return client, client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return f"no {CHAMPION} alias on registered model {name!r}"


def _champion(config: Config) -> tuple[Baseline | None, str]:
    """The champion as the regression baseline, or None and why there is none; a sqlite store without MLflow."""
    db = sqlite_path(config.mlflow.tracking_uri)
    if db is not None and db.is_file():
        try:
            found = _champion_in_sqlite(config, db)
        except sqlite3.Error:
            found = None  # a schema this does not know: MLflow's client reads it below
        if found is not None:
            return found
    return _champion_through_mlflow(config)


def _champion_in_sqlite(config: Config, db: Path) -> tuple[Baseline | None, str] | None:
    """What `_champion_through_mlflow` finds, read from MLflow's tables; None where the rows are ambiguous."""
    name = config.mlflow.model_name
    versions = alias_versions(db, name, CHAMPION)
    if not versions:
        return None, f"no {CHAMPION} alias on registered model {name!r}"
    run_id = version_run_id(db, name, versions[0]) if len(versions) == 1 else None
    if run_id is None:
        return None
    metrics, params = run_metrics_and_params(db, run_id) if run_id else ({}, {})
    label = f"{CHAMPION} v{versions[0]} of {name}"
    return Baseline(label, metrics, (name, versions[0]), params, run_id or None), ""


def _champion_through_mlflow(config: Config) -> tuple[Baseline | None, str]:
    found = _registry_champion(config)
    if isinstance(found, str):
        return None, found
    client, version = found
    from mlflow.exceptions import MlflowException

    name = config.mlflow.model_name
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    if version.run_id:
        try:
            run = client.get_run(version.run_id)
        except MlflowException:
            pass  # the run was deleted: the model itself still gives the figures
        else:
            metrics = dict(run.data.metrics)
            params = dict(run.data.params)
    label = f"{CHAMPION} v{version.version} of {name}"
    return Baseline(label, metrics, (name, str(version.version)), params, version.run_id), ""


def _branch_commit(root: Path, branch: str) -> str:
    """The commit `branch` points at; "" when there is no such branch."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _champion_version(config: Config) -> tuple[str | None, str]:
    """The version the `champion` alias names, or None and why there is none; without loading MLflow for a
    sqlite store."""
    name = config.mlflow.model_name
    db = sqlite_path(config.mlflow.tracking_uri)
    if db is not None:
        if not db.is_file():
            return None, "no MLflow store"  # and reading must not create one
        try:
            versions = alias_versions(db, name, CHAMPION)
        except sqlite3.Error:
            pass  # a schema this does not know: MLflow's client reads it below
        else:
            if len(versions) <= 1:  # several: one per MLflow workspace, which the client tells apart
                return (versions[0], "") if versions else (None, f"no {CHAMPION} alias on registered model {name!r}")
    found = _registry_champion(config)
    return (None, found) if isinstance(found, str) else (str(found[1].version), "")


def baseline_identity(config: Config) -> str:
    """Which baseline `find_baseline` would take, named without loading it: "champion v3 of credit-default",
    or, with no champion, the commit of the main branch (whose committed metrics are the baseline then).

    Part of the pre-push check's proof key: a commit proven green against one champion is not proven
    against the next one. Milliseconds for a sqlite registry, so a proven answer stays instant.
    """
    version, why = _champion_version(config)
    if version is not None:
        return f"{CHAMPION} v{version} of {config.mlflow.model_name}"
    main = config.git.main_branch
    commit = _branch_commit(config.root, main)
    return f"{why}; {main} at {commit}" if commit else f"{why}; no branch {main!r}"


def find_baseline(config: Config) -> Baseline:
    """The champion if the registry has one, else main's committed metrics, else a Baseline saying why not."""
    champion, why_champion = _champion(config)
    if champion is not None:
        return champion
    main = config.git.main_branch
    if not _branch_commit(config.root, main):
        return Baseline("", why_none=f"{why_champion}, and no branch {main!r} to take committed metrics from")
    recorded = read_dvc_metrics(config.root, rev=main)
    merged: dict[str, float] = {}
    for values in reversed(list(recorded.files.values())):
        merged.update(values)
    if not merged:
        return Baseline("", why_none=f"{why_champion}, and no DVC metrics committed on {main!r}")
    return Baseline(f"{recorded.describe()} on {main}", merged)
