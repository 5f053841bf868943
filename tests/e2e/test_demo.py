"""The demo sandbox is a real, clean project, and `make demo`/`mlci-tui` open on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.tmux import Tmux

pytestmark = pytest.mark.e2e


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dvc", *args], cwd)


def test_sandbox_is_clean_in_git_and_dvc(sandbox: Path) -> None:
    # On a copy: `git status` and `dvc status` write lock and state files, and other workers
    # copy the template at the same time. The copy is the template's files, byte for byte.
    status = run(["git", "status", "--porcelain"], sandbox)
    assert status.returncode == 0 and status.stdout == ""
    assert dvc("status", cwd=sandbox).stdout.strip() in ("Data and pipelines are up to date.", "")
    log = run(["git", "log", "--format=%s"], sandbox).stdout.splitlines()
    assert log == ["Train the baseline model (quick mode)", "Sample credit-default project"]


def test_sandbox_pipeline_is_up_to_date(sandbox: Path, tool_env: dict[str, str]) -> None:
    repro = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=sandbox, capture_output=True, text=True, env=tool_env
    )
    assert repro.returncode == 0, repro.stderr
    assert "Running stage" not in repro.stdout
    assert run(["git", "status", "--porcelain"], sandbox).stdout == ""


def test_sandbox_remote_has_main_with_upstream(sandbox_template: Path) -> None:
    upstream = run(["git", "rev-parse", "--abbrev-ref", "main@{upstream}"], sandbox_template)
    assert upstream.stdout.strip() == "origin/main"
    local = run(["git", "rev-parse", "main"], sandbox_template).stdout
    remote = run(
        ["git", "--git-dir", str(sandbox_template / ".sandbox" / "remote.git"), "rev-parse", "main"], sandbox_template
    ).stdout
    assert local == remote
    assert (sandbox_template / ".sandbox" / "dvc-remote").is_dir()


def test_sandbox_registry_has_a_champion(sandbox_template: Path) -> None:
    code = (
        "import sys\n"
        "from mlflow.tracking import MlflowClient\n"
        "client = MlflowClient(sys.argv[1])\n"
        "v = client.get_model_version_by_alias('credit-default', 'champion')\n"
        "print(v.version, v.status)\n"
    )
    uri = f"sqlite:///{sandbox_template / 'mlflow.db'}"
    result = run([sys.executable, "-c", code, uri], sandbox_template)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "READY"]


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = run([sys.executable, "-m", "mlci.engine", "demo", str(tmp_path)], tmp_path)
    assert result.returncode == 1
    assert "is not empty" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_mlci_config_on_the_sandbox(sandbox: Path) -> None:
    result = run([sys.executable, "-m", "mlci.engine", "config"], sandbox)
    assert result.returncode == 0, result.stderr
    assert 'mlflow.model_name = "credit-default"    # written (mlci.yaml:' in result.stdout
    assert 'tiers.data.tests = ["tests/data"]    # inferred (tests/data exists)' in result.stdout
    assert "# gates: model_gates.yaml (valid)" in result.stdout


def test_tui_opens_on_the_sandbox_and_quits(sandbox: Path, tmux: Tmux, tool_env: dict[str, str]) -> None:
    tmux.start([str(Path(sys.executable).parent / "mlci-tui"), str(sandbox)], env={"NO_COLOR": "1"})
    screen = tmux.wait_for("⎇ main")
    assert "origin/main" in screen
    for tier in ("code", "data", "model"):
        assert tier in screen
    assert "q Quit" in screen
    tmux.send_keys("q")
    tmux.wait_until_dead()


def test_make_demo_opens_the_tui_on_a_new_sandbox(tmp_path: Path, tmux: Tmux) -> None:
    target = tmp_path / "demo"
    tmux.start(["make", "-s", "-C", str(REPO), "demo", f"DEMO_DIR={target}"])
    screen = tmux.wait_for("⎇ main", timeout=400)
    assert "mlci demo" in screen
    tmux.send_keys("q")
    tmux.wait_until_dead()
    assert (target / "mlflow.db").is_file()
    assert run(["git", "status", "--porcelain"], target).stdout == ""
