"""Print the engine's event stream: one line per event for people, or one JSON object per line for programs.

The human form is for `mlci watch`, `mlci run` and `mlci check` in a terminal: a time, a
mark, the tier and what happened. Colour (ANSI) only when the output is a terminal and
`NO_COLOR` is unset or empty (https://no-color.org). Test output and passing tests are left
out unless `verbose`; a failing test gets its line with the first line of its failure.

Both printers are called from the engine's threads, so each line is written under a lock.
Every line has the credentials of any URL in it masked (a remote or a tracking URI that
holds a password or a token) before it is written.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from mlci.engine.config.redact import mask_credentials
from mlci.engine.events import (
    AffectedVerdict,
    ChangeDetected,
    CiStatus,
    Event,
    GateReport,
    GitState,
    MetricPoint,
    Notice,
    OutputLines,
    PlanMade,
    PushProgress,
    TestOutcome,
    TestResult,
    TierFinished,
    TierStale,
    TierStarted,
    Verdict,
    event_to_json,
)

__all__ = ["HumanPrinter", "JsonPrinter", "colour_wanted", "format_event", "print_summary"]

PATHS_SHOWN = 3
"""Changed paths named on a line; the rest are counted."""

_RESET = "\033[0m"
_COLOURS = {
    "green": "\033[32m",
    "red": "\033[31m",
    "yellow": "\033[33m",
    "blue": "\033[34m",
    "dim": "\033[2m",
    "bold": "\033[1m",
}
_VERDICT_STYLE = {
    Verdict.PASSED: ("✔", "green"),
    Verdict.FAILED: ("✘", "red"),
    Verdict.ERROR: ("✘", "red"),
    Verdict.TIMED_OUT: ("⏱", "red"),
    Verdict.CANCELLED: ("■", "yellow"),
    Verdict.HELD: ("⏸", "yellow"),
}


def colour_wanted(stream: IO[str]) -> bool:
    """ANSI colour for a terminal, unless NO_COLOR is set to anything non-empty."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _paths(paths: tuple[str, ...]) -> str:
    shown = ", ".join(paths[:PATHS_SHOWN])
    return shown + (f" (+{len(paths) - PATHS_SHOWN} more)" if len(paths) > PATHS_SHOWN else "")


