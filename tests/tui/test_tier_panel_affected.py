"""The tier panel shows the code tier's first verdict (the affected tests) beside the tier, then the tier's own."""

from __future__ import annotations

from mlci.engine.events import AffectedVerdict, Tier, TierFinished, TierStarted, Verdict
from mlci.tui.components.tier_panel import TierPanel
from textual.app import App, ComposeResult

AFFECTED = tuple(f"tests/unit/test_params.py::test_{i}" for i in range(5))


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield TierPanel((Tier.CODE, Tier.DATA, Tier.MODEL))


def code_line(panel: TierPanel) -> str:
    return next(line for line in str(panel.render()).splitlines() if line.startswith("code"))


async def test_the_first_verdict_shows_beside_the_running_tier_then_stays_with_the_full_one() -> None:
    app = Host()
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(TierPanel)
        panel.handle(TierStarted(1, Tier.CODE, 1))
        panel.handle(AffectedVerdict(1, Tier.CODE, 5, 0, 0.09, AFFECTED, total=36))
        await pilot.pause()
        line = code_line(panel)
        assert "running" in line and "5 affected passed in 0.09 s" in line

        panel.handle(TierFinished(1, Tier.CODE, Verdict.PASSED, 1.4, passed=36))
        await pilot.pause()
        line = code_line(panel)
        assert "passed" in line and "1.4s" in line and "5 affected passed in 0.09 s" in line

        panel.handle(TierStarted(2, Tier.CODE, 2))  # the next run starts clean
        await pilot.pause()
        assert "affected" not in code_line(panel)


async def test_red_affected_tests_make_the_tier_red_at_once() -> None:
    app = Host()
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(TierPanel)
        panel.handle(TierStarted(1, Tier.CODE, 1))
        panel.handle(AffectedVerdict(1, Tier.CODE, 3, 2, 0.12, AFFECTED, total=36))
        await pilot.pause()
        row = panel.row(Tier.CODE)
        assert row is not None and row.status == Verdict.FAILED.value  # before the tier's own verdict
        assert "2 of 5 affected failed in 0.12 s" in code_line(panel)


async def test_the_first_run_says_every_test_counted_and_no_change_says_none() -> None:
    app = Host()
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(TierPanel)
        panel.handle(TierStarted(1, Tier.CODE, 1))
        panel.handle(
            AffectedVerdict(1, Tier.CODE, 36, 0, 3.1, AFFECTED * 7 + AFFECTED[:1], total=36, why="first run: no data")
        )
        await pilot.pause()
        assert "36 affected passed in 3.10 s (first run)" in code_line(panel)
        panel.handle(TierStarted(2, Tier.CODE, 2))
        panel.handle(AffectedVerdict(2, Tier.CODE, 0, 0, 0.3, (), total=36))
        await pilot.pause()
        assert "no test affected" in code_line(panel)
