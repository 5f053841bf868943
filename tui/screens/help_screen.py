"""The help screen (`?`): every key that works on the screen it was opened from."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.app import ComposeResult

__all__ = ["HelpScreen", "KeyHelp"]

KeyHelp = tuple[str, str]
"""A key as the user types it ("ctrl+p", "?") and what it does."""


class HelpScreen(ModalScreen[None]):
    """A table of keys and what each does, with a line on the command palette.

    | Key | Action |
    | :- | :- |
    | `escape`, `?`, `q` | Close. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss", "Close")]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: auto;
        max-width: 90%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 2;
    }
    """

    def __init__(self, keys: list[KeyHelp]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, description in self.keys:
            table.add_row(key, description)
        with VerticalScroll():
            yield Static(Text("Keys", style="bold underline"))
            yield Static(table, id="help-keys")
            yield Static(Text("ctrl+p opens the command palette: every action, and the themes.", style="dim"))
