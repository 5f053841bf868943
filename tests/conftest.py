"""Shared fixtures: a demo sandbox (real git, DVC, MLflow, bare remote), built once per run."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tmux import Tmux, tmux_available

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo sandbox built by `build_sandbox`, once per test session. Do not modify it."""
    from mlci.engine.demo.sandbox import build_sandbox

    return build_sandbox(tmp_path_factory.mktemp("template") / "sandbox", progress=lambda _: None)


@pytest.fixture
def sandbox(sandbox_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo sandbox for one test: its own git repository, DVC cache and MLflow store.

    The copy's remotes still point at the template's `.sandbox/` (absolute paths in git and
    DVC config), so they are re-pointed at the copy's own.
    """
    import subprocess

    dest = tmp_path / "sandbox"
    shutil.copytree(sandbox_template, dest, symlinks=True)
    subprocess.run(["git", "remote", "set-url", "origin", str(dest / ".sandbox" / "remote.git")], cwd=dest, check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dvc",
            "remote",
            "modify",
            "--local",
            "local",
            "url",
            str(dest / ".sandbox" / "dvc-remote"),
        ],
        cwd=dest,
        check=True,
        capture_output=True,
    )
    _repoint_mlflow_store(dest / "mlflow.db", str(sandbox_template), str(dest))
    return dest


def _repoint_mlflow_store(db: Path, old: str, new: str) -> None:
    """Rewrite the copied store's absolute artifact locations from the template to the copy.

    Without it, runs and registrations made in a copy would write into the template's
    `mlruns/`, and tests would see each other's models.
    """
    import sqlite3

    with sqlite3.connect(db) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [
                row[1]
                for row in conn.execute(f"PRAGMA table_info('{table}')")
                if row[2].upper() in ("TEXT", "VARCHAR") or row[2].upper().startswith("VARCHAR")
            ]
            for column in columns:
                conn.execute(
                    f'UPDATE \'{table}\' SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                    (old, new, old),
                )


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if not tmux_available():
        pytest.fail("tmux is required for the end-to-end tests (make test installs it)")
    session = Tmux()
    yield session
    session.kill()


@pytest.fixture
def tool_env() -> dict[str, str]:
    """The environment for running the installed `mlci`/`mlci-tui` binaries in subprocesses."""
    from mlci.engine.run.tool_env import tool_env as project_env

    env = project_env({"NO_COLOR": "1"})
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_RUN_ID", None)
    return env
