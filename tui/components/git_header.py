"""The top line: project, git branch and state. Refreshed on git events, never on a timer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

if TYPE_CHECKING:
    from mlci.engine.events import GitState

__all__ = ["GitHeader"]


class GitHeader(Widget):
    """One line: the project name, the branch with ahead/behind, dirty files, an operation in progress."""

    DEFAULT_CSS = """
    GitHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    project: reactive[str] = reactive("")
    """The project's folder name."""
    state: reactive[GitState | None] = reactive(None, always_update=True)
    """The latest git state; None outside a git repository."""
    no_repository: reactive[bool] = reactive(False)
    """The project is known not to be a git repository (until then, state None means "not read yet")."""
    note: reactive[str] = reactive("")
    """A short status on the right (watching, polling fallback, a push in flight)."""

    def render(self) -> Text:
        text = Text.assemble(("mlci ", "bold"), (self.project, "bold cyan"), "  ")
        state = self.state
        if state is None:
            if self.no_repository:
                text.append("not a git repository", style="yellow")
            else:
                text.append("reading git state…", style="dim")
        else:
            if state.detached:
                text.append(f"detached HEAD {state.head}", style="bold yellow")
            else:
                text.append(f"⎇ {state.branch}", style="bold green")
                if state.upstream:
                    text.append(f" → {state.upstream}", style="dim")
                    text.append(f" ↑{state.ahead} ↓{state.behind}")
                else:
                    text.append(" (no upstream)", style="dim")
            if state.head:
                text.append(f"  {state.head}", style="dim")
            if state.dirty:
                text.append(f"  ● {len(state.dirty)} uncommitted", style="yellow")
            else:
                text.append("  clean", style="green")
            if state.operation:
                text.append(f"  {state.operation} in progress", style="bold red")
        if self.note:
            text.append(f"   {self.note}", style="italic")
        return text
