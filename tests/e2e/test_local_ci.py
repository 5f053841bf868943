"""CI you can follow offline: the demo sandbox's remote checks each push, and the dashboard follows it (tmux)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tmux import Tmux

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
MLCI, MLCI_TUI = str(BIN / "mlci"), str(BIN / "mlci-tui")


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True).stdout.strip()


def _switch_local_ci_on(sandbox: Path, env: dict[str, str]) -> None:
    """What `mlci demo` does (the test fixture switched it off), through the command a team would use."""
    result = subprocess.run(
        [MLCI, "ci", "init", "--provider", "local", "--dvc-remote", str(sandbox / ".sandbox" / "dvc-remote")],
        cwd=sandbox,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _ci_status(sandbox: Path, sha: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLCI, "ci", "status", "--sha", sha, "--interval", "1", str(sandbox)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=900,
    )


def test_a_push_from_the_dashboard_is_followed_to_green_and_a_red_push_to_red(
    sandbox: Path, tmux: Tmux, tool_env: dict[str, str]
) -> None:
    _switch_local_ci_on(sandbox, tool_env)
    git(sandbox, "checkout", "-q", "-b", "feature/readme")
    (sandbox / "README.md").write_text((sandbox / "README.md").read_text() + "\nA line for the talk.\n")
    git(sandbox, "commit", "-q", "-am", "README: a line for the talk")
    sha = git(sandbox, "rev-parse", "HEAD")

    tmux.width, tmux.height = 160, 45
    tmux.start([MLCI_TUI, str(sandbox)], env={"NO_COLOR": "1"})
    tmux.wait_for("watching", timeout=120)
    tmux.send_keys("p")
    tmux.wait_for("skip it", timeout=60)
    tmux.send_keys("v")  # this test is about the remote's CI, not the pre-push check
    tmux.send_keys("Enter")
    seen: list[str] = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        screen = tmux.capture()
        for state in ("queued", "in progress", "success", "failure"):
            if f"mlci check  {state}" in screen and (not seen or seen[-1] != state):
                seen.append(state)
        if seen and seen[-1] in ("success", "failure"):
            break
        time.sleep(0.3)
    assert seen and seen[-1] == "success", f"{seen}\n{tmux.capture()}"
    assert seen[0] in ("queued", "in progress"), seen
    screen = tmux.capture()
    for job in ("clone", "code", "data", "model"):
        assert f"{job}  success" in screen, screen
    tmux.send_keys("q")

    status = _ci_status(sandbox, sha, tool_env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "all runs passed" in status.stdout

    # A red commit, pushed past every local check: the remote's CI goes red, and says so.
    test = sandbox / "tests" / "unit" / "test_params.py"
    test.write_text(test.read_text() + "\n\ndef test_broken_on_purpose():\n    assert False\n")
    git(sandbox, "commit", "-q", "-am", "a broken test")
    red = git(sandbox, "rev-parse", "HEAD")
    git(sandbox, "push", "-q", "--no-verify", "origin", "feature/readme")
    status = _ci_status(sandbox, red, tool_env)
    assert status.returncode == 1, status.stdout + status.stderr
    assert "a run failed" in status.stdout
