"""The real `mlci-tui` binary on a demo sandbox, driven through tmux and read off the screen."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.loop_projects import living_processes, processes_in, temporary_files, wait_until
from tests.tmux import Tmux

pytestmark = pytest.mark.e2e

MLCI_TUI = str(Path(sys.executable).parent / "mlci-tui")


def open_tui(tmux: Tmux, project: Path, env: dict[str, str] | None = None) -> str:
    tmux.start([MLCI_TUI, str(project)], env={"NO_COLOR": "1", **(env or {})})
    return tmux.wait_for("watching", timeout=120)


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True).stdout.strip()


def points_on_screen(screen: str) -> int:
    match = re.search(r"· (\d+) points", screen)
    return int(match.group(1)) if match else 0


def test_training_curve_grows_on_screen_while_the_model_tier_trains(sandbox: Path, tmux: Tmux) -> None:
    # The metrics panel's status line ("MLflow run … · N metrics · N points") is cut short in
    # the wide layout's right column below about 195 columns.
    tmux.width = 200
    open_tui(tmux, sandbox)
    params = sandbox / "params.yaml"
    params.write_text(params.read_text().replace("lr: 0.0001", "lr: 0.0002"))
    tmux.wait_for("MLflow run", timeout=240)
    deadline = time.monotonic() + 240
    first = 0
    while time.monotonic() < deadline and first == 0:
        first = points_on_screen(tmux.capture())
        time.sleep(0.2)
    assert first > 0, tmux.capture()
    later = first
    while time.monotonic() < deadline and later <= first:
        screen = tmux.capture()
        later = points_on_screen(screen)
        if "model ● passed" in screen or "model ✖ failed" in screen:
            break
        time.sleep(0.2)
    assert later > first, f"the curve did not grow past {first} points:\n{tmux.capture()}"
    screen = tmux.wait_for("model ● passed", timeout=300)
    assert "why: param train.lr of stage" in screen  # the rest of the line wraps
    assert "Gates" in screen and "gates pass" in screen


@pytest.mark.parametrize("how", ["q", "closing the terminal"])
def test_quitting_during_a_run_leaves_no_process_and_no_temporary_file(
    sandbox: Path, tmux: Tmux, tmp_path: Path, how: str
) -> None:
    temp = tmp_path / "temp"  # the dashboard's TMPDIR: where its private index and the runs' reports live
    temp.mkdir()
    open_tui(tmux, sandbox, env={"TMPDIR": str(temp)})
    reached = sandbox.parent / "hang-reached"  # outside the project: not a change the dashboard would see
    (sandbox / "tests" / "unit" / "test_hang.py").write_text(
        f"import pathlib, time\n\n\ndef test_hangs():\n    pathlib.Path({str(reached)!r}).touch()\n"
        "    time.sleep(600)\n"
    )
    tmux.wait_for("code  ◐ running", timeout=120)
    # pytest has reached the hanging test (whichever run: the edit may land in mlci's first plan or supersede it).
    wait_until(reached.exists, timeout=120, what="the code tier reaching the hanging test")
    assert processes_in(sandbox), "the code tier should be running in the project"
    assert list(temp.glob("mlci-watch-*")), "the watcher's private index should be in TMPDIR"
    if how == "q":
        tmux.send_keys("q")
        tmux.wait_until_dead(timeout=60)
    else:
        pid = tmux.close_terminal()
        wait_until(lambda: living_processes([pid]) == [], timeout=60, what="the dashboard ending on SIGHUP")
    assert processes_in(sandbox) == []
    assert temporary_files(temp) == [], "a temporary file of the dashboard's was left behind"


def test_push_from_the_tui_shows_progress_and_sets_the_upstream(sandbox: Path, tmux: Tmux) -> None:
    git(sandbox, "checkout", "-q", "-b", "feature/readme")
    (sandbox / "NOTES.md").write_text("Notes for the demo.\n")
    git(sandbox, "add", "NOTES.md")
    git(sandbox, "commit", "-q", "-m", "Add demo notes")
    remote = sandbox / ".sandbox" / "remote.git"
    tmux.width = 200  # the Push & CI column wraps "pushed 1 commit to origin/feature/readme" below that
    open_tui(tmux, sandbox)
    tmux.send_keys("p")
    # The dialog's lowest line: a capture can catch a frame half-written, and tmux takes it top to bottom.
    screen = tmux.wait_for("Pre-push check: runs first", timeout=60)
    assert "1 commit to push" in screen
    assert "feature/readme → origin" in screen
    assert "Add demo notes" in screen
    tmux.send_keys("Enter")
    screen = tmux.wait_for("pushed 1 commit to origin/feature/readme", timeout=400)
    assert "pre-push check passed" in screen
    assert git(sandbox, "rev-parse", "--abbrev-ref", "feature/readme@{upstream}") == "origin/feature/readme"
    remote_head = subprocess.run(
        ["git", "--git-dir", str(remote), "rev-parse", "feature/readme"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert remote_head == git(sandbox, "rev-parse", "HEAD")
    tmux.send_keys("q")
    tmux.wait_until_dead(timeout=60)
