"""Affected tests first, the runner's side: the pytest arguments that ask for it, and the first verdict.

The code tier runs pytest with `--mlci-affected=<project>/.mlci/affected`; inside pytest,
`affected_plugin` orders the tests the change affects first (pytest-testmon's fingerprints,
plus the data files each test read) and writes to the report stream which tests those are
and when the last of them is done. `AffectedTail` reads those lines beside the results and
emits `AffectedVerdict` at that moment ("5 affected passed in 0.09 s"), while the rest runs.

It is all pytest arguments and report lines, so it works the same whichever runner starts
pytest (a cold subprocess, or a child of the warm server). Only the code tier does it: the
data tier's tests are few and slow and read everything, and the model tier runs stages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlci.engine.config.private_dir import PRIVATE_DIR, private_dir
from mlci.engine.events import AffectedVerdict, Event, Notice, TestOutcome, Tier
from mlci.engine.run.pytest_plugin import AFFECTED_OPTION, TESTMON_FILE
from mlci.engine.run.test_report import GREEN_OUTCOMES, RED_OUTCOMES, ReportTail

__all__ = ["STATE_DIR", "AffectedTail", "affected_args", "has_fingerprints", "state_dir"]

STATE_DIR = PRIVATE_DIR / "affected"
"""Where testmon's data and the files each test read are kept, in the project: never in the user's tree."""

_NOTICED: set[tuple[str, str]] = set()
"""(project, reason) already said in this process: a missing testmon is worth one notice, not one per run."""
_NOTICED_LOCK = threading.Lock()


def state_dir(root: Path) -> Path:
    """The affected-tests state directory of a project (made when missing, never listed by git)."""
    return private_dir(root, STATE_DIR.name)


def has_fingerprints(root: Path) -> bool:
    """Whether earlier code-tier runs left testmon's fingerprints in the project (the folder is not made)."""
    return (root / STATE_DIR / TESTMON_FILE).is_file()


def affected_args(root: Path) -> tuple[str, ...]:
    """The pytest arguments that run the tests affected by the change first."""
    return (f"{AFFECTED_OPTION}={state_dir(root)}",)


class AffectedTail(ReportTail):
    """A `ReportTail` that also follows the affected-tests lines and emits the first verdict.

    `started` is the tier's start (monotonic): the verdict's duration is what the person waited.
    """

    def __init__(
        self,
        path: Path,
        *,
        tier: Tier,
        run_id: int,
        root: Path,
        started: float,
        emit: Callable[[Event], None],
    ) -> None:
        super().__init__(path, tier=tier, run_id=run_id, emit=emit)
        self._root = root
        self._started = started
        self._emit_event = emit
        self._affected: dict[str, bool | None] = {}
        """Affected node id -> green (True), red (False), or not finished (None)."""
        self._record: dict[str, Any] | None = None
        self.verdict: AffectedVerdict | None = None
        """The first verdict, once given."""

    @property
    def stopped_rest(self) -> str:
        """Why the tier ended before the rest ran (red affected tests), in words; "" otherwise."""
        verdict = self.verdict
        if verdict is None or verdict.is_green or verdict.total <= len(verdict.nodeids):
            return ""
        rest = verdict.total - len(verdict.nodeids)
        n = verdict.failed
        return f"{n} affected test{'s' if n != 1 else ''} failed: the other {rest} were not run"

    def _handle(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind == "affected":
            self._record = record
            self._affected = {str(nodeid): None for nodeid in record.get("nodeids", ())}
        elif kind == "affected_done":
            self._give_verdict()
        elif kind == "affected_off":
            self._notice_once(str(record.get("reason", "")))
        else:
            super()._handle(record)

    def _result(self, nodeid: str, outcome: TestOutcome, duration: float, longrepr: str) -> None:
        if nodeid in self._affected:
            if outcome in RED_OUTCOMES:
                self._affected[nodeid] = False
            elif outcome in GREEN_OUTCOMES and self._affected[nodeid] is None:
                self._affected[nodeid] = True
        super()._result(nodeid, outcome, duration, longrepr)

    def _give_verdict(self) -> None:
        if self.verdict is not None or self._record is None:
            return
        record = self._record
        self.verdict = AffectedVerdict(
            self._run_id,
            self._tier,
            passed=sum(1 for green in self._affected.values() if green),
            failed=sum(1 for green in self._affected.values() if green is False),
            duration_s=time.monotonic() - self._started,
            nodeids=tuple(self._affected),
            total=int(record.get("total", 0)),
            why=str(record.get("why", "")),
            data_changed=tuple(str(p) for p in record.get("data_changed", ())),
        )
        self._emit_event(self.verdict)

    def _notice_once(self, reason: str) -> None:
        key = (str(self._root), reason)
        with _NOTICED_LOCK:
            if key in _NOTICED:
                return
            _NOTICED.add(key)
        self._emit_event(
            Notice("info", f"affected tests first is off: {reason}; every test runs in one go", "code tier")
        )
