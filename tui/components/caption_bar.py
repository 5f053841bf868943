"""The caption line of a talk that plays itself: the step on screen and the dashboard's verdict on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci.engine.events import ScenarioCaption
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["CaptionBar"]


class CaptionBar(Widget):
    """One line, large enough to read from the back of a room: `3/8 The data drifts … ✓ data tier red`."""

    DEFAULT_CSS = """
    CaptionBar {
        dock: bottom;
        height: 1;
        padding: 0 1;
        background: $accent;
        color: $text;
        text-style: bold;
    }
    """

    caption: reactive[ScenarioCaption | None] = reactive(None)
    """The latest caption; None before the story starts."""

    def render(self) -> RenderableType:
        caption = self.caption
        if caption is None:
            return Text("the story starts once the dashboard is ready…")
        if caption.finished:
            words = "the end: every step as told" if caption.ok else "the end: a step did not go as told"
            return Text(f"{words}   (q quits)")
        line = Text(f"{caption.step}/{caption.total}  {caption.text}")
        if caption.paused:
            line.append("   ⏸ paused: space goes on, n plays one step")
        elif caption.answer:
            line.append(f"   {'✓' if caption.ok else '✗'} {caption.answer}")
        else:
            line.append("   … waiting for the dashboard's verdict")
        return line
