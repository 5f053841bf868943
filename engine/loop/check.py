"""Run tiers once, without watching: `mlci run`, and the pre-push check (`mlci check`, `mlci push`).

Both drive the same `Session` as the watch loop, so ordering and holding are the loop's own:
every tier in gating order, a red tier holding the ones after it. The check adds the gates
even to a project without a model tier. The outcome is a `CheckResult`: green or not, and
one line per thing that is red, in words a person can act on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mlci.engine.config.loader import Config
from mlci.engine.events import (
    Event,
    GateReport,
    Notice,
    TestResult,
    Tier,
    TierFinished,
    Verdict,
)
from mlci.engine.run.test_report import RED_OUTCOMES

__all__ = ["CheckResult", "run_check", "run_tiers"]

Emit = Callable[[Event], None]

NAMES_SHOWN = 5
"""Failing tests named per tier line; the rest are counted."""


@dataclass(frozen=True)
class CheckResult:
    """Whether everything that ran is green, and one line per thing that is not."""

    ok: bool
    failures: tuple[str, ...]


class _Verdicts:
    """Collects, from the event stream, what the result needs (from the engine's threads, under a lock)."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self.finished: dict[Tier, TierFinished] = {}
        self.failed_tests: dict[int, list[str]] = {}
        self.gate_lines: list[str] = []
        self.errors: list[str] = []

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, TierFinished):
                self.finished[event.tier] = event
            elif isinstance(event, TestResult) and event.outcome in RED_OUTCOMES:
                self.failed_tests.setdefault(event.run_id, []).append(event.nodeid)
            elif isinstance(event, GateReport):
                from mlci.engine.run.tier_run import failing_gates

                self.gate_lines = list(failing_gates(event)) if not event.passed else []
            elif isinstance(event, Notice) and event.level == "error":
                self.errors.append(event.text)
        self._emit(event)

    def result(self, tiers: Iterable[Tier]) -> CheckResult:
        lines: list[str] = list(self.errors)
        for tier in tiers:
            finished = self.finished.get(tier)
            if finished is None:
                lines.append(f"{tier.value} tier: did not finish")
            elif not finished.verdict.is_green:
                line = self._line(finished)
                if line:
                    lines.append(line)
        lines.extend(self.gate_lines)
        return CheckResult(ok=not lines, failures=tuple(lines))

    def _line(self, finished: TierFinished) -> str:
        tier = f"{finished.tier.value} tier"
        names = self.failed_tests.get(finished.run_id, [])
        if finished.verdict is Verdict.FAILED and names:
            shown = ", ".join(names[:NAMES_SHOWN]) + (
                f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
            )
            return f"{tier}: {len(names)} failed: {shown}"
        if finished.verdict is Verdict.FAILED and self.gate_lines and finished.tier is Tier.MODEL:
            return ""  # the failing gates say it, one line each
        if finished.verdict is Verdict.FAILED:
            return f"{tier}: failed: {finished.reason}" if finished.reason else f"{tier}: failed"
        if finished.verdict is Verdict.HELD:
            return f"{tier}: {finished.reason}"
        return f"{tier}: {finished.verdict.value.replace('_', ' ')}: {finished.reason}".rstrip(": ")


def run_tiers(
    config: Config, *, emit: Emit, tiers: Iterable[Tier] | None = None, full: bool = False, reason: str = "mlci run"
) -> CheckResult:
    """Run `tiers` (None: every tier) once, in order, and wait for their verdicts."""
    from mlci.engine.loop.session import Session
    from mlci.engine.run.interrupts import shielded

    wanted = tuple(t for t in config.tiers if tiers is None or t in set(tiers))
    collector = _Verdicts(emit)
    session = Session(config, emit=collector, watch=False)
    session.start()
    try:
        if wanted:
            session.request(wanted, full=full, reason=reason)
        session.wait_idle()
    finally:
        with shielded():
            session.stop()
    return collector.result(wanted)


def run_check(config: Config, *, emit: Emit, full: bool = False) -> CheckResult:
    """The pre-push check: every tier in order (the model tier quick unless `full`), then the gates.

    A project without a model tier still gets its gates evaluated (they run inside the
    model tier otherwise).
    """
    result = run_tiers(config, emit=emit, full=full, reason="mlci check")
    if Tier.MODEL in config.tiers:
        return result
    from mlci.engine.errors import MlciError
    from mlci.engine.run.tier_run import evaluate_gates_if_available, failing_gates

    try:
        report = evaluate_gates_if_available(config)
    except MlciError as exc:
        return CheckResult(False, (*result.failures, f"gates: {exc}"))
    if report is None:
        return result
    emit(report)
    if report.passed:
        return result
    return CheckResult(False, (*result.failures, *failing_gates(report)))
