"""The push confirmation screen and the push & CI panel, in small host apps; the real push path in the dashboard.

The last tests drive the dashboard itself (`MlciApp` with its session) on a real repository
and a real bare remote: `p` asks the session for the plan, the confirmation shows it, and
the session checks the commit with real pytest runs, pushes it, and reports each step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import CiJob, CiRun, CiStatus, PushCommit, PushPlan, PushProgress, Tier
from mlci.tui.app import MlciApp
from mlci.tui.components.ci_panel import CiPanel
from mlci.tui.components.tier_panel import TierPanel
from mlci.tui.screens.push_confirm_screen import PushConfirmScreen, PushDecision
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Static

from tests.gitrepos import commit, git, isolated_git, make_repo, refs, tiny_project

SIZE = (120, 36)


def _plan(**changes: object) -> PushPlan:
    values: dict[str, object] = {
        "root": Path("/project"),
        "branch": "feature/scaling",
        "remote": "origin",
        "remote_url": "git@github.com:acme/credit.git",
        "head": "4f1c2e9a7b3d5c6e8f90a1b2c3d4e5f6a7b8c9d0",
        "commits": (
            PushCommit("4f1c2e9", "scale features before training", "Ada Tester"),
            PushCommit("9b0d3a1", "add a unit test for the scaler", "Ada Tester"),
        ),
        "total_commits": 2,
        "new_branch": True,
        "upstream": None,
        "uncommitted": 3,
    }
    values.update(changes)
    return PushPlan(**values)  # type: ignore[arg-type]


class ScreenHost(App[None]):
    """Opens the confirmation at once and keeps what it was dismissed with."""

    def __init__(self, plan: PushPlan, *, no_verify: bool = False) -> None:
        super().__init__()
        self.plan = plan
        self.no_verify = no_verify
        self.decisions: list[PushDecision | None] = []

    def compose(self) -> ComposeResult:
        yield Static("dashboard")

    def on_mount(self) -> None:
        self.push_screen(PushConfirmScreen(self.plan, no_verify=self.no_verify), self.decisions.append)


PUSH_EVENTS = (
    PushProgress(stage="check", message="running the pre-push check (mlci check)"),
    PushProgress(stage="check", message="pre-push check passed", ok=True),
    PushProgress(stage="push", message="push 2 commits of main to origin/main", percent=0.0),
    PushProgress(stage="push", message="Counting objects 2/5", percent=40.0),
    PushProgress(stage="push", message="Counting objects 5/5", percent=100.0),
    PushProgress(stage="push", message="Writing objects 3/7", percent=42.857),
)
CI_RUN = CiRun(
    provider="github",
    run_id="1",
    name="mlci",
    status="in_progress",
    conclusion=None,
    jobs=(CiJob("code tier", "completed", "success"), CiJob("full training and gates (GPU)", "in_progress")),
)


class PanelHost(App[None]):
    def __init__(self, events: tuple[object, ...]) -> None:
        super().__init__()
        self.events = events

    def compose(self) -> ComposeResult:
        yield CiPanel()

    def on_mount(self) -> None:
        for event in self.events:
            self.query_one(CiPanel).handle(event)  # type: ignore[arg-type]


def _text(app: App[None], selector: str | type) -> str:
    widget = app.screen.query_one(selector)  # type: ignore[call-overload]
    rendered = widget.render()
    return str(getattr(rendered, "plain", rendered))


def _panel_text(panel: CiPanel) -> str:
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(panel.render())
    return console.export_text()


# --- snapshots -----------------------------------------------------------------------------


def test_snapshot_confirmation_narrow(snap_compare) -> None:
    assert snap_compare(ScreenHost(_plan()), terminal_size=(80, 24))


def test_snapshot_confirmation_no_verify_wide(snap_compare) -> None:
    assert snap_compare(
        ScreenHost(_plan(new_branch=False, upstream="origin/main", uncommitted=0), no_verify=True),
        terminal_size=(160, 40),
    )


def test_snapshot_panel_pushing_narrow(snap_compare) -> None:
    assert snap_compare(PanelHost(PUSH_EVENTS), terminal_size=(80, 24))


def test_snapshot_panel_following_ci_wide(snap_compare) -> None:
    done = PushProgress(
        stage="done", message="pushed 2 commits to origin/main; main now tracks origin/main", percent=100.0, ok=True
    )
    events = (*PUSH_EVENTS, done, CiStatus(sha="4f1c2e9a7b3d", runs=(CI_RUN,)))
    assert snap_compare(PanelHost(events), terminal_size=(160, 40))


# --- behaviour -----------------------------------------------------------------------------


def test_confirmation_shows_what_will_be_pushed_and_confirms() -> None:
    asyncio.run(_confirmation_shows_what_will_be_pushed_and_confirms())


async def _confirmation_shows_what_will_be_pushed_and_confirms() -> None:
    app = ScreenHost(_plan())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, PushConfirmScreen)
        heading = _text(app, "#heading")
        assert "Push feature/scaling → origin" in heading and "git@github.com:acme/credit.git" in heading
        assert "will track origin/feature/scaling" in heading
        commits = str(app.screen.query_one("#commits Static").render())
        assert "2 commits to push" in commits and "scale features before training" in commits
        assert "3 uncommitted changes will not be pushed" in _text(app, "#warnings")
        assert "Pre-push check: runs first" in _text(app, "#check")
        await pilot.press("y")
        await pilot.pause()
    assert app.decisions == [PushDecision(plan=app.plan, no_verify=False)]


def test_skipping_the_check_is_said_plainly() -> None:
    asyncio.run(_skipping_the_check_is_said_plainly())


async def _skipping_the_check_is_said_plainly() -> None:
    app = ScreenHost(_plan())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        assert "SKIPPED (--no-verify)" in _text(app, "#check")
        await pilot.click("#push")
        await pilot.pause()
    assert app.decisions == [PushDecision(plan=app.plan, no_verify=True)]


def test_cancel_pushes_nothing() -> None:
    asyncio.run(_cancel_pushes_nothing())


async def _cancel_pushes_nothing() -> None:
    app = ScreenHost(_plan())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PushConfirmScreen)
    assert app.decisions == [None]


def test_panel_folds_progress_and_ci_runs() -> None:
    asyncio.run(_panel_folds_progress_and_ci_runs())


async def _panel_folds_progress_and_ci_runs() -> None:
    app = PanelHost(PUSH_EVENTS)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(CiPanel)
        text = _panel_text(panel)
        # The two updates of "Counting objects" are one line; the bar shows the current step.
        assert text.count("Counting objects") == 1 and "Counting objects 5/5" in text
        assert "Writing objects 3/7" in text and "43%" in text
        panel.handle(PushProgress(stage="done", message="pushed 2 commits to origin/main", ok=True, percent=100.0))
        panel.handle(CiStatus(sha="4f1c2e9a7b3d", runs=(CI_RUN,)))
        await pilot.pause()
        text = _panel_text(panel)
        assert "✔ pushed 2 commits to origin/main" in text and "%" not in text
        assert "Remote CI for 4f1c2e9a" in text
        assert "code tier  success" in text and "full training and gates (GPU)  in progress" in text
        panel.handle(CiStatus(sha="4f1c2e9a7b3d", runs=(), message="no GitHub token: set GITHUB_TOKEN; not following"))
        await pilot.pause()
        assert "no GitHub token" in _panel_text(panel)
        # A new push starts the panel afresh, and a skipped check stays in view.
        panel.handle(PushProgress(stage="check", message="pre-push check SKIPPED (--no-verify)"))
        await pilot.pause()
        text = _panel_text(panel)
        assert "pre-push check SKIPPED (--no-verify)" in text and "Remote CI" not in text


# --- the real path: the dashboard's own session checks, pushes, follows (real git, bare remote, pytest) ---


@pytest.fixture
def pushable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    isolated_git(monkeypatch, tmp_path)
    work_dir, bare = make_repo(tmp_path)
    tiny_project(work_dir, failing=False)
    return work_dir, bare


async def _wait(pilot: Pilot[int], condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s")


async def _confirm_push(app: MlciApp, pilot: Pilot[int], *, expect: str) -> None:
    await _wait(pilot, lambda: app.session is not None and app.session.alive, "the session to start")
    await pilot.press("p")
    await _wait(pilot, lambda: isinstance(app.screen, PushConfirmScreen), "the confirmation")
    assert expect in str(app.screen.query_one("#commits Static").render())
    await pilot.press("y")


def test_push_from_the_dashboard_runs_through_its_own_session(pushable: tuple[Path, Path]) -> None:
    asyncio.run(_push_from_the_dashboard_runs_through_its_own_session(*pushable))


async def _push_from_the_dashboard_runs_through_its_own_session(work_dir: Path, bare: Path) -> None:
    app = MlciApp(load_config(work_dir))
    async with app.run_test(size=SIZE) as pilot:
        await _confirm_push(app, pilot, expect="2 commits to push")
        panel = app.query_one(CiPanel)
        await _wait(pilot, lambda: panel.push_ok is not None, "the push to end")
        assert panel.push_ok is True, [line.message for line in panel.push_lines]
        messages = [line.message for line in panel.push_lines]
        assert messages[0].startswith("running the pre-push check of ") and "pre-push check passed" in messages
        assert messages[-1] == "pushed 2 commits to origin/main; main now tracks origin/main"
        # The check's code tier ran on the dashboard's own tier panel, numbered by its session.
        code = app.query_one(TierPanel).row(Tier.CODE)
        assert code is not None and code.status == "passed" and "pre-push check of" in code.trigger
    assert git(bare, "rev-parse", "main") == git(work_dir, "rev-parse", "HEAD")
    assert git(work_dir, "rev-parse", "--abbrev-ref", "main@{upstream}") == "origin/main"


def test_x_cancels_the_push_check_and_nothing_is_pushed(pushable: tuple[Path, Path]) -> None:
    asyncio.run(_x_cancels_the_push_check_and_nothing_is_pushed(*pushable))


async def _x_cancels_the_push_check_and_nothing_is_pushed(work_dir: Path, bare: Path) -> None:
    commit(work_dir, "tests/unit/test_slow.py", "import time\n\n\ndef test_slow():\n    time.sleep(600)\n", "slow test")
    before = refs(bare)
    app = MlciApp(load_config(work_dir))
    async with app.run_test(size=SIZE) as pilot:
        await _confirm_push(app, pilot, expect="3 commits to push")
        session = app.session
        assert session is not None
        await _wait(pilot, lambda: bool(session.running_pgids()), "the check's code tier to start")
        await pilot.press("x")
        panel = app.query_one(CiPanel)
        await _wait(pilot, lambda: panel.push_ok is not None, "the push to end")
        assert panel.push_ok is False
        assert "the check was cancelled" in panel.push_lines[-1].message
        assert "nothing was pushed" in panel.push_lines[-1].message
        # The dashboard's own start-up run of the code tier was cancelled by the same `x`; its
        # group may still be on its way out when the check (which never started) has ended.
        await _wait(pilot, lambda: not session.running_pgids(), "the cancelled runs to end")
    assert refs(bare) == before
