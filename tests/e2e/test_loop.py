"""The loop end to end: the real `mlci watch --json` on the demo sandbox, edited as a person would edit it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import (
    GateReport,
    Notice,
    OutputLines,
    Tier,
    TierFinished,
    TierStarted,
    Verdict,
    event_from_json,
)
from mlci.engine.loop.check import run_check

from tests.loop_projects import MARKER_ENV, EventLog, is_finished, make_project, processes_with_env, write

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning"),  # watchdog's, see test_session
]


class Watch:
    """`mlci watch --json --no-initial-run` in a subprocess; its JSON lines become events in `log`.

    Without the start-up run of the code tier (tests/engine/test_watch_start.py covers it): each
    test's first edit is then the only thing that runs, whatever the machine's load.
    """

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.marker = uuid.uuid4().hex
        self.log = EventLog()
        self.stray: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlci.engine", "watch", "--json", "--no-initial-run", str(root)],
            env={**env, MARKER_ENV: self.marker},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr: list[str] = []
        """What mlci wrote to stderr, drained as it comes (a full pipe would block mlci), shown when a test fails."""
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        self.log.wait_for(lambda e: isinstance(e, Notice) and e.text.startswith("watching"), timeout=120)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.log(event_from_json(json.loads(line)))
            except (ValueError, KeyError):
                self.stray.append(line)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def quit(self, sig: int = signal.SIGINT) -> int:
        """Send `sig` as a person (Ctrl-C) or a supervisor (SIGTERM) would; the exit status."""
        self.proc.send_signal(sig)
        code = self.proc.wait(60)
        self.close()
        return code

    def close(self) -> None:
        """Reap the process's output: pipes left to the garbage collector are a ResourceWarning."""
        self._reader.join(10)
        self._stderr_reader.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def watch(tool_env: dict[str, str]) -> Iterator[Callable[[Path], Watch]]:
    started: list[Watch] = []

    def start(root: Path) -> Watch:
        w = Watch(root, tool_env)
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
        w.close()
        # Shown by pytest only when the test failed: what mlci said besides its events.
        print("mlci watch stderr:", "".join(w.stderr[-80:]) or "(nothing)", file=sys.stderr)


def test_breaking_a_unit_test_turns_the_code_tier_red_naming_it_and_fixing_it_green(
    sandbox: Path, watch: Callable[[Path], Watch]
) -> None:
    w = watch(sandbox)
    test_file = sandbox / "tests" / "unit" / "test_params.py"
    original = test_file.read_text()
    test_file.write_text(original.replace('["epochs"] == 2', '["epochs"] == 3'))
    red = w.log.wait_for(is_finished(Tier.CODE), timeout=300)
    assert isinstance(red, TierFinished) and red.verdict is Verdict.FAILED
    assert w.log.failed_tests(red.run_id) == ["tests/unit/test_params.py::test_mode_from_params"]
    (failure,) = [r for r in w.log.results(red.run_id) if r.outcome.value == "failed"]
    assert "assert 2 == 3" in failure.longrepr
    assert w.log.started(Tier.DATA) == [] and w.log.started(Tier.MODEL) == []  # a unit test needs the code tier only
    after = len(w.log.snapshot())
    test_file.write_text(original)
    green = w.log.wait_for(is_finished(Tier.CODE), after=after, timeout=300)
    assert isinstance(green, TierFinished) and green.verdict is Verdict.PASSED and green.failed == 0
    assert w.quit() == 0
    assert processes_with_env(MARKER_ENV, w.marker) == []
    assert w.stray == []


