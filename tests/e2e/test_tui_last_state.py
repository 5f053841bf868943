"""The real `mlci-tui` opens on the last known state of a demo sandbox, at 80x24 and at 160x45 (tmux)."""

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


def _earlier_session(project: Path, env: dict[str, str]) -> None:
    """Every tier once, headless, as yesterday's session would have: verdicts and a gate report in the history."""
    result = subprocess.run([MLCI, "run", str(project)], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _quit(tmux: Tmux) -> None:
    tmux.send_keys("q")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "mlci" in tmux.capture():
        time.sleep(0.2)


def test_the_dashboard_opens_on_the_last_known_state_and_marks_it_stale_after_an_edit(
    sandbox: Path, tmux: Tmux, tool_env: dict[str, str]
) -> None:
    _earlier_session(sandbox, tool_env)
    env = {"NO_COLOR": "1"}

    # A projector: one panel at a time; the tier panel and the strip come first, no key pressed.
    small = Tmux(width=80, height=24)
    try:
        small.start([MLCI_TUI, str(sandbox)], env=env)
        screen = small.wait_for("last: passed", timeout=120)
        assert "data ● passed" in screen or "data" in screen.splitlines()[1]
        small.send_keys("3")
        screen = small.wait_for("judged", timeout=60)
        assert "gates pass" in screen
        small.send_keys("4")
        small.wait_for("MLflow run", timeout=120)
        _quit(small)
    finally:
        small.kill()

    # Beside the editor: everything at once.
    tmux.width, tmux.height = 160, 45
    tmux.start([MLCI_TUI, str(sandbox)], env=env)
    screen = tmux.wait_for("judged", timeout=120)
    assert "last: passed" in screen and "gates pass" in screen
    tmux.wait_for("MLflow run", timeout=120)
    assert "stale" not in tmux.capture()

    # An edit that the model depends on: the gates judged an older model until the model tier runs again.
    features = sandbox / "src" / "credit" / "features.py"
    features.write_text(features.read_text() + "\n# an edit\n")
    screen = tmux.wait_for("stale", timeout=120)
    assert "older model" in screen.replace("\n", " ") or "stale" in screen
