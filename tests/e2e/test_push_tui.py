"""The dashboard's push on the real `mlci-tui` binary (tmux): one session, no tier twice at once, `x`, `q`.

The push's check runs in the dashboard's own session, in a temporary worktree of the
pushed commit (the watcher runs: an edit during the check must not mix in). A unit test
of the pushed commit sleeps when it runs in that worktree, so there is time to edit,
cancel and quit while the check runs.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.loop_projects import MARKER_ENV
from tests.tmux import Tmux

pytestmark = pytest.mark.e2e

MLCI_TUI = str(Path(sys.executable).parent / "mlci-tui")

SLOW_IN_THE_CHECK = """
import os
import time


def test_takes_its_time_in_the_pushs_check():
    # Only in the check's worktree: the dashboard's own runs of the tree stay quick.
    if "mlci-check-" in os.getcwd():
        time.sleep(300)
"""


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=True).stdout.strip()


def remote_refs(sandbox: Path) -> str:
    bare = sandbox / ".sandbox" / "remote.git"
    return git(bare, "for-each-ref", "--format=%(refname) %(objectname)")


MARKER = f"push-tui-{uuid.uuid4().hex}"
"""In the dashboard's environment, so in every process it starts: other tests' checks run beside this one."""


def processes_of(sandbox: Path) -> list[tuple[str, str]]:
    """(cwd, command) of processes working in the project or in its check's worktree: what a run would leave."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            ours = f"{MARKER_ENV}={MARKER}".encode() in (entry / "environ").read_bytes().split(b"\0")
            if cwd == str(sandbox) or ("/mlci-check-" in cwd and ours):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append((cwd, command))
        except OSError:
            continue
    return found


def wait_until(condition: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(0.2)


def check_is_testing(sandbox: Path) -> bool:
    cold_pytest = " -m mlci.engine.run.pytest_main "
    return any("/mlci-check-" in cwd and cold_pytest in command for cwd, command in processes_of(sandbox))


def overlapping_runs(sandbox: Path) -> list[tuple[str, int, int]]:
    """Pairs of runs of the same tier whose lifetimes overlap, from the dashboard's run history."""
    with sqlite3.connect(sandbox / ".mlci" / "history.sqlite") as conn:
        rows = conn.execute(
            "SELECT tier, run_id, started, finished FROM tier_runs WHERE started IS NOT NULL ORDER BY started"
        ).fetchall()
    overlaps = []
    for i, (tier, run_id, _started, finished) in enumerate(rows):
        for other_tier, other_id, other_started, _ in rows[i + 1 :]:
            if other_tier == tier and other_started < (finished or float("inf")):
                overlaps.append((tier, run_id, other_id))
    return overlaps


def push_and_confirm(tmux: Tmux, commits: str) -> None:
    tmux.send_keys("p")
    tmux.wait_for(commits, timeout=60)
    tmux.send_keys("Enter")
    tmux.wait_for("running the pre-push check of", timeout=60)


def test_push_check_in_the_dashboard_edit_cancel_and_quit(sandbox: Path, tmux: Tmux) -> None:
    git(sandbox, "checkout", "-q", "-b", "feature/slow")
    (sandbox / "tests" / "unit" / "test_slow_in_check.py").write_text(SLOW_IN_THE_CHECK.lstrip())
    git(sandbox, "add", "tests/unit/test_slow_in_check.py")
    git(sandbox, "commit", "-q", "-m", "A test that takes its time in the check")
    before = remote_refs(sandbox)
    tmux.start([MLCI_TUI, str(sandbox)], env={"NO_COLOR": "1", MARKER_ENV: MARKER})
    tmux.wait_for("watching", timeout=120)

    # The first push: an edit during its check, then `x`.
    push_and_confirm(tmux, "1 commit to push")
    wait_until(lambda: check_is_testing(sandbox), "the check's pytest in its worktree", timeout=240)
    drift = sandbox / "src" / "credit" / "drift.py"
    drift.write_text(drift.read_text() + "\n# edited while the push's check runs\n")
    time.sleep(3)  # the watcher's code tier is planned now; it must wait for the check's
    tmux.send_keys("x")
    screen = tmux.wait_for("nothing was pushed", timeout=60)
    assert "pre-push check failed (the check" in screen  # "...was cancelled)", wrapped on the panel
    assert remote_refs(sandbox) == before
    wait_until(lambda: not check_is_testing(sandbox), "the check's processes to end", timeout=60)

    # The second push: `q` while its check runs.
    push_and_confirm(tmux, "1 commit to push")
    wait_until(lambda: check_is_testing(sandbox), "the second check's pytest", timeout=240)
    tmux.send_keys("q")
    tmux.wait_until_dead(timeout=150)  # the session's stop waits up to 30 s per step; the machine is shared

    assert processes_of(sandbox) == []
    assert remote_refs(sandbox) == before
    assert len(git(sandbox, "worktree", "list").splitlines()) == 1  # the check's worktrees are gone
    assert overlapping_runs(sandbox) == []
    assert git(sandbox, "status", "--porcelain") == "M src/credit/drift.py"
