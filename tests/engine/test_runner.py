"""One tier run: real pytest subprocesses on tiny projects, results from the plugin, kills by process group."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import Notice, OutputLines, TestOutcome, Tier, TierFinished, TierStarted, Verdict
from mlci.engine.run.process_group import StreamedOutput
from mlci.engine.run.tier_run import TierRun
from mlci.engine.run.warm.client import stop_servers

from tests.loop_projects import EventLog, living_processes, make_dvc_project, make_project, write, written

pytestmark = pytest.mark.usefixtures("only_testmon")

OUTCOMES = """
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 + 1 == 3, "arithmetic is broken"

@pytest.mark.xfail(reason="known bug")
def test_expected_failure():
    assert False

@pytest.mark.xfail(reason="fixed already")
def test_unexpected_pass():
    pass

@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    pass

@pytest.fixture
def broken_setup():
    raise RuntimeError("database is down")

def test_setup_error(broken_setup):
    pass

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("could not clean up")

def test_teardown_error(broken_teardown):
    pass
"""


def run_tier(root: Path, tier: Tier = Tier.CODE, **kwargs: object) -> tuple[EventLog, TierRun]:
    log = EventLog()
    run = TierRun(load_config(root), tier, run_id=1, plan_id=1, emit=log, **kwargs)  # type: ignore[arg-type]
    run.run()
    return log, run


def test_each_test_gets_its_outcome_from_pytest_itself(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests={"tests/test_outcomes.py": OUTCOMES})
    log, _ = run_tier(root)
    outcomes = {r.nodeid.split("::")[1]: r for r in log.results(1)}
    assert {name: r.outcome for name, r in outcomes.items()} == {
        "test_passes": TestOutcome.PASSED,
        "test_fails": TestOutcome.FAILED,
        "test_expected_failure": TestOutcome.XFAILED,
        "test_unexpected_pass": TestOutcome.XPASSED,
        "test_skipped": TestOutcome.SKIPPED,
        "test_setup_error": TestOutcome.ERROR,
        "test_teardown_error": TestOutcome.ERROR,
    }
    assert "arithmetic is broken" in outcomes["test_fails"].longrepr
    assert "database is down" in outcomes["test_setup_error"].longrepr
    assert "could not clean up" in outcomes["test_teardown_error"].longrepr
    assert outcomes["test_skipped"].longrepr == "Skipped: not on this platform"
    assert outcomes["test_passes"].longrepr == ""
    finished = log.finished(Tier.CODE)[-1]
    assert finished.verdict is Verdict.FAILED
    assert (finished.passed, finished.failed) == (3, 3)  # passes, xfail, xpass | fail, two errors


AT_EXIT_CONFTEST = """
import atexit
import pathlib

atexit.register(lambda: pathlib.Path("atexit.txt").write_text("ran"))


class _Teardown:
    def __del__(self):
        pathlib.Path("teardown.txt").write_text("ran")


KEPT = _Teardown()  # collected only when the interpreter tears its modules down
"""


def green_run(tmp_path: Path, tests: dict[str, str], *, warm: bool) -> tuple[EventLog, Path]:
    """The code tier of a project with `tests`, run cold or warm (its server stopped after), and green."""
    root = make_project(tmp_path / "p", tests=tests)
    try:
        log, _ = run_tier(root, warm=warm)
    finally:
        stop_servers()
    assert log.finished(Tier.CODE)[-1].verdict is Verdict.PASSED
    return log, root


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_run_ends_after_the_atexit_handlers_without_the_interpreters_teardown(tmp_path: Path, warm: bool) -> None:
    """What a test registered to run at exit runs; the seconds of tearing torch's modules down are not spent."""
    tests = {"tests/conftest.py": AT_EXIT_CONFTEST, "tests/test_ok.py": "def test_one():\n    pass\n"}
    log, root = green_run(tmp_path, tests, warm=warm)
    assert (root / "atexit.txt").read_text() == "ran"
    assert not (root / "teardown.txt").exists()
    if warm:
        assert not any("cold" in e.text for e in log.snapshot() if isinstance(e, Notice))


