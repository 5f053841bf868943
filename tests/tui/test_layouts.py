"""The dashboard fits the screen it is on: three columns, two, or one panel at a time; help, palette, themes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlci.engine.events import Tier
from mlci.tui.app import PANELS, MlciApp
from mlci.tui.components.tier_panel import TierPanel
from mlci.tui.components.tier_strip import TierStrip
from mlci.tui.screens.help_screen import HelpScreen
from mlci.tui.themes import HIGH_CONTRAST
from textual.widgets import DataTable
from textual_plotext import PlotextPlot

from tests.tui.test_dashboard import dashboard, play, script

PANEL_WIDGETS = {
    "tiers": ("#tiers", "#failures"),
    "output": ("#output",),
    "gates": ("#gates",),
    "metrics": ("#metrics",),
    "gpu": ("#gpu",),
    "ci": ("#ci",),
}


@pytest.fixture(autouse=True)
def _own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test remembers its theme in its own config folder, never the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The script's gate report is from t=0: "judged 2 h ago" on any day, so the snapshots hold."""
    from types import SimpleNamespace

    monkeypatch.setattr("mlci.tui.components.ages.time", SimpleNamespace(time=lambda: 2 * 3600.0))


def _on_screen(app: MlciApp, selector: str) -> bool:
    widget = app.query_one(selector)
    region = widget.region
    return widget.display and region.width > 0 and region.height > 0 and region.right <= app.size.width


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (200, 50)], ids=["narrow", "medium", "wide"])
def test_snapshot_dashboard_layouts(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = dashboard(tmp_path)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await play(app, pilot, script())

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_narrow_shows_one_panel_at_a_time_under_the_tier_strip(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await play(app, pilot, script())
        for number, (panel, _title) in enumerate(PANELS, 1):
            await pilot.press(str(number))
            await pilot.pause()
            shown = {name for name, selectors in PANEL_WIDGETS.items() if _on_screen(app, selectors[0])}
            assert shown == {panel}, f"key {number}: {shown} on screen"
            # The verdicts stay in view whatever the panel.
            assert _on_screen(app, "#tier-strip")
            strip = app.query_one(TierStrip)
            assert [r.status for r in strip.rows] == ["failed", "idle", "running"]
        # A click on a tab switches too.
        await pilot.click("#tab-gates")
        await pilot.pause()
        assert _on_screen(app, "#gates") and not _on_screen(app, "#output")


@pytest.mark.parametrize("width", [100, 120, 149])
async def test_medium_shows_two_columns_and_every_panel(tmp_path: Path, width: int) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(width, 36)) as pilot:
        await play(app, pilot, script())
        for selectors in PANEL_WIDGETS.values():
            for selector in selectors:
                assert _on_screen(app, selector), f"{selector} is not on a {width}-wide screen"
        assert not _on_screen(app, "#tier-strip")
        left, center = app.query_one("#left").region, app.query_one("#center").region
        assert left.right <= center.x, "the tiers and the output share a row: two columns"


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 36), (160, 45), (200, 50)])
async def test_the_gates_table_shows_every_column_without_scrolling(tmp_path: Path, size: tuple[int, int]) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=size) as pilot:
        await play(app, pilot, script())
        await pilot.press("3")  # the gates panel, where only one panel is shown
        await pilot.pause()
        table = app.query_one("#gates").query_one(DataTable)
        assert [str(c.label) for c in table.columns.values()][1:] == ["gate", "check", "value", "threshold"]
        assert table.max_scroll_x == 0, f"the gates table scrolls sideways at {size}"
        assert table.region.right <= size[0]
        # Failing gates first.
        assert str(table.get_row_at(0)[1]) == "regression"


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (200, 50)])
async def test_the_plots_tick_labels_never_overlap(tmp_path: Path, size: tuple[int, int]) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=size) as pilot:
        await play(app, pilot, script())
        await pilot.press("4")  # the metrics panel, where only one panel is shown
        await pilot.pause(0.5)
        plot = app.query_one(PlotextPlot)
        lines = plot.render().plain.splitlines()  # type: ignore[union-attr]
        axis = next(i for i, line in enumerate(lines) if line.strip() == "step")
        ticks = lines[axis - 1].split()
        values = [float(t) for t in ticks]  # two labels run together would not parse
        assert values == sorted(values) and len(values) >= 2
        for line in lines[: axis - 2]:
            left = re.match(r"\s*([-\d.]+)", line)
            if left and not line.lstrip().startswith(("┌", "└")):
                float(left.group(1))


async def test_help_lists_every_key_of_the_screen(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = dict(app.screen.keys)
        for key in ("a", "c", "d", "m", "f", "x", "g", "p", "P", "q", "?", "1", "6"):
            assert key in keys, f"{key} is missing from the help"
        assert keys["p"].startswith("Push") and keys["x"] == "Cancel"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_every_action_is_in_the_command_palette(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(120, 36)):
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for description in ("Run all", "Code", "Data", "Model", "Full train", "Cancel", "Push", "Promote", "Gates"):
            assert description in titles
        assert any("theme" in title.lower() for title in titles)


async def test_the_chosen_theme_is_remembered(tmp_path: Path) -> None:
    app = dashboard(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        assert HIGH_CONTRAST.name in app.available_themes
        app.theme = HIGH_CONTRAST.name
        await pilot.pause()
    saved = json.loads((tmp_path / "config" / "mlci" / "tui.json").read_text())
    assert saved["theme"] == HIGH_CONTRAST.name
    again = dashboard(tmp_path / "again")
    async with again.run_test(size=(120, 36)):
        assert again.theme == HIGH_CONTRAST.name


async def test_no_color_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = dashboard(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await play(app, pilot, script())
        svg = app.export_screenshot()
    # The SVG's window frame (its three dots and title) is drawn in colour whatever the app does.
    frame = {"ff5f57", "febc2e", "28c840", "c5c8c6"}
    colours = {c.lower() for c in re.findall(r"#([0-9a-fA-F]{6})", svg)} - frame
    assert colours
    grey = {c for c in colours if c[0:2] == c[2:4] == c[4:6]}
    assert grey == colours, f"colours with NO_COLOR: {sorted(colours - grey)[:5]}"


async def test_clicking_a_tier_reruns_it(tmp_path: Path) -> None:
    class Recorder:
        """Stands in for the session's request queue: the test checks what the click asked for."""

        def __init__(self) -> None:
            self.requests: list[tuple[tuple[Tier, ...] | None, str]] = []

        def request(self, tiers: tuple[Tier, ...] | None, *, full: bool = False, reason: str) -> None:
            self.requests.append((tiers, reason))

        def stop(self) -> None:
            pass

    app = dashboard(tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        recorder = Recorder()
        app.session = recorder  # type: ignore[assignment]
        panel = app.query_one(TierPanel)
        data_line = next(i for i in range(10) if panel.tier_at(i) is Tier.DATA)
        await pilot.click(TierPanel, offset=(4, panel.gutter.top + data_line))
        await pilot.pause()
        assert recorder.requests == [((Tier.DATA,), "rerun (key d)")]
