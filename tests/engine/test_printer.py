"""What `mlci watch` prints: one line per event for people (coloured on a terminal, NO_COLOR respected), JSON lines."""

from __future__ import annotations

import io
import json

import pytest
from mlci.engine.cli.printer import HumanPrinter, JsonPrinter, colour_wanted
from mlci.engine.events import (
    ChangeDetected,
    GateReport,
    GateResult,
    OutputLines,
    PlanMade,
    TestOutcome,
    TestResult,
    Tier,
    TierFinished,
    TierStale,
    TierStarted,
    Trigger,
    Verdict,
    event_from_json,
)

EVENTS = [
    ChangeDetected(("src/a.py", "src/b.py", "src/c.py", "src/d.py")),
    PlanMade(
        3,
        (Tier.CODE, Tier.MODEL),
        (
            Trigger(Tier.CODE, "src/**/*.py", ("src/a.py",)),
            Trigger(Tier.MODEL, "dependency of stage train", ("src/a.py",)),
        ),
        stages=("train", "evaluate"),
    ),
    TierStarted(5, Tier.CODE, 3),
    OutputLines(Tier.CODE, 5, ("collected 2 items",)),
    TestResult(Tier.CODE, 5, "tests/test_a.py::test_ok", TestOutcome.PASSED, 0.1),
    TestResult(
        Tier.CODE,
        5,
        "tests/test_a.py::test_sum",
        TestOutcome.FAILED,
        0.1,
        "def test_sum():\n>       assert add(1, 1) == 3\nE       assert 2 == 3\n\ntests/test_a.py:4: AssertionError",
    ),
    TierFinished(5, Tier.CODE, Verdict.FAILED, 2.25, passed=1, failed=1),
    TierFinished(6, Tier.MODEL, Verdict.HELD, 0.0, reason="held: code tier is red"),
    TierStale(Tier.MODEL, 4, 2),
    GateReport(
        (
            GateResult("performance", "accuracy >= 0.9", False, 0.8, 0.9, "accuracy 0.8 < 0.9"),
            GateResult("size", "max_mb", True, 1.0, 50.0, "1 MB <= 50 MB"),
        )
    ),
]


def printed(printer_cls: type[HumanPrinter], **kwargs: object) -> str:
    stream = io.StringIO()
    printer = printer_cls(stream, clock=lambda: 0.0, **kwargs)  # type: ignore[call-arg]
    for event in EVENTS:
        printer(event)
    return stream.getvalue()


def test_people_get_one_line_per_event_that_matters() -> None:
    lines = [line[9:] for line in printed(HumanPrinter, colour=False).splitlines()]  # without the clock
    assert lines == [
        "change src/a.py, src/b.py, src/c.py (+1 more)",
        "plan #3 code, model ← code: src/**/*.py (src/a.py); model: dependency of stage train (src/a.py)"
        "  stages: train, evaluate",
        "▶ code  run #5 started",
        "  ✘ FAILED tests/test_a.py::test_sum  assert 2 == 3",
        "✘ code  failed  1 passed, 1 failed in 2.2s",
        "⏸ model held: code tier is red",
        "~ model stale: 2 changes since start; reruns once it finishes",
        "✘ gates failed 1/2: performance: accuracy 0.8 < 0.9",
    ]


def test_verbose_adds_the_output_and_every_test() -> None:
    text = printed(HumanPrinter, colour=False, verbose=True)
    assert "  │ collected 2 items" in text
    assert "  passed tests/test_a.py::test_ok" in text


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_wanted(Terminal()) and not colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted(Terminal())
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset (no-color.org)
    assert colour_wanted(Terminal())
    assert "\033[31m✘ code  failed" in printed(HumanPrinter, colour=True)


def test_json_lines_round_trip_every_event() -> None:
    stream = io.StringIO()
    printer = JsonPrinter(stream)
    for event in EVENTS:
        printer(event)
    back = [event_from_json(json.loads(line)) for line in stream.getvalue().splitlines()]
    assert back == EVENTS


def test_a_reader_that_went_away_stops_the_printing_quietly() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    printer = HumanPrinter(Closed(), colour=False)
    printer(EVENTS[0])
    assert printer.broken
