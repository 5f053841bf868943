"""A project that does not use MLflow keeps a clean tree: mlci makes no MLflow store, no run, no untracked file.

Built as a user's DVC project would be (tests/unprepared_projects.py: no MLflow, no mlci
config), then `mlci run`, `mlci check`, `mlci gates` and `mlci init` are run with the real
binary, and `git status --porcelain` is compared before and after each.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config

from tests.unprepared_projects import build_unprepared_project, copy_project, git, mlci, porcelain


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_unprepared_project(tmp_path_factory.mktemp("unprepared") / "project")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path / "project")


def _no_store(root: Path) -> None:
    assert not (root / "mlflow.db").exists()
    assert not (root / "mlruns").exists()
    assert not (root / "mlartifacts").exists()


def test_run_check_and_gates_leave_git_status_as_it_was_and_make_no_mlflow_store(project: Path) -> None:
    before = porcelain(project)
    assert before == ""
    ran = mlci(project, "run")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "model passed" in ran.stdout and "MLflow" not in ran.stdout + ran.stderr
    assert porcelain(project) == before
    checked = mlci(project, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert porcelain(project) == before
    gates = mlci(project, "gates")
    assert gates.returncode == 1  # no gate file yet, and it says how to get one
    assert "mlci gates init" in gates.stderr
    assert porcelain(project) == before
    _no_store(project)


def test_with_a_committed_gate_file_the_model_tier_judges_the_gates_and_still_leaves_no_trace(project: Path) -> None:
    assert mlci(project, "gates", "init").returncode == 0
    git(project, "add", "model_gates.yaml")
    git(project, "commit", "-q", "-m", "gates")
    before = porcelain(project)
    ran = mlci(project, "run", "--tier", "model", "--full")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # Nothing to register a candidate in, and no warning that it was not: the project does not use MLflow.
    assert "registered" not in ran.stdout + ran.stderr and "MLflow" not in ran.stdout + ran.stderr
    assert mlci(project, "gates", "-q").returncode == 0
    assert porcelain(project) == before
    _no_store(project)


def test_a_check_that_fails_before_the_model_tier_makes_no_mlflow_store_though_mlflow_is_used(project: Path) -> None:
    # The check imports MLflow's client while the tiers before the model tier run (`run.mlflow_ahead`): only the
    # import. Opening the store then would make it, in a project whose store does not exist yet, for nothing.
    (project / "mlci.yaml").write_text("mlflow:\n  experiment: credit\n")
    # Red, and slow enough that an import begun at the check's start is over before the verdict (about 2 s).
    (project / "tests" / "unit" / "test_arith.py").write_text(
        "import time\n\n\ndef test_arithmetic():\n    time.sleep(4)\n    assert 1 + 1 == 3\n"
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "red, with MLflow")
    assert load_config(project).mlflow.used
    before = porcelain(project)
    checked = mlci(project, "check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "test_arithmetic" in checked.stdout
    assert "model run" not in checked.stdout  # the model tier never started
    assert porcelain(project) == before
    _no_store(project)


def test_mlci_init_writes_the_inferred_config_that_loads_back_the_same(project: Path) -> None:
    inferred = load_config(project, with_gates=False)
    done = mlci(project, "init")
    assert done.returncode == 0, done.stderr
    assert porcelain(project) == "?? mlci.yaml\n"
    text = (project / "mlci.yaml").read_text()
    assert 'tests: ["tests/unit"]  # inferred (tests/unit exists)' in text
    assert "`mlci gates init`" in text
    assert "\nmlflow:" not in text  # written MLflow settings would make the project use a store
    written = load_config(project, with_gates=False)
    assert written.tiers == inferred.tiers
    assert written.git == inferred.git and written.runner == inferred.runner
    assert not written.mlflow.used
    again = mlci(project, "init")
    assert again.returncode == 1 and "mlci.yaml already exists: pass --force" in again.stderr
    assert mlci(project, "init", "--force").returncode == 0


@pytest.mark.parametrize(
    ("setup", "used"),
    [
        ("nothing", False),
        ("mlflow.db", True),
        ("mlruns/", True),
        ("MLFLOW_TRACKING_URI", True),
        ("mlci.yaml mlflow:", True),
    ],
)
def test_a_project_uses_mlflow_when_config_environment_or_a_store_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: str, used: bool
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    if setup == "mlflow.db":
        (tmp_path / "mlflow.db").write_bytes(b"")
    elif setup == "mlruns/":
        (tmp_path / "mlruns").mkdir()
    elif setup == "MLFLOW_TRACKING_URI":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere.db")
    elif setup == "mlci.yaml mlflow:":
        (tmp_path / "mlci.yaml").write_text("mlflow:\n  experiment: churn\n")
    config = load_config(tmp_path)
    assert config.mlflow.used is used
    assert ("unused" in str(config.origins["mlflow.tracking_uri"])) is (not used)
    assert os.environ.get("MLFLOW_TRACKING_URI") is None or used
