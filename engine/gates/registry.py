"""The MLflow model registry: a candidate that passes every gate becomes `challenger`; promotion is explicit.

Only two things here move an alias, and nothing else in mlci does:

- `register_challenger`: after every gate passed, register the candidate model directory
  (its exact files, logged as artifacts of the tier's MLflow run) and point `challenger`
  at that version. An unchanged model (same SHA-256 of its files) reuses its version.
- `promote`: point `champion` at the version `challenger` names (`mlci promote`, or the
  TUI's promote key after a confirmation).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.engine.config.loader import Config
from mlci.engine.config.mlflow_sqlite import version_files
from mlci.engine.config.tracking_store import quiet_mlflow, sqlite_path, unreachable_reason
from mlci.engine.errors import MlciError
from mlci.engine.events import GateReport
from mlci.engine.gates.baseline import CHAMPION

__all__ = [
    "CANDIDATE_ARTIFACT_PATH",
    "CHALLENGER",
    "AliasState",
    "Promotion",
    "Registration",
    "alias_state",
    "download_version",
    "model_digest",
    "promote",
    "register_challenger",
    "register_if_passed",
]

CHALLENGER = "challenger"
"""The alias of the newest model that passed every gate, waiting for promotion."""
CANDIDATE_ARTIFACT_PATH = "mlci_candidate"
"""Where, among the run's artifacts, the registered candidate's files are logged."""
DIGEST_TAG = "mlci.model_sha256"
"""Model version tag: SHA-256 of the model directory's files, so an unchanged model is not registered twice."""


@dataclass(frozen=True)
class Registration:
    """The version `challenger` now points at."""

    name: str
    version: str
    run_id: str
    reused: bool
    """True when an identical model was registered before and that version was reused."""

    def describe(self) -> str:
        how = "already registered" if self.reused else "registered"
        return f"{self.name} v{self.version} {how}, alias {CHALLENGER} set"


@dataclass(frozen=True)
class AliasState:
    name: str
    champion: str | None
    challenger: str | None


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    previous: str | None
    """The version `champion` named before, None when there was none."""

    @property
    def changed(self) -> bool:
        return self.previous != self.version

    def describe(self) -> str:
        if not self.changed:
            return f"{self.name} v{self.version} is already {CHAMPION}"
        before = f"v{self.previous}" if self.previous else "no version"
        return f"{self.name}: {CHAMPION} moved from {before} to v{self.version}"


