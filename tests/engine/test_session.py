"""The loop's policies on tiny real projects: red and green, cancel and restart, stale and rerun, hold, stop."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import (
    ChangeDetected,
    GitState,
    Notice,
    OutputLines,
    PlanMade,
    PushProgress,
    Tier,
    TierFinished,
    TierStale,
    TierStarted,
    Verdict,
)
from mlci.engine.loop.session import Session

from tests.loop_projects import (
    MARKER_ENV,
    EventLog,
    git,
    is_finished,
    make_dvc_project,
    make_project,
    processes_with_env,
    wait_until,
    write,
)

pytestmark = [
    pytest.mark.usefixtures("only_testmon"),
    pytest.mark.filterwarnings(
        # watchdog's inotify thread warns when a directory is created and renamed at once (pytest's
        # cache does that); as an error, in its thread, it would break the watch. Not ours to fix.
        "ignore:Callback with id:RuntimeWarning",
    ),
]


@pytest.fixture
def marker(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every process the session starts inherits this, so leftovers can be counted."""
    value = uuid.uuid4().hex
    monkeypatch.setenv(MARKER_ENV, value)
    return value


@contextmanager
def watching(root: Path, log: EventLog) -> Iterator[Session]:
    """A started session, watching `root`; stopped on the way out."""
    session = Session(load_config(root), emit=log)
    session.start()
    try:
        log.wait_for(lambda e: isinstance(e, Notice) and e.text.startswith("watching"), timeout=60)
        yield session
    finally:
        session.stop()


SLOW_TEST = """
import time
from value import VALUE

def test_value():
    time.sleep({sleep})
    assert VALUE == 1
"""


def test_breaking_a_test_turns_the_code_tier_red_naming_it_and_fixing_it_turns_it_green(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests={"tests/test_math.py": "def test_add():\n    assert 1 + 1 == 2\n"})
    log = EventLog()
    with watching(root, log):
        write(root / "tests" / "test_math.py", "def test_add():\n    assert 1 + 1 == 3\n")
        red = log.wait_for(is_finished(Tier.CODE))
        assert isinstance(red, TierFinished) and red.verdict is Verdict.FAILED
        assert log.failed_tests(red.run_id) == ["tests/test_math.py::test_add"]
        plan = next(e for e in log.snapshot() if isinstance(e, PlanMade))
        assert plan.triggers[0].paths == ("tests/test_math.py",)
        after = len(log.snapshot())
        write(root / "tests" / "test_math.py", "def test_add():\n    assert 1 + 1 == 2\n")
        green = log.wait_for(is_finished(Tier.CODE), after=after)
        assert isinstance(green, TierFinished) and green.verdict is Verdict.PASSED and green.passed == 1
        assert any(isinstance(e, GitState) and e.branch == "main" for e in log.snapshot())


def test_committing_the_judged_tree_reruns_nothing_and_says_so(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests={"tests/test_math.py": "def test_add():\n    assert 1 + 1 == 2\n"})
    log = EventLog()
    with watching(root, log):
        write(root / "tests" / "test_math.py", "def test_add():\n    assert 2 + 2 == 4\n")
        green = log.wait_for(is_finished(Tier.CODE))
        assert isinstance(green, TierFinished) and green.verdict is Verdict.PASSED
        after = len(log.snapshot())
        git(root, "commit", "-q", "-am", "the judged tree")
        notice = log.wait_for(lambda e: isinstance(e, Notice) and e.source == "plan", after=after)
        assert isinstance(notice, Notice) and notice.text == "HEAD moved, no file changed: every verdict stands"
        moved = [e for e in log.snapshot()[after:] if isinstance(e, ChangeDetected)]
        assert moved and moved[0].head_moved and moved[0].paths == ()
        # The same content was judged green: no plan, no run (the move's own event came first).
        assert not any(isinstance(e, (PlanMade, TierStarted)) for e in log.snapshot()[after:])
        # An edit after the commit still runs as before.
        write(root / "tests" / "test_math.py", "def test_add():\n    assert 2 + 2 == 5\n")
        red = log.wait_for(is_finished(Tier.CODE), after=after)
        assert isinstance(red, TierFinished) and red.verdict is Verdict.FAILED


def test_an_edit_during_a_code_run_cancels_it_and_the_new_tree_gets_the_verdict(tmp_path: Path, marker: str) -> None:
    root = make_project(
        tmp_path / "p",
        sources={"value.py": "VALUE = 1\n"},
        tests={
            "tests/test_value.py": SLOW_TEST.format(sleep=30),
            "conftest.py": "# puts the project root on sys.path\n",
        },
    )
    log = EventLog()
    with watching(root, log) as session:
        write(root / "value.py", "VALUE = 2\n")
        first = log.wait_for(lambda e: isinstance(e, TierStarted))
        assert isinstance(first, TierStarted)
        log.wait_for(lambda e: isinstance(e, OutputLines) and any("collected 1 item" in x for x in e.lines))
        assert session.running_pgids()
        write(root / "tests" / "test_value.py", SLOW_TEST.format(sleep=0))
        cancelled = log.wait_for(is_finished(Tier.CODE))
        assert isinstance(cancelled, TierFinished) and cancelled.run_id == first.run_id
        assert cancelled.verdict is Verdict.CANCELLED
        assert cancelled.reason == "superseded: a newer change needs this tier"
        final = log.wait_for(is_finished(Tier.CODE), after=log.snapshot().index(cancelled) + 1)
        assert isinstance(final, TierFinished)
        assert final.verdict is Verdict.FAILED  # VALUE == 2 on the tree as it is now
        assert log.failed_tests(final.run_id) == ["tests/test_value.py::test_value"]
        assert session.wait_idle(60)
    assert processes_with_env(MARKER_ENV, marker) == []


