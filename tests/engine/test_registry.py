"""The model registry: a passing candidate becomes challenger; only promote moves champion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.errors import MlciError
from mlci.engine.events import GateReport, GateResult
from mlci.engine.gates.registry import alias_state, promote, register_challenger, register_if_passed
from mlflow.tracking import MlflowClient

from tests.gate_projects import build_gate_project, copy_project, register_champion

PASSED = GateReport((GateResult("size", "model size <= 5 MB", True, 0.1, 5.0, "ok"),))
FAILED = GateReport((GateResult("size", "model size <= 5 MB", False, 9.0, 5.0, "too big"),))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gate_project(tmp_path_factory.mktemp("registry") / "proj")


@pytest.fixture
def project(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = copy_project(template, tmp_path / "proj")
    register_champion(root, metrics={"test_accuracy": 0.9})
    return root


def client(root: Path) -> MlflowClient:
    uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_a_passing_candidate_becomes_challenger_and_champion_stays(project: Path) -> None:
    config = load_config(project)
    registration = register_challenger(config, project / "models" / "model", report=PASSED)
    assert registration.version == "2" and not registration.reused
    assert alias_state(config) == type(alias_state(config))("tiny", "1", "2")
    version = client(project).get_model_version("tiny", "2")
    assert version.tags["mlci.gates"] == "passed" and len(version.tags["mlci.model_sha256"]) == 64
    assert version.tags["mlci.git_commit"]
    # The registered files are the candidate's own: they load and predict.
    import mlflow.artifacts
    import mlflow.pyfunc

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=client(project).get_model_version_download_uri("tiny", "2"),
        dst_path=str(project.parent / "dl"),
        tracking_uri=config.mlflow.tracking_uri,
    )
    assert (Path(local) / "MLmodel").is_file()
    assert mlflow.pyfunc.load_model(local).metadata.get_input_schema().input_names() == ["x1", "x2"]


def test_an_unchanged_candidate_reuses_its_version(project: Path) -> None:
    config = load_config(project)
    first = register_challenger(config, project / "models" / "model", report=PASSED)
    again = register_challenger(config, project / "models" / "model", report=PASSED)
    assert again.version == first.version and again.reused
    assert len(client(project).search_model_versions("name='tiny'")) == 2


def test_a_candidate_is_logged_into_the_given_run(project: Path) -> None:
    config = load_config(project)
    c = client(project)
    run = c.create_run(c.get_experiment_by_name("tiny").experiment_id)
    registration = register_challenger(config, project / "models" / "model", run_id=run.info.run_id)
    assert registration.run_id == run.info.run_id
    assert [a.path for a in c.list_artifacts(run.info.run_id)] == ["mlci_candidate"]


def test_a_failing_report_is_never_registered(project: Path) -> None:
    config = load_config(project)
    with pytest.raises(MlciError, match="not registered: 1 gate"):
        register_challenger(config, project / "models" / "model", report=FAILED)
    assert alias_state(config).challenger is None


def test_promote_moves_champion_to_the_challenger_only(project: Path) -> None:
    config = load_config(project)
    with pytest.raises(MlciError, match="nothing to promote"):
        promote(config)
    register_challenger(config, project / "models" / "model", report=PASSED)
    promotion = promote(config)
    assert promotion.describe() == "tiny: champion moved from v1 to v2"
    assert alias_state(config).champion == "2" and alias_state(config).challenger == "2"
    assert not promote(config).changed


def test_mlci_promote_needs_yes_without_a_terminal(project: Path) -> None:
    register_challenger(load_config(project), project / "models" / "model", report=PASSED)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}

    def mlci(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mlci.engine", "promote", *args, str(project)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    refused = mlci()
    assert refused.returncode == 1 and "pass --yes" in refused.stderr
    assert alias_state(load_config(project)).champion == "1"
    done = mlci("--yes")
    assert done.returncode == 0 and "champion moved from v1 to v2" in done.stdout
    assert alias_state(load_config(project)).champion == "2"


def test_an_unreachable_store_is_a_clear_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(MlciError, match=r"MLflow tracking store unreachable: cannot connect to 127\.0\.0\.1:9"):
        promote(load_config(project))


def test_the_model_tier_registers_only_a_candidate_that_passed(project: Path) -> None:
    config = load_config(project)
    assert register_if_passed(config, FAILED) is None
    assert alias_state(config).challenger is None
    registration = register_if_passed(config, PASSED)
    assert registration is not None and registration.describe() == "tiny v2 registered, alias challenger set"