def _first_failure_line(longrepr: str) -> str:
    """The line a person reads first: pytest's `E   ...` line, else the last non-empty one."""
    lines = [line.strip() for line in longrepr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E "):
            return line[1:].strip()
    return lines[-1] if lines else ""


def _finished(event: TierFinished) -> tuple[str, str]:
    mark, style = _VERDICT_STYLE[event.verdict]
    if event.verdict is Verdict.HELD:
        return f"{mark} {event.tier.value:<5} {event.reason}", style
    counts = f"{event.passed} passed" + (f", {event.failed} failed" if event.failed else "")
    text = f"{mark} {event.tier.value:<5} {event.verdict.value.replace('_', ' ')}  {counts} in {event.duration_s:.1f}s"
    if event.reason:
        text += f"  ({event.reason})"
    return text, style


def _affected(event: AffectedVerdict, verbose: bool) -> list[tuple[str, str]]:
    """The code tier's first verdict: the affected tests, named, and what happens to the rest."""
    rest = event.total - len(event.nodeids)
    if not event.nodeids:
        return [(f"· {event.tier.value:<5} affected: none of the {event.total} tests; all of them run now", "dim")]
    counts = f"{event.passed} passed" if event.is_green else f"{event.failed} failed, {event.passed} passed"
    text = f"{'✔' if event.is_green else '✘'} {event.tier.value:<5} {len(event.nodeids)} affected: {counts}"
    text += f" in {event.duration_s:.2f} s  ({_paths(event.nodeids)})"
    if event.why:
        text += f"  {event.why}"
    elif rest:
        text += f"; the other {rest} run now" if event.is_green else f"; the other {rest} are not run"
    lines = [(text, "green" if event.is_green else "red")]
    if event.data_changed:
        lines.append((f"  data changed since a test read it: {_paths(event.data_changed)}", "dim"))
    return lines


def _git(event: GitState) -> str:
    where = event.branch or "detached"
    text = f"git   {where}@{event.head or '(no commit)'}"
    if event.upstream:
        text += f" ↑{event.ahead} ↓{event.behind} vs {event.upstream}"
    if event.dirty:
        text += f", {len(event.dirty)} changed"
    if event.operation:
        text += f", {event.operation} in progress"
    return text


def _gates(event: GateReport) -> tuple[str, str]:
    failing = [r for r in event.results if not r.passed]
    borderline = [r for r in event.results if r.borderline and r.passed]
    if event.passed and borderline:
        # A coin-flip pass: say which gate, with both numbers (they are in its reason).
        shown = "; ".join(f"{r.gate}: {r.reason}" for r in borderline)
        return f"✔ gates passed ({len(event.results)} checks), {len(borderline)} borderline: {shown}", "yellow"
    if event.passed:
        return f"✔ gates passed ({len(event.results)} checks)", "green"
    if not event.results:
        return "✘ gates: nothing was evaluated", "red"
    reasons = "; ".join(f"{r.gate}: {r.reason or r.check}" for r in failing)
    return f"✘ gates failed {len(failing)}/{len(event.results)}: {reasons}", "red"


def _change(event: ChangeDetected, verbose: bool) -> list[tuple[str, str]]:
    what = _paths(event.paths) if event.paths else ""
    head = "HEAD moved" if event.head_moved else ""
    return [(f"change {', '.join(x for x in (head, what) if x)}", "dim")]


def _plan(event: PlanMade, verbose: bool) -> list[tuple[str, str]]:
    rules = "; ".join(
        f"{t.tier.value}: {t.rule}" + (f" ({_paths(t.paths)})" if t.paths else "") for t in event.triggers
    )
    stages = f"  stages: {', '.join(event.stages)}" if event.stages else ""
    tiers = ", ".join(t.value for t in event.tiers) or "nothing"
    return [(f"plan #{event.plan_id} {tiers} ← {rules}{stages}", "blue")]


def _started(event: TierStarted, verbose: bool) -> list[tuple[str, str]]:
    mode = " (full training)" if event.full else ""
    return [(f"▶ {event.tier.value:<5} run #{event.run_id} started{mode}", "bold")]


def _stale(event: TierStale, verbose: bool) -> list[tuple[str, str]]:
    n = event.changes_since_start
    return [
        (
            f"~ {event.tier.value:<5} stale: {n} change{'s' if n != 1 else ''} since start; reruns once it finishes",
            "yellow",
        )
    ]


def _test(event: TestResult, verbose: bool) -> list[tuple[str, str]]:
    if event.outcome in (TestOutcome.FAILED, TestOutcome.ERROR):
        why = _first_failure_line(event.longrepr)
        return [(f"  ✘ {event.outcome.value.upper()} {event.nodeid}" + (f"  {why}" if why else ""), "red")]
    return [(f"  {event.outcome.value} {event.nodeid}", "dim")] if verbose else []


def _output(event: OutputLines, verbose: bool) -> list[tuple[str, str]]:
    return [(f"  │ {line}", "dim") for line in event.lines] if verbose else []


def _metric(event: MetricPoint, verbose: bool) -> list[tuple[str, str]]:
    return [(f"metric {event.key}={event.value:.4g} (step {event.step})", "dim")] if verbose else []


def _notice(event: Notice, verbose: bool) -> list[tuple[str, str]]:
    return [(f"{event.level}: {event.text}", {"error": "red", "warning": "yellow"}.get(event.level, "dim"))]


def _push(event: PushProgress, verbose: bool) -> list[tuple[str, str]]:
    style = "" if event.ok is None else "green" if event.ok else "red"
    return [(f"push  {event.stage}: {event.message}", style)]


def _ci(event: CiStatus, verbose: bool) -> list[tuple[str, str]]:
    runs = ", ".join(f"{r.name} {r.conclusion or r.status}" for r in event.runs) or event.message
    return [(f"ci    {event.sha[:8]}: {runs}", "dim")]


_FORMATTERS: dict[type[Any], Callable[[Any, bool], list[tuple[str, str]]]] = {
    ChangeDetected: _change,
    PlanMade: _plan,
    TierStarted: _started,
    TierFinished: lambda e, _v: [_finished(e)],
    AffectedVerdict: _affected,
    TierStale: _stale,
    TestResult: _test,
    OutputLines: _output,
    GateReport: lambda e, _v: [_gates(e)],
    MetricPoint: _metric,
    GitState: lambda e, _v: [(_git(e), "dim")],
    Notice: _notice,
    PushProgress: _push,
    CiStatus: _ci,
}
"""Events without a formatter (GPU samples) get no line: they are for the dashboard."""


def format_event(event: Event, *, verbose: bool = False) -> list[tuple[str, str]]:
    """The lines (text, style) a person sees for `event`; empty for events not worth a line."""
    formatter = _FORMATTERS.get(type(event))
    return formatter(event, verbose) if formatter is not None else []


class HumanPrinter:
    """One line per event (see `format_event`), with a clock, coloured when the stream is a terminal."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        verbose: bool = False,
        colour: bool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.verbose = verbose
        self.colour = colour_wanted(self.stream) if colour is None else colour
        self._clock = clock
        self._lock = threading.Lock()
        self.broken = False
        """The stream was closed by its reader: nothing more can be printed."""

    def __call__(self, event: Event) -> None:
        lines = format_event(event, verbose=self.verbose)
        if not lines:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(self._clock()))
        self._write("".join(f"{stamp} {self._paint(text, style)}\n" for text, style in lines))

    def write_line(self, text: str, style: str = "") -> None:
        """One line without a clock (a summary), coloured like the events."""
        self._write(self._paint(text, style) + "\n")

    def _paint(self, text: str, style: str) -> str:
        return f"{_COLOURS[style]}{text}{_RESET}" if self.colour and style else text

    def _write(self, text: str) -> None:
        text = mask_credentials(text)
        with self._lock:
            if self.broken:
                return
            try:
                self.stream.write(text)
                self.stream.flush()
            except (BrokenPipeError, ValueError):  # the reader went away (`mlci watch | head`)
                self.broken = True


class JsonPrinter(HumanPrinter):
    """One JSON object per event per line (`event_to_json`), flushed at once so a reader can follow live."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream, colour=False)

    def __call__(self, event: Event) -> None:
        self._write(json.dumps(event_to_json(event), default=str) + "\n")


class _Result(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def failures(self) -> tuple[str, ...]: ...


def print_summary(result: _Result, printer: HumanPrinter) -> None:
    """The last lines of `mlci run` and `mlci check`: green, or each thing that is red."""
    if result.ok:
        printer.write_line("✔ all green", "green")
        return
    printer.write_line("✘ red:", "red")
    for line in result.failures:
        printer.write_line(f"  {line}", "red")