STAGE = "python -c \"import time; time.sleep(3); open('out.txt', 'w').write(open('input.txt').read())\""


@pytest.mark.slow
def test_an_edit_during_a_model_run_marks_it_stale_and_it_runs_once_more_after(tmp_path: Path) -> None:
    root = make_dvc_project(
        tmp_path / "p",
        stage_cmd=STAGE,
        deps=["input.txt"],
        outs=["out.txt"],
        files={"input.txt": "0\n"},
        config="tiers:\n  model: {}\n",
    )
    log = EventLog()
    with watching(root, log) as session:
        write(root / "input.txt", "1\n")
        first = log.wait_for(lambda e: isinstance(e, TierStarted) and e.tier is Tier.MODEL, timeout=120)
        assert isinstance(first, TierStarted)
        write(root / "input.txt", "2\n")
        log.wait_for(lambda e: isinstance(e, TierStale) and e.changes_since_start == 1)
        write(root / "input.txt", "3\n")
        log.wait_for(lambda e: isinstance(e, TierStale) and e.changes_since_start == 2)
        assert session.wait_idle(300)
        finished = log.finished(Tier.MODEL)
        assert [f.verdict for f in finished] == [Verdict.PASSED, Verdict.PASSED]
        assert finished[0].run_id == first.run_id  # finished, not cancelled
        assert len(log.started(Tier.MODEL)) == 2  # and ran exactly once more
        assert (root / "out.txt").read_text() == "3\n"
        # What the stage itself wrote (out.txt, dvc.lock) is no change: nothing ran after.
        changes = [e for e in log.snapshot() if isinstance(e, ChangeDetected)]
        assert all("out.txt" not in c.paths and "dvc.lock" not in c.paths for c in changes)


def test_a_red_code_tier_holds_the_data_tier(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        tests={
            "tests/unit/test_u.py": "def test_u():\n    assert False\n",
            "tests/data/test_d.py": "def test_d():\n    pass\n",
        },
        config="tiers:\n  code:\n    tests: [tests/unit]\n  data:\n    tests: [tests/data]\n",
    )
    log = EventLog()
    session = Session(load_config(root), emit=log, watch=False)
    session.start()
    try:
        session.request()
        assert session.wait_idle(120)
    finally:
        session.stop()
    (code,) = log.finished(Tier.CODE)
    (data,) = log.finished(Tier.DATA)
    assert code.verdict is Verdict.FAILED
    assert (data.verdict, data.reason) == (Verdict.HELD, "held: code tier is red")
    assert log.started(Tier.DATA) == []


HANGS = """
import subprocess, sys, time

def test_hangs():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    time.sleep(600)
"""


def test_stop_kills_the_running_tier_and_leaves_no_process(tmp_path: Path, marker: str) -> None:
    root = make_project(tmp_path / "p", tests={"tests/test_hang.py": HANGS})
    log = EventLog()
    session = Session(load_config(root), emit=log, watch=False)
    session.start()
    session.request([Tier.CODE])
    log.wait_for(lambda e: isinstance(e, OutputLines) and any("collected 1 item" in x for x in e.lines))
    wait_until(lambda: len(processes_with_env(MARKER_ENV, marker)) >= 2, what="the test's own child")
    session.stop()
    assert processes_with_env(MARKER_ENV, marker) == []
    assert not session.alive
    (finished,) = log.finished(Tier.CODE)
    assert (finished.verdict, finished.reason) == (Verdict.CANCELLED, "mlci is stopping")


def test_cancel_stops_the_run_and_drops_waiting_work(tmp_path: Path, marker: str) -> None:
    root = make_project(
        tmp_path / "p",
        tests={"tests/unit/test_hang.py": HANGS, "tests/data/test_d.py": "def test_d():\n    pass\n"},
        config="tiers:\n  code:\n    tests: [tests/unit]\n  data:\n    tests: [tests/data]\n",
    )
    log = EventLog()
    session = Session(load_config(root), emit=log, watch=False)
    session.start()
    try:
        session.request()
        log.wait_for(lambda e: isinstance(e, OutputLines) and any("collected 1 item" in x for x in e.lines))
        session.cancel()
        assert session.wait_idle(60)
        assert processes_with_env(MARKER_ENV, marker) == []
    finally:
        session.stop()
    (code,) = log.finished(Tier.CODE)
    assert (code.verdict, code.reason) == (Verdict.CANCELLED, "cancelled by you")
    assert log.finished(Tier.DATA) == []