def _client(config: Config) -> Any:
    uri = config.mlflow.tracking_uri
    reason = unreachable_reason(uri)
    if reason is not None:
        raise MlciError(f"MLflow tracking store unreachable: {reason}")
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def model_digest(path: Path) -> str:
    """SHA-256 over the model directory's relative paths and contents (a file model: its contents)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        digest.update(b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _git_head(root: Path) -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _experiment_id(client: Any, config: Config) -> str:
    found = client.get_experiment_by_name(config.mlflow.experiment)
    if found is not None:
        return str(found.experiment_id)
    db = sqlite_path(config.mlflow.tracking_uri)
    # Beside the database, not in whatever directory mlci happens to run from.
    location = (db.resolve().parent / "mlruns").as_uri() if db is not None else None
    return str(client.create_experiment(config.mlflow.experiment, artifact_location=location))


def _existing_version(client: Any, name: str, digest: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return None
    return next((v for v in versions if (v.tags or {}).get(DIGEST_TAG) == digest), None)


def register_challenger(
    config: Config, model_dir: Path, *, run_id: str | None = None, report: GateReport | None = None
) -> Registration:
    """Register `model_dir` and set `challenger` to it; refuses a report with a failing gate.

    `run_id` is the model tier's MLflow run (the one training logged into); the model's files
    are logged there. Without one, mlci makes a run "mlci candidate" in the config's experiment.
    """
    if report is not None and not report.passed:
        failing = sum(not r.passed for r in report.results)
        raise MlciError(f"not registered: {failing} gate(s) fail" if failing else "not registered: no gate ran")
    if not (model_dir / "MLmodel").is_file():
        raise MlciError(f"not registered: {model_dir} is not an MLflow model (no MLmodel file)")
    client = _client(config)
    from mlflow.exceptions import MlflowException

    name = config.mlflow.model_name
    digest = model_digest(model_dir)
    version = _existing_version(client, name, digest)
    reused = version is not None
    if version is None:
        if run_id is None:
            run = client.create_run(_experiment_id(client, config), run_name="mlci candidate")
            run_id = str(run.info.run_id)
            client.log_artifacts(run_id, str(model_dir), CANDIDATE_ARTIFACT_PATH)
            client.set_terminated(run_id)
        else:
            client.log_artifacts(run_id, str(model_dir), CANDIDATE_ARTIFACT_PATH)
        with contextlib.suppress(MlflowException):  # it exists already: the usual case
            client.create_registered_model(name)
        tags = {DIGEST_TAG: digest, "mlci.gates": "passed"}
        head = _git_head(config.root)
        if head:
            tags["mlci.git_commit"] = head
        version = client.create_model_version(
            name, source=f"runs:/{run_id}/{CANDIDATE_ARTIFACT_PATH}", run_id=run_id, tags=tags
        )
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return Registration(name, str(version.version), str(version.run_id or run_id or ""), reused)


def _version_of(client: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def alias_state(config: Config) -> AliasState:
    """Which versions `champion` and `challenger` name (for a confirmation prompt)."""
    client = _client(config)
    name = config.mlflow.model_name
    return AliasState(name, _version_of(client, name, CHAMPION), _version_of(client, name, CHALLENGER))


def promote(config: Config) -> Promotion:
    """Move `champion` to the version `challenger` names; `challenger` itself stays where it is."""
    client = _client(config)
    name = config.mlflow.model_name
    challenger = _version_of(client, name, CHALLENGER)
    if challenger is None:
        raise MlciError(
            f"nothing to promote: registered model {name!r} has no {CHALLENGER} "
            f"(a model tier run whose gates all pass sets it)"
        )
    previous = _version_of(client, name, CHAMPION)
    if previous != challenger:
        client.set_registered_model_alias(name, CHAMPION, challenger)
    return Promotion(name, challenger, previous)


def download_version(config: Config, name: str, version: str, dst: Path) -> Path:
    """Download a registered model version's files into `dst`; returns the model directory.

    From a sqlite store whose artifacts are on this disk the files are copied as MLflow's client would
    download them (`dst/<the folder's name>`), without opening MLflow's SQLAlchemy store (half a second).
    """
    db = sqlite_path(config.mlflow.tracking_uri)
    if db is not None and db.is_file():
        try:
            files = version_files(db, name, version)
        except sqlite3.Error:
            files = None  # a schema this does not know: MLflow's client below
        if files is not None:
            return Path(shutil.copytree(files, dst / files.name))
    client = _client(config)
    import mlflow.artifacts

    # Resolve models:/ here: download_artifacts would look it up in the default registry, not ours.
    uri = client.get_model_version_download_uri(name, version)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=str(dst), tracking_uri=config.mlflow.tracking_uri
    )
    return Path(local)


def register_if_passed(config: Config, report: GateReport, *, run_id: str | None = None) -> Registration | None:
    """The model tier's last step: register the candidate as `challenger` when every gate passed, else None.

    The candidate is the model the gates judged (see `eval_target`); `run_id` is the tier's MLflow run.
    """
    if not report.passed:
        return None
    from mlci.engine.gates.eval_target import find_eval_target

    target = find_eval_target(config.root, config.gates.evaluation if config.gates else None)
    if target.model_dir is None:
        raise MlciError(f"not registered: {target.model_why}")
    return register_challenger(config, target.model_dir, run_id=run_id, report=report)
