"""The mlci dashboard: one screen with the tiers, the live output, and the project's git state.

The app renders engine events and sends engine commands; it holds no logic the headless
CLI would need. Engine threads post `EngineEvent` messages (thread-safe); widgets are only
touched on the UI thread. Heavy libraries (mlflow, dvc, torch, sklearn) are imported by the
engine in worker threads, after the first frame is painted.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, ClassVar

from mlci.engine.events import GitState
from mlci.tui.components.header import GitHeader
from mlci.tui.components.tiers import TierPanel
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Static

if TYPE_CHECKING:
    from mlci.engine.config import Config
    from mlci.engine.events import Event

__all__ = ["HEAVY_MODULES", "EngineEvent", "MlciApp"]

HEAVY_MODULES = ("mlflow", "dvc", "torch", "sklearn", "pandas", "git")
"""Libraries that cost 0.1 to 2.7 s to import: none may be loaded before the first frame."""


class EngineEvent(Message):
    """An engine event, posted from an engine thread. Handled by `MlciApp.on_engine_event`."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class MlciApp(App[int]):
    """The mlci-tui dashboard.

    | Key | Action |
    | :- | :- |
    | `q` | Quit (stops every run, leaves no process behind). |
    """

    CSS_PATH = "app.tcss"
    TITLE = "mlci"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.project_name = config.root.name
        self.heavy_at_first_paint: tuple[str, ...] | None = None
        """Which of HEAVY_MODULES were imported when the first frame was painted (for tests)."""

    def compose(self) -> ComposeResult:
        header = GitHeader(id="git-header")
        header.project = self.project_name
        yield header
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield TierPanel(tuple(self.config.tiers), id="tiers")
            with Vertical(id="center"):
                yield Static(
                    "Waiting for a change: save a file and the tiers it needs run here.",
                    id="idle-hint",
                )
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"mlci · {self.project_name}"
        # The engine (and with it dvc, mlflow, ...) starts only once the first frame is up.
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        self.heavy_at_first_paint = tuple(sorted(m for m in HEAVY_MODULES if m in sys.modules))
        self.refresh_git_state()

    @work(thread=True, exclusive=True, group="git")
    def refresh_git_state(self) -> None:
        """Read the git state off the UI thread (GitPython shells out to git)."""
        from mlci.engine.gitstate import read_git_state

        state = read_git_state(self.config.root)
        if state is not None:
            self.post_message(EngineEvent(state))
        else:
            self.call_from_thread(setattr, self.query_one(GitHeader), "state", None)

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, GitState):
            self.query_one(GitHeader).state = event
        self.query_one(TierPanel).handle(event)

