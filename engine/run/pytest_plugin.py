"""A pytest plugin that streams each test's result, as JSON lines, to the file named by `MLCI_REPORT_FILE`.

The runner loads it with `-p mlci.engine.run.pytest_plugin` and tails the file while pytest runs,
so results come from pytest's own reports rather than from its terminal output. One line per
test, written after its teardown (the last phase pytest always reports):

    {"kind": "test", "nodeid": ..., "outcome": "passed|failed|skipped|error|xfailed|xpassed",
     "duration": 0.01, "longrepr": "..."}

plus a line as each test starts (`"kind": "start"`, so a timeout can name the test that hung),
one per collection error (`"kind": "collect_error"`) and a last line with pytest's exit status
(`"kind": "session"`), written once the terminal summary is out. Just before that line it
prints `output_end_line(<the report file>)` after pytest's own output: the runner gives its
early verdict only once it has read pytest's output up to it, so no line of a run comes after
its verdict. Without `MLCI_REPORT_FILE` the plugin does nothing. It imports only the stdlib,
so loading it costs nothing in the test process.

It also keeps the garbage collector off the modules the tests import. Those (torch's and
pandas' above all) are most of the heap, and every full collection walks all of it: while
collection imports them (five full collections for torch, MLflow and pandas, a fifth of the
import time), during the tests, and five times after pytest's summary (its check for unraisable
exceptions), 0.9 s on the sample project's unit tests while a check's next tier waited for the
process to end. So the collector is paused from the loading of the first conftest files to the
end of collection; then one collection frees collection's garbage (pytest's hook for unraisable
exceptions is installed by then) and `gc.freeze` moves what is left to the permanent
generation, which later collections skip. Objects the tests make are collected as before; an
object alive when collection ended is freed by its reference count, never as part of a cycle.
A warm server does the same with what it preloads before it forks.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from typing import IO, Any

__all__ = [
    "AFFECTED_OPTION",
    "REPORT_ENV",
    "TESTMON_FILE",
    "output_end_line",
    "pytest_addoption",
    "pytest_cmdline_main",
    "pytest_collection_finish",
    "pytest_collectreport",
    "pytest_load_initial_conftests",
    "pytest_runtest_logreport",
    "pytest_runtest_logstart",
    "pytest_sessionfinish",
    "pytest_unconfigure",
]

REPORT_ENV = "MLCI_REPORT_FILE"
"""The environment variable naming the JSON-lines file to append results to."""

AFFECTED_OPTION = "--mlci-affected"
"""Run the tests the change affects first; its value is the directory for the data that needs (`affected_plugin`)."""

TESTMON_FILE = "testmondata"
"""testmon's data file in that directory (testmon reads its path from `TESTMON_DATAFILE`)."""


def output_end_line(report: str) -> str:
    """The line the plugin prints after pytest's output, for the run whose report file is `report`; the runner
    drops it (it names the report file, which no test's own output can know)."""
    return f"@@ mlci: end of pytest's output for {report} @@"


_gc_paused = False
"""Whether the plugin turned the garbage collector off (until collection ends)."""

LONGREPR_MAX = 20_000
"""Characters of failure text kept per test: a huge diff should not make the stream crawl."""


class _Stream:
    """The report file, opened on first use and flushed after every line so results stream live."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self._pending: dict[str, dict[str, Any]] = {}
        self.session: dict[str, Any] | None = None
        """The exit status, kept from sessionfinish until unconfigure writes it."""
        self.pytest_session: Any = None
        """pytest's session, whose final exit status unconfigure reads."""

    def write(self, record: dict[str, Any]) -> None:
        path = os.environ.get(REPORT_ENV)
        if not path:
            return
        if self._file is None:
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the session
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def phase(self, report: Any) -> None:
        """Fold one phase's report into its test's record; write the record after teardown."""
        record = self._pending.setdefault(
            report.nodeid,
            {"kind": "test", "nodeid": report.nodeid, "outcome": "passed", "duration": 0.0, "longrepr": ""},
        )
        record["duration"] += float(getattr(report, "duration", 0.0) or 0.0)
        outcome = _phase_outcome(report)
        if outcome is not None:
            if report.when == "teardown" and outcome == "error" and record["outcome"] == "failed":
                outcome = "failed"  # a failing test whose teardown also fails is still a failure
            record["outcome"] = outcome
            text = _text(report)
            if text:
                record["longrepr"] = (record["longrepr"] + "\n" + text).strip()[-LONGREPR_MAX:]
        if report.when == "teardown":
            self.write(self._pending.pop(report.nodeid))