def test_a_data_change_runs_the_data_tier_then_the_model_tier_and_quitting_leaves_no_process(
    sandbox: Path, watch: Callable[[Path], Watch]
) -> None:
    w = watch(sandbox)
    raw = sandbox / "data" / "raw" / "credit.csv"
    lines = raw.read_text().splitlines(keepends=True)
    first = lines[1].split(",")
    first[1] = f"{float(first[1]) + 1:.2f}"  # one income, one unit up: still valid data
    raw.write_text("".join([lines[0], ",".join(first), *lines[2:]]))
    data = w.log.wait_for(is_finished(Tier.DATA), timeout=600)
    assert isinstance(data, TierFinished) and data.verdict is Verdict.PASSED
    model = w.log.wait_for(lambda e: isinstance(e, TierStarted) and e.tier is Tier.MODEL, timeout=300)
    assert isinstance(model, TierStarted)
    assert model.command[-3:] == ("prepare", "train", "evaluate")
    assert model.mlflow_run_id and not model.full
    w.log.wait_for(
        lambda e: isinstance(e, OutputLines) and any("Running stage 'prepare'" in x for x in e.lines), timeout=300
    )
    assert processes_with_env(MARKER_ENV, w.marker)  # mlci, dvc and the stage's python
    assert w.quit(signal.SIGTERM) == 0
    assert processes_with_env(MARKER_ENV, w.marker) == []
    (cancelled,) = w.log.finished(Tier.MODEL)
    assert (cancelled.verdict, cancelled.reason) == (Verdict.CANCELLED, "mlci is stopping")


HANGS = """
import subprocess, sys, time

def test_fine():
    pass

def test_waits_forever():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    time.sleep(600)
"""


def test_a_hanging_test_is_killed_at_the_tier_timeout_and_quitting_leaves_no_process(
    tmp_path: Path, watch: Callable[[Path], Watch]
) -> None:
    root = make_project(
        tmp_path / "p",
        tests={"tests/test_ok.py": "def test_ok():\n    pass\n"},
        config="tiers:\n  code:\n    tests: [tests]\n    timeout: 20\n",
    )
    w = watch(root)
    write(root / "tests" / "test_hangs.py", HANGS)
    # 20 s: long enough for pytest to start on a loaded machine, so the timeout strikes inside the test.
    finished = w.log.wait_for(is_finished(Tier.CODE), timeout=120)
    assert isinstance(finished, TierFinished)
    assert finished.verdict is Verdict.TIMED_OUT
    assert finished.reason == "timed out after 20s in tests/test_hangs.py::test_waits_forever"
    assert processes_with_env(MARKER_ENV, w.marker) == [w.proc.pid]  # the test and its child are gone
    write(root / "tests" / "test_hangs.py", HANGS + "# edited: a new run starts, and hangs again\n")
    w.log.wait_for(
        lambda e: isinstance(e, OutputLines) and any("collected" in x for x in e.lines),
        after=w.log.snapshot().index(finished) + 1,
    )
    assert w.quit() == 0  # Ctrl-C mid-run
    assert processes_with_env(MARKER_ENV, w.marker) == []


def test_the_pre_push_check_runs_every_tier_and_the_gates_and_names_what_is_red(sandbox: Path) -> None:
    gates = sandbox / "model_gates.yaml"
    gates.write_text(gates.read_text().replace("accuracy: {min: 0.88}", "accuracy: {min: 0.999}"))
    # The check judges the commit it would push, not the working tree.
    subprocess.run(["git", "commit", "-qam", "Raise the accuracy gate"], cwd=sandbox, check=True)
    log = EventLog()
    result = run_check(load_config(sandbox), emit=log)
    assert [f.verdict for t in (Tier.CODE, Tier.DATA) for f in log.finished(t)] == [Verdict.PASSED] * 2
    (model,) = log.finished(Tier.MODEL)
    assert model.verdict is Verdict.FAILED
    (started,) = log.started(Tier.MODEL)
    assert not started.full and started.mlflow_run_id
    assert not result.ok
    # Only the gates are red (the latency gate may join them on a loaded machine: it measures).
    assert all(line.startswith("gate ") for line in result.failures)
    (accuracy,) = [line for line in result.failures if line.startswith("gate performance: accuracy")]
    assert "0.999" in accuracy
    report = next(e for e in log.snapshot() if isinstance(e, GateReport))
    assert any(
        r.gate == "performance" and r.check.startswith("accuracy >= 0.999") for r in report.results if not r.passed
    )
