"""Shared fixtures: a demo sandbox (real git, DVC, MLflow, bare remote), built once per run."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tmux import Tmux, tmux_available

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo sandbox built by `build_sandbox`, once per test session. Do not modify it."""
    from mlci.engine.demo import build_sandbox

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
    subprocess.run(
        ["git", "remote", "set-url", "origin", str(dest / ".sandbox" / "remote.git")], cwd=dest, check=True
    )
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "modify", "--local", "local", "url",
         str(dest / ".sandbox" / "dvc-remote")],
        cwd=dest, check=True, capture_output=True,
    )
    return dest


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
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_RUN_ID", None)
    env["NO_COLOR"] = "1"
    return env
