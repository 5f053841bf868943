"""Tail the JSON-lines report that `mlci.engine.run.pytest_plugin` writes, turning each line into a `TestResult`.

The file is read while pytest runs, so the failing tests appear as they fail. A collection
error becomes a result too (outcome "error", the file as its node id): it is the one thing a
user has to fix before any test can run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlci.engine.events import TestOutcome, TestResult, Tier

__all__ = ["GREEN_OUTCOMES", "RED_OUTCOMES", "ReportTail"]

RED_OUTCOMES = frozenset({TestOutcome.FAILED, TestOutcome.ERROR})
"""Outcomes that make a tier red."""
GREEN_OUTCOMES = frozenset({TestOutcome.PASSED, TestOutcome.XFAILED, TestOutcome.XPASSED})
"""Outcomes counted as passed: an expected failure is the test doing its job."""


class ReportTail:
    """Reads the complete lines added to a report file since the last `poll`."""

    def __init__(self, path: Path, *, tier: Tier, run_id: int, emit: Callable[[TestResult], None]) -> None:
        self.path = path
        self._tier = tier
        self._run_id = run_id
        self._emit = emit
        self._offset = 0
        self._partial = b""
        self.passed = 0
        self.failed: list[str] = []
        """Node ids of failed and erroring tests, in the order they finished."""
        self.collect_errors: list[str] = []
        self.running: str | None = None
        """The test that started last and has not finished: the one a timeout interrupted."""
        self.exitstatus: int | None = None

    def poll(self) -> None:
        try:
            with self.path.open("rb") as stream:
                stream.seek(self._offset)
                data = stream.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if line.strip():
                self._handle(json.loads(line))

    def _handle(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind == "start":
            self.running = str(record["nodeid"])
        elif kind == "test":
            self.running = None
            self._result(
                str(record["nodeid"]),
                TestOutcome(record["outcome"]),
                float(record["duration"]),
                str(record.get("longrepr", "")),
            )
        elif kind == "collect_error":
            self.collect_errors.append(str(record["nodeid"]))
            self._result(str(record["nodeid"]), TestOutcome.ERROR, 0.0, str(record.get("longrepr", "")))
        elif kind == "session":
            self.exitstatus = int(record["exitstatus"])

    def _result(self, nodeid: str, outcome: TestOutcome, duration: float, longrepr: str) -> None:
        if outcome in RED_OUTCOMES:
            self.failed.append(nodeid)
        elif outcome in GREEN_OUTCOMES:
            self.passed += 1
        self._emit(TestResult(self._tier, self._run_id, nodeid, outcome, duration, longrepr))
