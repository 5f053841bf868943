"""`mlci watch` gives a verdict when it starts, unless this tree is proven green; quitting leaves no server behind."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlci.engine.events import Notice, PlanMade, Tier, TierFinished, TierStarted, Verdict, event_from_json

from tests.loop_projects import MARKER_ENV, EventLog, make_project, processes_with_env, write

pytestmark = [
    pytest.mark.usefixtures("only_testmon"),
    pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning"),
]

TESTS = {"tests/unit/test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n"}
SOURCES = {"calc.py": "def add(a, b):\n    return a + b\n"}


class Watch:
    """`mlci watch --json` as a person starts it; its events in `log`."""

    def __init__(self, root: Path, env: dict[str, str], *args: str) -> None:
        self.marker = uuid.uuid4().hex
        self.log = EventLog()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlci.engine", "watch", "--json", *args, str(root)],
            env={**env, MARKER_ENV: self.marker},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError, KeyError):
                self.log(event_from_json(json.loads(line)))

    def quit(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(60)
        self._reader.join(10)
        self.close()
        return code

    def close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def watch(tool_env: dict[str, str]) -> Iterator[type[Watch]]:
    started: list[Watch] = []

    class Tracked(Watch):
        def __init__(self, root: Path, *args: str) -> None:
            super().__init__(root, tool_env, *args)
            started.append(self)

    yield Tracked  # type: ignore[misc]
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(30)
        w._reader.join(10)
        w.close()


def _code_verdict(log: EventLog) -> TierFinished:
    event = log.wait_for(lambda e: isinstance(e, TierFinished) and e.tier is Tier.CODE, timeout=300)
    assert isinstance(event, TierFinished)
    return event


def test_watch_runs_the_code_tier_at_start_then_not_again_for_the_same_tree(tmp_path: Path, watch: type) -> None:
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES)
    first = watch(root)
    assert _code_verdict(first.log).verdict is Verdict.PASSED
    [plan] = [e for e in first.log.snapshot() if isinstance(e, PlanMade)]
    assert plan.triggers[0].rule == "mlci started: no green verdict for this tree yet"
    assert any(isinstance(e, Notice) and e.text.startswith("warm runner ready") for e in first.log.snapshot())
    assert first.quit() == 0
    # Quitting stops the warm server and whatever it forked: nothing carrying the marker is left.
    assert processes_with_env(MARKER_ENV, first.marker) == []

    second = watch(root)
    second.log.wait_for(lambda e: isinstance(e, Notice) and "green for exactly this tree" in e.text, timeout=120)
    assert second.quit() == 0
    assert not any(isinstance(e, TierStarted) for e in second.log.snapshot())

    write(root / "calc.py", "def add(a, b):\n    return a - b\n")  # another tree: a verdict at start again
    third = watch(root)
    assert _code_verdict(third.log).verdict is Verdict.FAILED
    assert third.quit() == 0
    assert processes_with_env(MARKER_ENV, third.marker) == []


def test_no_initial_run_and_cold(tmp_path: Path, watch: type) -> None:
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES)
    quiet = watch(root, "--no-initial-run", "--cold")
    quiet.log.wait_for(lambda e: isinstance(e, Notice) and e.text.startswith("watching"), timeout=120)
    write(root / "calc.py", "def add(a, b):\n    return b + a\n")
    assert _code_verdict(quiet.log).verdict is Verdict.PASSED  # the edit's run, the only one
    assert quiet.quit() == 0
    events = quiet.log.snapshot()
    assert len([e for e in events if isinstance(e, TierStarted)]) == 1
    assert not any(isinstance(e, Notice) and e.source == "runner" for e in events)  # cold: no server
