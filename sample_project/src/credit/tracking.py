"""MLflow set-up shared by the stages: quiet, offline, sqlite by default.

- tracking URI: $MLFLOW_TRACKING_URI, else sqlite:///<project root>/mlflow.db
  (the project root is the stage's working directory);
- run: $MLFLOW_RUN_ID when set (mlci creates the run and follows it live),
  else a new run in experiment $MLFLOW_EXPERIMENT_NAME (default "credit").
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

DEFAULT_EXPERIMENT = "credit"


def quiet_offline_env() -> None:
    """Call before importing mlflow: no telemetry, no progress bars, few log lines."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # mlflow 3.x usage telemetry
    os.environ.setdefault("DO_NOT_TRACK", "true")  # honoured by mlflow's telemetry too
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic", "alembic.runtime.migration", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?$")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow(\..*)?$")


def project_root() -> Path:
    return Path.cwd().resolve()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def start_run(run_name: str | None = None):
    """Start (or resume) the MLflow run of this stage; use it as a context manager."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    run_id = os.environ.get("MLFLOW_RUN_ID") or None
    if run_id:
        return mlflow.start_run(run_id=run_id)
    name = experiment_name()
    if mlflow.get_experiment_by_name(name) is None:
        artifact_location = None
        if tracking_uri().startswith("sqlite:"):
            # keep the artifacts beside the database, whatever the caller's cwd
            artifact_location = (project_root() / "mlruns").as_uri()
        try:
            mlflow.create_experiment(name, artifact_location=artifact_location)
        except Exception:  # created concurrently: fine
            pass
    mlflow.set_experiment(name)
    return mlflow.start_run(run_name=run_name)


def log_params_once(params: dict) -> None:
    """Log params that the run does not have yet (a run's param cannot change value)."""
    import mlflow

    run = mlflow.active_run()
    existing = mlflow.get_run(run.info.run_id).data.params if run else {}
    fresh = {k: v for k, v in params.items() if k not in existing}
    if fresh:
        mlflow.log_params(fresh)


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out