# --- the push: check, push, follow, as the session's own work ---------------------------------------


def _pushable(tmp_path: Path, tests: dict[str, str]) -> tuple[Path, Path]:
    """A project with a bare remote `origin`; nothing pushed yet."""
    import subprocess

    root = make_project(tmp_path / "p", tests=tests, sources={"value.py": "VALUE = 1\n"})
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(bare)], cwd=root, check=True)
    return root, bare


def _remote_refs(bare: Path) -> str:
    import subprocess

    return subprocess.run(
        ["git", "for-each-ref", "--format=%(refname) %(objectname)"], cwd=bare, capture_output=True, text=True
    ).stdout


def _intervals(log: EventLog, tier: Tier) -> list[tuple[float, float]]:
    ends = {e.run_id: e.at for e in log.finished(tier)}
    return [(s.at, ends.get(s.run_id, float("inf"))) for s in log.started(tier)]


def _push_done(log: EventLog) -> PushProgress:
    event = log.wait_for(lambda e: isinstance(e, PushProgress) and e.stage == "done", timeout=180)
    assert isinstance(event, PushProgress)
    return event


def test_a_push_checks_on_the_sessions_runner_and_an_edit_meanwhile_waits_its_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, bare = _pushable(tmp_path, {"tests/test_value.py": SLOW_TEST.format(sleep=3)})
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    log = EventLog()
    with watching(root, log) as session:
        before = len(log.snapshot())
        plan = session.plan_push()
        assert session.push(plan, follow_ci=False)
        assert not session.push(plan), "a second push while one runs is refused"
        check_started = log.wait_for(lambda e: isinstance(e, TierStarted), after=before)
        write(root / "value.py", "VALUE = 1  # edited during the check\n")  # the watcher wants the code tier
        done = _push_done(log)
        assert done.ok is True, done.message
        log.wait_for(lambda e: isinstance(e, ChangeDetected), after=before)
        log.wait_for(
            lambda e: isinstance(e, TierFinished) and e.run_id > check_started.run_id and e.tier is Tier.CODE,
            after=before,
        )
    runs = sorted(_intervals(log, Tier.CODE))
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(runs)), runs
    assert len([r for r in runs if r[0] >= check_started.at]) >= 2  # the check's run, then the watcher's
    assert plan.head in _remote_refs(bare)
    # Every run of the session has its own number: the check's included.
    ids = [e.run_id for e in log.started(Tier.CODE)]
    assert len(ids) == len(set(ids))


def test_cancel_ends_a_pushs_check_and_nothing_is_pushed(tmp_path: Path, marker: str) -> None:
    root, bare = _pushable(tmp_path, {"tests/test_hang.py": HANGS})
    log = EventLog()
    session = Session(load_config(root), emit=log, watch=False)
    session.start()
    try:
        assert session.push(session.plan_push(), follow_ci=False)
        log.wait_for(lambda e: isinstance(e, OutputLines) and any("collected 1 item" in x for x in e.lines))
        session.cancel()
        done = _push_done(log)
        assert done.ok is False
        assert done.message == "pre-push check failed (the check was cancelled): nothing was pushed"
        # The check's tier is gone; the git commands that read the state after the push may still be ending.
        wait_until(lambda: processes_with_env(MARKER_ENV, marker) == [], what="every process of the check to end")
    finally:
        session.stop()
    assert _remote_refs(bare) == ""


def test_stop_during_a_pushs_check_leaves_no_process_and_no_worktree(tmp_path: Path, marker: str) -> None:
    import subprocess

    root, bare = _pushable(tmp_path, {"tests/test_hang.py": HANGS})
    write(root / "notes.txt", "uncommitted: the check runs in a worktree\n")
    log = EventLog()
    session = Session(load_config(root), emit=log, watch=False)
    session.start()
    assert session.push(session.plan_push(), follow_ci=False)
    log.wait_for(lambda e: isinstance(e, OutputLines) and any("collected 1 item" in x for x in e.lines))
    wait_until(lambda: len(processes_with_env(MARKER_ENV, marker)) >= 2, what="the test's own child")
    session.stop()
    assert processes_with_env(MARKER_ENV, marker) == []
    assert _push_done(log).ok is False
    assert _remote_refs(bare) == ""
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=root, capture_output=True, text=True).stdout
    assert len(worktrees.splitlines()) == 1, worktrees


def test_cancel_while_the_check_is_being_prepared_runs_no_tier_and_pushes_nothing(tmp_path: Path) -> None:
    root, bare = _pushable(tmp_path, {"tests/test_hang.py": HANGS})
    write(root / "notes.txt", "uncommitted: the check makes a worktree first\n")
    log = EventLog()
    session = Session(load_config(root), emit=log, watch=False)
    session.start()
    try:
        assert session.push(session.plan_push(), follow_ci=False)
        session.cancel()  # at once: the push is still planning or making the check's worktree
        done = _push_done(log)
        assert done.message == "pre-push check failed (the check was cancelled): nothing was pushed"
    finally:
        session.stop()
    assert log.started(Tier.CODE) == []
    assert _remote_refs(bare) == ""
