"""The regression baseline: the registered model's `champion`, else the metrics committed on main.

The champion's figures are the metrics recorded on the MLflow run that produced it (any
spelling, `test_accuracy` included). A metric that run does not hold is computed by
evaluating the champion model itself on the current test split, which also makes the
comparison fair when the test split has changed. Without a champion, the DVC metrics
files as committed on the main branch are the baseline. With neither, there is no
baseline, and the regression gate says so and fails.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from mlci.engine.config.loader import Config
from mlci.engine.config.mlflow_sqlite import AliasTarget, alias_target, run_metrics_and_params
from mlci.engine.config.tracking_store import quiet_mlflow, sqlite_path, unreachable_reason
from mlci.engine.gates.metrics_source import read_dvc_metrics

__all__ = ["CHAMPION", "Baseline", "baseline_identity", "champion_run", "find_baseline"]

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


def _champion_target(config: Config, *, read_sqlite: bool = True) -> AliasTarget | str:
    """The version the `champion` alias names and its run, or why there is none: a sqlite store's tables
    read directly (`read_sqlite`), any other store, or rows they leave ambiguous, through MLflow's client."""
    name = config.mlflow.model_name
    db = sqlite_path(config.mlflow.tracking_uri)
    if read_sqlite and db is not None and db.is_file():
        try:
            target = alias_target(db, name, CHAMPION)
        except sqlite3.Error:
            target = None  # a schema this does not know: MLflow's client below
        if target is not None:
            return target if target.version else f"no {CHAMPION} alias on registered model {name!r}"
    uri = config.mlflow.tracking_uri
    reason = unreachable_reason(uri)
    if reason is not None:
        return f"no {CHAMPION}: MLflow store unreachable ({reason})"
    quiet_mlflow()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        version = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return f"no {CHAMPION} alias on registered model {name!r}"
    return AliasTarget(str(version.version), str(version.run_id or ""))


def _run_figures(config: Config, run_id: str, *, read_sqlite: bool) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics and params recorded on `run_id`, as `_champion_target` reads the store."""
    db = sqlite_path(config.mlflow.tracking_uri)
    if read_sqlite and db is not None and db.is_file():
        with contextlib.suppress(sqlite3.Error):  # a schema this does not know: MLflow's client below
            return run_metrics_and_params(db, run_id)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        run = MlflowClient(tracking_uri=config.mlflow.tracking_uri).get_run(run_id)
    except MlflowException:
        return {}, {}  # the run was deleted: the model itself still gives the figures
    return dict(run.data.metrics), dict(run.data.params)


def _champion(config: Config, *, read_sqlite: bool = True) -> tuple[Baseline | None, str]:
    """The champion as the regression baseline, or None and why there is none."""
    target = _champion_target(config, read_sqlite=read_sqlite)
    if isinstance(target, str):
        return None, target
    name = config.mlflow.model_name
    metrics, params = _run_figures(config, target.run_id, read_sqlite=read_sqlite) if target.run_id else ({}, {})
    label = f"{CHAMPION} v{target.version} of {name}"
    return Baseline(label, metrics, (name, target.version), params, target.run_id or None), ""


def champion_run(config: Config) -> str:
    """The MLflow run that produced the champion; "" when there is none (the dashboard's reference curves)."""
    target = _champion_target(config)
    return "" if isinstance(target, str) else target.run_id


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
    db = sqlite_path(config.mlflow.tracking_uri)
    if db is not None and not db.is_file():
        return None, "no MLflow store"  # and reading must not create one
    target = _champion_target(config)
    return (None, target) if isinstance(target, str) else (target.version, "")


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
