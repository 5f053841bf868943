"""Run tiers once, without watching (`mlci run`), and the pre-push check of a commit (`mlci check`, the push).

Both are the `Session`'s own work, so ordering and holding are the loop's: every tier in
gating order, a red tier holding the ones after it. The check tests exactly a commit: in
place when the working tree is that commit, else in a temporary worktree at it (see
`check_site`); it adds the gates even to a project without a model tier, and remembers a
green verdict by the content's key (see `proof`), so the same content is not checked twice.
The outcome is a `CheckResult`: green or not, and one line per thing that is red, in words
a person can act on.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mlci.engine.config.loader import Config
from mlci.engine.errors import MlciError
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

__all__ = ["CheckResult", "CheckVerdicts", "check_commit", "run_check", "run_tiers"]

Emit = Callable[[Event], None]

NAMES_SHOWN = 5
"""Failing tests named per tier line; the rest are counted."""


@dataclass(frozen=True)
class CheckResult:
    """Whether everything that ran is green, and one line per thing that is not."""

    ok: bool
    failures: tuple[str, ...]
    note: str = ""
    """How the verdict was reached when nothing ran ("checked green at 14:02 on the same content")."""


class CheckVerdicts:
    """Collects, from the check's own events, what the result needs (from the engine's threads, under a lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.finished: dict[Tier, TierFinished] = {}
        self.failed_tests: dict[int, list[str]] = {}
        self.gate_lines: list[str] = []
        self.errors: list[str] = []

    def observe(self, event: Event) -> None:
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
    """Run `tiers` (None: every tier) once, in order, on the working tree as it is, and wait for their verdicts."""
    from mlci.engine.loop.session import Session
    from mlci.engine.run.interrupts import shielded

    wanted = tuple(t for t in config.tiers if tiers is None or t in set(tiers))
    collector = CheckVerdicts()

    def both(event: Event) -> None:
        collector.observe(event)
        emit(event)

    session = Session(config, emit=both, watch=False)
    session.start()
    try:
        if wanted:
            session.request(wanted, full=full, reason=reason)
        session.wait_idle()
    finally:
        with shielded():
            session.stop()
    return collector.result(wanted)


def run_check(config: Config, *, emit: Emit, full: bool = False, rev: str = "HEAD") -> CheckResult:
    """The pre-push check of the commit `rev`, in a session of its own (`mlci check`, the pre-push hook)."""
    from mlci.engine.loop.session import Session
    from mlci.engine.run.interrupts import shielded

    session = Session(config, emit=emit, watch=False)
    session.start()
    try:
        return session.check(rev, full=full)
    finally:
        with shielded():
            session.stop()


RunTiers = Callable[[Config, bool, str], CheckResult]
"""Runs every tier of a config (its root: where the commit is) in order and returns their verdicts."""


def check_commit(
    config: Config, rev: str, *, emit: Emit, full: bool, run_tiers: RunTiers, in_place: bool
) -> CheckResult:
    """The pre-push check of one commit: from the history when its content was proven green, else run.

    Runs in place when `in_place` is allowed and the working tree (DVC data included) is the
    commit, else in a temporary worktree at it. A project without a model tier still gets its
    gates evaluated (they run inside the model tier otherwise). A green verdict is remembered
    under the content's key.
    """
    from mlci.engine.git.worktree import resolve_commit
    from mlci.engine.loop.check_site import check_site, is_git_repository

    if not is_git_repository(config.root):
        emit(Notice("info", "not a git repository: checking the working tree as it is", source="check"))
        return _run_and_gate(config, full, "mlci check", run_tiers, emit)
    sha = resolve_commit(config.root, rev)
    from mlci.engine.loop.history import recall_proof, remember_proof
    from mlci.engine.loop.proof import content_key

    key = content_key(config, sha, full=full)
    proof = recall_proof(config.root, key.digest)
    if proof is not None:
        when = time.strftime("%H:%M", time.localtime(proof.at))
        note = f"{sha[:8]} checked green at {when} on the same content: not checked again"
        emit(Notice("info", note, source="check"))
        return CheckResult(ok=True, failures=(), note=note)
    reason = f"pre-push check of {sha[:8]}"
    try:
        with check_site(config, sha, in_place=in_place) as site:
            emit(Notice("info", f"checking {sha[:8]} {site.why}", source="check"))
            result = _run_and_gate(site.config, full, reason, run_tiers, emit)
    except MlciError as exc:
        return CheckResult(False, (str(exc),))
    if result.ok:
        try:
            remember_proof(config.root, key, sha)
        except (OSError, sqlite3.Error) as exc:
            emit(Notice("warning", f"the green verdict could not be remembered: {exc}", source="history"))
    return result


def _run_and_gate(config: Config, full: bool, reason: str, run_tiers: RunTiers, emit: Emit) -> CheckResult:
    from mlci.engine.run.mlflow_ahead import import_mlflow_ahead

    import_mlflow_ahead(config)  # while the code and data tiers run: the model tier's start waited for it
    result = run_tiers(config, full, reason)
    if Tier.MODEL in config.tiers or not result.ok:
        return result
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