GARBAGE_CONFTEST = """
import gc
import pathlib


class Cycle:
    def __init__(self, name):
        self.me, self.name = self, name  # a reference cycle: only the garbage collector frees it

    def __del__(self):
        pathlib.Path(self.name).write_text("collected")


# Garbage in the oldest generation when collection ends, as a heavy import's cycles come to be:
# only a full collection frees it.
_kept = [Cycle("collection-garbage.txt")]
gc.collect()
_kept.clear()
"""

GARBAGE_TEST = """
import gc


def test_leaves_a_cycle():
    from conftest import Cycle

    assert gc.isenabled()  # paused while pytest collected, on again for the tests
    Cycle("test-garbage.txt")
"""


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_what_collection_and_the_tests_leave_as_garbage_is_still_collected(tmp_path: Path, warm: bool) -> None:
    """The plugin pauses the garbage collector while pytest collects, then frees collection's garbage and freezes
    what is left (pytest's collections at the end then skip the imported modules): the garbage made before,
    and by the tests after, is collected as with pytest alone, and the tests run with the collector on."""
    tests = {"tests/conftest.py": GARBAGE_CONFTEST, "tests/test_garbage.py": GARBAGE_TEST}
    _, root = green_run(tmp_path, tests, warm=warm)
    assert (root / "collection-garbage.txt").read_text() == "collected"
    assert (root / "test-garbage.txt").read_text() == "collected"


def test_a_green_tier_passes_and_says_what_it_ran(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests={"tests/test_ok.py": "def test_one():\n    pass\n"})
    log, _ = run_tier(root)
    started = next(e for e in log.snapshot() if isinstance(e, TierStarted))
    assert started.command[1:5] == ("-m", "mlci.engine.run.pytest_main", "-p", "mlci.engine.run.pytest_plugin")
    finished = log.finished(Tier.CODE)[-1]
    assert (finished.verdict, finished.passed, finished.failed, finished.plan_id) == (Verdict.PASSED, 1, 0, 1)
    output = [line for e in log.snapshot() if isinstance(e, OutputLines) for line in e.lines]
    assert any("1 passed" in line for line in output)


def test_a_collection_error_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests={"tests/test_broken.py": "import no_such_module_anywhere\n"})
    log, _ = run_tier(root)
    finished = log.finished(Tier.CODE)[-1]
    assert finished.verdict is Verdict.ERROR
    assert finished.reason == "collection error in tests/test_broken.py"
    (result,) = log.results(1)
    assert (result.nodeid, result.outcome) == ("tests/test_broken.py", TestOutcome.ERROR)
    assert "no_such_module_anywhere" in result.longrepr


def test_a_tier_that_collects_no_test_is_red_no_tests_ran(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests={"tests/helpers.py": "X = 1\n"})
    log, _ = run_tier(root)
    finished = log.finished(Tier.CODE)[-1]
    assert finished.verdict is Verdict.FAILED
    assert finished.reason.startswith("no tests ran")


def test_a_selection_that_matches_nothing_is_red_too(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        tests={"tests/test_ok.py": "def test_one():\n    pass\n"},
        config="tiers:\n  code:\n    tests: [tests]\n    pytest_args: ['-k', 'no_such_test']\n",
    )
    log, _ = run_tier(root)
    finished = log.finished(Tier.CODE)[-1]
    assert (finished.verdict, finished.passed) == (Verdict.FAILED, 0)
    assert finished.reason.startswith("no tests ran")


def test_allow_empty_makes_an_empty_tier_green_with_a_note(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        tests={"tests/helpers.py": "X = 1\n"},
        config="tiers:\n  code:\n    tests: [tests]\n    allow_empty: true\n",
    )
    log, _ = run_tier(root)
    finished = log.finished(Tier.CODE)[-1]
    assert (finished.verdict, finished.reason) == (Verdict.PASSED, "no tests collected (allow_empty)")


