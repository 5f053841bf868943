"""The caption line of the talk that plays itself: the step, and the dashboard's verdict once it comes."""

from __future__ import annotations

from pathlib import Path

from mlci.engine.config.loader import load_config
from mlci.engine.events import ScenarioCaption
from mlci.tui.app import EngineEvent, MlciApp
from mlci.tui.components.caption_bar import CaptionBar


def _app(tmp_path: Path) -> MlciApp:
    root = tmp_path / "credit"
    (root / "tests" / "unit").mkdir(parents=True)
    return MlciApp(load_config(root), start_engine=False, scenario=True)


async def test_the_caption_tells_the_step_then_its_verdict(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        bar = app.query_one(CaptionBar)
        assert "starts once the dashboard is ready" in bar.render().plain  # type: ignore[union-attr]
        app.post_message(EngineEvent(ScenarioCaption(3, 8, "The data drifts")))
        await pilot.pause()
        assert bar.render().plain.startswith("3/8  The data drifts") and "waiting" in bar.render().plain  # type: ignore[union-attr]
        app.post_message(EngineEvent(ScenarioCaption(3, 8, "The data drifts", answer="data tier red: test_psi")))
        await pilot.pause()
        assert "✓ data tier red: test_psi" in bar.render().plain  # type: ignore[union-attr]
        app.post_message(EngineEvent(ScenarioCaption(4, 8, "Reverted", paused=True)))
        await pilot.pause()
        assert "paused: space goes on, n plays one step" in bar.render().plain  # type: ignore[union-attr]
        app.post_message(EngineEvent(ScenarioCaption(8, 8, "the end", finished=True, ok=True)))
        await pilot.pause()
        assert "every step as told" in bar.render().plain  # type: ignore[union-attr]


async def test_without_a_scenario_there_is_no_caption(tmp_path: Path) -> None:
    root = tmp_path / "credit"
    (root / "tests" / "unit").mkdir(parents=True)
    app = MlciApp(load_config(root), start_engine=False)
    async with app.run_test(size=(120, 30)):
        assert not app.query(CaptionBar)
