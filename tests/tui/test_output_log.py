"""The live output log: a capped log written a batch at a time, its title naming what runs."""

from __future__ import annotations

from mlci.engine.events import OutputLines, Tier, TierFinished, TierStarted, Verdict
from mlci.tui.components.output_log import OutputLog
from textual.app import App, ComposeResult


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield OutputLog()


async def test_a_chatty_run_is_capped_and_the_title_follows_the_running_tiers() -> None:
    app = Host()
    async with app.run_test(size=(120, 36)) as pilot:
        log = app.query_one(OutputLog)
        log.handle(TierStarted(1, Tier.MODEL, 1, command=("dvc", "repro")))
        log.handle(TierStarted(2, Tier.CODE, 1, command=("pytest",)))
        assert log.border_title == "Output · code, model running"
        for batch in range(30):
            log.handle(OutputLines(Tier.MODEL, 1, tuple(f"epoch {batch} line {i}" for i in range(100))))
        log.handle(TierFinished(2, Tier.CODE, Verdict.PASSED, 1.0, passed=3))
        await pilot.pause()
        assert log.border_title == "Output · model running"
        assert len(log.lines) <= OutputLog.MAX_LINES
        texts = [line.text for line in log.lines]
        assert texts[-1] == "── code tier passed in 1.0s"
        assert "[model] epoch 29 line 99" in texts  # two tiers running: each line says whose it is
        assert not any("epoch 0 line 0" in t for t in texts)  # the oldest lines scrolled away