def test_allow_empty_must_be_a_boolean(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        tests={"tests/test_ok.py": "def test_one():\n    pass\n"},
        config="tiers:\n  code:\n    tests: [tests]\n    allow_empty: 'yes'\n",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mlci.engine", "run", "--tier", "code", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.endswith("mlci.yaml:4: tiers.code.allow_empty must be true or false, got a string ('yes')")
    assert "Traceback" not in proc.stderr and "collected" not in proc.stdout


FAILS_THE_SESSION = """
def pytest_sessionfinish(session, exitstatus):
    # what --cov-fail-under does when coverage is short
    session.exitstatus = 1
"""


def test_a_conftest_that_fails_the_session_is_red_with_the_reason(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        tests={"tests/test_ok.py": "def test_one():\n    pass\n", "tests/conftest.py": FAILS_THE_SESSION},
    )
    log, _ = run_tier(root)
    finished = log.finished(Tier.CODE)[-1]
    assert (finished.verdict, finished.passed, finished.failed) == (Verdict.FAILED, 1, 0)
    assert finished.reason.startswith("a plugin or conftest failed the session")
    proc = subprocess.run(
        [sys.executable, "-m", "mlci.engine", "run", "--tier", "code", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "a plugin or conftest failed the session" in proc.stdout + proc.stderr


def test_output_arrives_in_batches_not_line_by_line(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        tests={
            "tests/test_noisy.py": "def test_noisy():\n    for i in range(3000):\n        print('line', i)\n"
            "    assert False\n"
        },
    )
    log, _ = run_tier(root)
    batches = [e for e in log.snapshot() if isinstance(e, OutputLines)]
    lines = [line for batch in batches for line in batch.lines]
    assert sum(line == "line 2999" for line in lines) == 1
    assert len(batches) < len(lines) / 20


SLOW_TO_EXIT = """
import atexit
import time

# A heavy test dependency (torch) takes seconds to tear down once pytest is done; the verdict does not wait.
atexit.register(time.sleep, 1.5)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("a line from the conftest's summary")


def pytest_unconfigure(config):
    print("a line the conftest printed as pytest ended")  # into a buffered stdout: a pipe's flushes at exit
"""


class _LaggingPipe:
    """pytest's output pipe as a loaded machine's reader thread meets it: each line a while after it was written."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def readline(self) -> bytes:
        time.sleep(0.05)
        return self._stream.readline()

    def close(self) -> None:
        self._stream.close()


def test_every_line_of_a_run_comes_before_its_verdict_though_the_verdict_does_not_wait_for_the_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verdict is given on pytest's last report line, before its interpreter's teardown (seconds, with torch):
    the summary and what a conftest printed as pytest ended are still on screen above the verdict, not below it,
    however far the reading of pytest's output lags behind."""
    root = make_project(
        tmp_path / "p",
        tests={"tests/test_ok.py": "def test_one():\n    pass\n", "tests/conftest.py": SLOW_TO_EXIT},
    )
    read = StreamedOutput._read
    monkeypatch.setattr(StreamedOutput, "_read", lambda self, stream: read(self, _LaggingPipe(stream)))
    log, _ = run_tier(root)
    events = log.snapshot()
    finished = next(i for i, e in enumerate(events) if isinstance(e, TierFinished))
    assert events[finished].verdict is Verdict.PASSED
    after = [line for e in events[finished:] if isinstance(e, OutputLines) for line in e.lines]
    assert after == []
    before = [line for e in events[:finished] if isinstance(e, OutputLines) for line in e.lines]
    assert "a line from the conftest's summary" in before
    assert "a line the conftest printed as pytest ended" in before
    assert any(" 1 passed in " in line for line in before)
    assert not any("mlci: end of pytest's output" in line for line in before)


HANGS = """
import subprocess, sys, time
from pathlib import Path

def test_quick():
    pass

def test_hangs():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path("child.pid").write_text(str(child.pid))
    time.sleep(600)
"""


def test_a_hanging_test_is_killed_at_the_timeout_with_its_whole_group(tmp_path: Path) -> None:
    # The timeout has to outlast pytest's start, however loaded the machine, so that it strikes
    # inside test_hangs: 4 s did not on a fresh clone's busy run ("timed out after 4s during pytest").
    root = make_project(
        tmp_path / "p",
        tests={"tests/test_hang.py": HANGS},
        config="tiers:\n  code:\n    tests: [tests]\n    timeout: 20\n",
    )
    log, run = run_tier(root)
    finished = log.finished(Tier.CODE)[-1]
    assert finished.verdict is Verdict.TIMED_OUT
    assert finished.reason == "timed out after 20s in tests/test_hang.py::test_hangs"
    assert finished.passed == 1
    child = int((root / "child.pid").read_text())
    assert living_processes([child]) == []
    assert run.pgids == frozenset()


def test_cancel_kills_the_run_and_says_why(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests={"tests/test_hang.py": HANGS})
    log = EventLog()
    run = TierRun(load_config(root), Tier.CODE, run_id=7, plan_id=3, emit=log)
    thread = threading.Thread(target=run.run)
    thread.start()
    log.wait_for(lambda e: isinstance(e, OutputLines) and any("collected" in line for line in e.lines))
    [child_pid] = written(root / "child.pid", what="the hanging test's child")
    pgid = next(iter(run.pgids))
    run.cancel("superseded")
    thread.join(30)
    finished = log.finished(Tier.CODE)[-1]
    assert (finished.verdict, finished.reason, finished.run_id) == (Verdict.CANCELLED, "superseded", 7)
    child = int(child_pid)
    assert living_processes([pgid, child]) == []


STAGE = (
    'python -c "import json, os; json.dump({k: os.environ.get(k) for k in '
    "('MLCI_TRAIN_MODE', 'MLFLOW_TRACKING_URI', 'MLFLOW_RUN_ID')}, open('out/env.json', 'w'))\""
)


@pytest.mark.slow
def test_model_tier_runs_the_stages_with_the_mlflow_run_and_mode(tmp_path: Path) -> None:
    root = make_dvc_project(
        tmp_path / "p",
        stage_cmd=f"mkdir -p out && {STAGE}",
        outs=["out"],
        deps=["params.txt"],
        files={
            "params.txt": "1\n",
            "tests/model/test_env.py": (
                "import json\n\ndef test_env():\n    assert json.load(open('out/env.json'))['MLCI_TRAIN_MODE']\n"
            ),
        },
        config="mlflow:\n  experiment: loop-test\ntiers:\n  model:\n    tests: [tests/model]\n",
    )
    log, _ = run_tier(root, Tier.MODEL, stages=("work",), full=True)
    assert not [e for e in log.snapshot() if isinstance(e, Notice)]
    started = next(e for e in log.snapshot() if isinstance(e, TierStarted))
    assert started.full and started.mlflow_run_id
    assert started.command[1:] == ("-m", "dvc", "repro", "--force", "work")
    finished = log.finished(Tier.MODEL)[-1]
    assert (finished.verdict, finished.passed) == (Verdict.PASSED, 1), finished.reason
    env = json.loads((root / "out" / "env.json").read_text())
    config = load_config(root)
    assert env == {
        "MLCI_TRAIN_MODE": "full",
        "MLFLOW_TRACKING_URI": config.mlflow.tracking_uri,
        "MLFLOW_RUN_ID": started.mlflow_run_id,
    }
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=config.mlflow.tracking_uri).get_run(started.mlflow_run_id)
    experiment = MlflowClient(tracking_uri=config.mlflow.tracking_uri).get_experiment(run.info.experiment_id)
    assert (experiment.name, run.info.status, run.data.tags["mlci.mode"]) == ("loop-test", "FINISHED", "full")


def test_a_failing_stage_fails_the_model_tier_with_its_last_words(tmp_path: Path) -> None:
    root = make_dvc_project(
        tmp_path / "p",
        stage_cmd="python -c \"raise SystemExit('the GPU caught fire')\"",
        outs=["out"],
        deps=["params.txt"],
        files={"params.txt": "1\n"},
        config="tiers:\n  model: {}\n",
    )
    write(root / "tests" / "model" / "test_never.py", "def test_never():\n    raise AssertionError\n")
    log, _ = run_tier(root, Tier.MODEL)
    finished = log.finished(Tier.MODEL)[-1]
    assert finished.verdict is Verdict.FAILED
    assert finished.reason.startswith("dvc repro failed (exit")
    assert "the GPU caught fire" in " ".join(
        line for e in log.snapshot() if isinstance(e, OutputLines) for line in e.lines
    )
    assert log.results(1) == []  # the model tests never ran on a half-built pipeline
