"""The failing-tests panel: each failure with its text, cleared when its tier runs again."""

from __future__ import annotations

from mlci.engine.events import TestOutcome, TestResult, Tier, TierStarted
from mlci.tui.components.failures_panel import FailuresPanel
from textual.app import App, ComposeResult

FAILURE = "def test_y():\n>       assert f(1) == 2\nE       assert 3 == 2\n\ntests/unit/test_x.py:7: AssertionError"


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield FailuresPanel()


async def test_failures_show_their_text_and_a_rerun_of_their_tier_clears_them() -> None:
    app = Host()
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(FailuresPanel)
        panel.handle(TestResult(Tier.CODE, 1, "tests/unit/test_x.py::test_ok", TestOutcome.PASSED, 0.1))
        panel.handle(TestResult(Tier.CODE, 1, "tests/unit/test_x.py::test_y", TestOutcome.FAILED, 0.1, FAILURE))
        panel.handle(
            TestResult(
                Tier.DATA,
                2,
                "tests/data/test_d.py::test_rows",
                TestOutcome.ERROR,
                0.1,
                "E   FileNotFoundError: data/raw.csv",
            )
        )
        await pilot.pause()
        assert panel.border_title == "Failing tests (2)"
        shown = panel.text.plain
        assert "tests/unit/test_x.py::test_y" in shown and "E       assert 3 == 2" in shown
        assert "tests/unit/test_x.py:7: AssertionError" in shown
        assert "test_ok" not in shown
        panel.handle(TierStarted(3, Tier.CODE, 2))
        await pilot.pause()
        assert panel.border_title == "Failing tests (1)"
        assert "test_y" not in panel.text.plain and "test_rows" in panel.text.plain
