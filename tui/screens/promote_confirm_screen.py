"""Asks before the `champion` alias moves."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.app import ComposeResult

__all__ = ["PromoteConfirmScreen"]


class PromoteConfirmScreen(ModalScreen[bool]):
    """Asks before moving the `champion` alias: names the model and both versions.

    | Key | Action |
    | :- | :- |
    | `y` | Promote. |
    | `n`, `escape` | Cancel: no alias changes. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Promote"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    DEFAULT_CSS = """
    PromoteConfirmScreen {
        align: center middle;
    }
    PromoteConfirmScreen > Static {
        width: auto;
        max-width: 90%;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble((self.question, "bold"), "\n\n", "y promote    n cancel"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