def _phase_outcome(report: Any) -> str | None:
    """The test's outcome as this phase decides it, or None when the phase changes nothing."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpassed" if xfail else "passed"
        if report.skipped:
            return "xfailed" if xfail else "skipped"
        return "failed"
    if report.failed:
        return "error"
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    return None


def _text(report: Any) -> str:
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return str(report.wasxfail)
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            return str(longrepr[2])
        return ""
    if report.passed and not hasattr(report, "wasxfail"):
        return ""
    return str(report.longreprtext)


_STREAM = _Stream()


def pytest_addoption(parser: Any) -> None:
    parser.addoption(AFFECTED_OPTION, dest="mlci_affected", default="", help="mlci: run the affected tests first")


def pytest_cmdline_main(config: Any) -> None:
    # Before any plugin's pytest_configure: testmon reads its options and data file there.
    state_dir = config.getoption("mlci_affected")
    if not state_dir:
        return
    try:
        from mlci.engine.run.affected_plugin import AffectedFirst
    except ImportError as exc:  # mlci's copy in the project's interpreter lacks it: one phase, said once
        _STREAM.write({"kind": "affected_off", "reason": f"mlci's affected-tests plugin cannot load here: {exc}"})
        return
    from pathlib import Path

    config.pluginmanager.register(AffectedFirst(config, Path(state_dir), _STREAM.write), "mlci-affected")


def pytest_load_initial_conftests(early_config: Any, parser: Any, args: Any) -> None:
    # Before pytest's own (`trylast`), which imports the first conftest files.
    global _gc_paused
    if os.environ.get(REPORT_ENV) and gc.isenabled():
        gc.disable()
        _gc_paused = True


def pytest_collection_finish(session: Any) -> None:
    if os.environ.get(REPORT_ENV):
        gc.collect()  # collection's garbage, while pytest's hook for unraisable exceptions is installed
        gc.freeze()
    _resume_gc()


def _resume_gc() -> None:
    global _gc_paused
    if _gc_paused:
        gc.enable()
        _gc_paused = False


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    _STREAM.write({"kind": "start", "nodeid": nodeid})


def pytest_runtest_logreport(report: Any) -> None:
    _STREAM.phase(report)


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _STREAM.write(
            {
                "kind": "collect_error",
                "nodeid": report.nodeid or ".",
                "longrepr": str(report.longreprtext)[-LONGREPR_MAX:],
            }
        )


def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    _resume_gc()  # had collection never finished
    _STREAM.session = {"kind": "session", "exitstatus": int(exitstatus), "collected": int(session.testscollected)}
    _STREAM.pytest_session = session


def pytest_unconfigure(config: Any) -> None:
    # Written last, after the terminal summary: from here on pytest only tears the interpreter
    # down, which with heavy test dependencies (torch) can take seconds. The runner gives the
    # verdict on this line rather than on the process's exit.
    if _STREAM.session is not None:
        # The status pytest will exit with: a conftest or plugin may have set `session.exitstatus`
        # in its own sessionfinish, after ours was called with the earlier value.
        final = getattr(_STREAM.pytest_session, "exitstatus", _STREAM.session["exitstatus"])
        _STREAM.session["exitstatus"] = int(final)
        _end_output(config)
        _STREAM.write(_STREAM.session)


def _end_output(config: Any) -> None:
    """Print the end line after everything printed so far (what a conftest printed into a buffered stdout
    included), where the terminal summary went: it reaches the runner after all of it."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    _flush_std()
    writer = None
    with contextlib.suppress(Exception):  # no terminal reporter (-p no:terminal): plain stdout
        writer = config.get_terminal_writer()
    if writer is not None:
        writer.line(output_end_line(path))
        writer.flush()
    else:
        print(output_end_line(path))
    _flush_std()


def _flush_std() -> None:
    # `process_exit` flushes the same way; the plugin keeps its own: it runs in the project's interpreter, which
    # reaches only the modules `interpreter.mlci_path` copies for it.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a test may have closed or replaced them
            stream.flush()
