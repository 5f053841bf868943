"""The mlci dashboard: tiers, live output, failing tests, gates, metrics, GPU, git, push and CI on one screen.

The app renders engine events and sends engine commands; it holds no logic the headless
CLI would need. Engine threads post `EngineEvent` messages (thread-safe); widgets are only
touched on the UI thread. Heavy libraries (mlflow, dvc, torch, sklearn) are imported by the
engine in worker threads, after the first frame is painted.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from mlci.engine.events import GitState, GpuSample, Notice, Tier
from mlci.tui.components.ci_panel import CiPanel
from mlci.tui.components.failures_panel import FailuresPanel
from mlci.tui.components.gates_panel import GatesPanel
from mlci.tui.components.git_header import GitHeader
from mlci.tui.components.gpu_panel import GpuPanel
from mlci.tui.components.gpu_tier_line import GpuTierLine
from mlci.tui.components.metrics_panel import MetricsPanel
from mlci.tui.components.output_log import OutputLog
from mlci.tui.components.tier_panel import TierPanel
from mlci.tui.screens.push_confirm_screen import PushConfirmScreen, PushDecision
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer

if TYPE_CHECKING:
    from mlci.engine.config.loader import Config
    from mlci.engine.events import Event
    from mlci.engine.loop.session import Session

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
    | `a` | Run every tier now. |
    | `c`, `d`, `m` | Rerun the code, data or model tier (model: quick mode). |
    | `f` | Full training: the model tier in full mode. |
    | `x` | Cancel what runs and what waits to run. |
    | `g` | Details of the gates (failing first). |
    | `P` | Promote the challenger model to champion (asks first). |
    | `p` | Push the branch: shows what will be pushed, asks, runs the check, pushes, follows CI. |
    | `q` | Quit (stops every run, leaves no process behind). |
    """

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    """Absolute, so that subclasses defined elsewhere (tests) find it too."""
    TITLE = "mlci"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (150, "-wide")]
    """Below 150 columns the three columns share the width evenly (see app.tcss)."""
    AUTO_FOCUS = None
    """Keys go to the app's bindings; panels take focus only when clicked."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "run_all", "Run all"),
        Binding("c", "run_tier('code')", "Code"),
        Binding("d", "run_tier('data')", "Data"),
        Binding("m", "run_tier('model')", "Model"),
        Binding("f", "full_training", "Full train"),
        Binding("x", "cancel", "Cancel"),
        Binding("g", "gate_details", "Gates"),
        Binding("P", "promote", "Promote", show=False),
        Binding("p", "push", "Push"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, config: Config, *, start_engine: bool = True) -> None:
        super().__init__()
        self.config = config
        self.project_name = config.root.name
        self.start_engine = start_engine
        """False in tests that feed events by hand: no session, no watcher, no GPU sampling."""
        self.session: Session | None = None
        self.heavy_at_first_paint: tuple[str, ...] | None = None
        """Which of HEAVY_MODULES were imported when the first frame was painted (for tests)."""
        self._ci_stop = threading.Event()
        """Set on quit: ends the CI follower's wait between polls (thread workers cannot be cancelled)."""

    def compose(self) -> ComposeResult:
        header = GitHeader(id="git-header")
        header.project = self.project_name
        yield header
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield TierPanel(tuple(self.config.tiers), id="tiers")
                yield FailuresPanel(id="failures")
            with Vertical(id="center"):
                yield OutputLog(id="output")
                yield GatesPanel(self.config, id="gates")
            with Vertical(id="right"):
                yield MetricsPanel(id="metrics")
                yield GpuTierLine(id="gpu-tier")
                yield GpuPanel(id="gpu")
                yield CiPanel(id="ci")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"mlci · {self.project_name}"
        # The engine (and with it dvc, mlflow, ...) starts only once the first frame is up.
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        self.heavy_at_first_paint = tuple(sorted(m for m in HEAVY_MODULES if m in sys.modules))
        self.refresh_git_state()
        if self.start_engine:
            self.start_session()

    # -- engine --------------------------------------------------------------------------------------

    def post_engine_event(self, event: Event) -> None:
        """The session's and monitors' emit: any thread, cheap, never touches widgets."""
        self.post_message(EngineEvent(event))

    @work(thread=True, exclusive=True, group="session")
    def start_session(self) -> None:
        from mlci.engine.loop.session import Session

        session = Session(self.config, emit=self.post_engine_event, gpu=True)
        self.session = session
        session.start()

    def on_unmount(self) -> None:
        self._ci_stop.set()
        if self.session is not None:
            self.session.stop()

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, GitState):
            self.query_one(GitHeader).state = event
            return
        if isinstance(event, GpuSample):
            self.query_one(GpuPanel).update_sample(event)
            tier_line = self.query_one(GpuTierLine)
            tier_line.update_sample(event)
            tier_line.display = bool(event.devices)  # with no GPU, the panel's one line says so
            return
        if isinstance(event, Notice) and event.source == "watch":
            self.query_one(GitHeader).note = event.text
        if isinstance(event, Notice) and event.level in ("warning", "error") and event.source not in ("metrics",):
            self.notify(event.text, severity="warning" if event.level == "warning" else "error", timeout=8)
        self.query_one(TierPanel).handle(event)
        self.query_one(OutputLog).handle(event)
        self.query_one(FailuresPanel).handle(event)
        self.query_one(MetricsPanel).on_engine_event(event)
        self.query_one(GatesPanel).on_engine_event(event)
        self.query_one(CiPanel).handle(event)

    @work(thread=True, exclusive=True, group="git")
    def refresh_git_state(self) -> None:
        """Read the git state off the UI thread (GitPython shells out to git)."""
        from mlci.engine.git.state import read_git_state

        state = read_git_state(self.config.root)
        if state is not None:
            self.post_engine_event(state)
        else:
            self.call_from_thread(setattr, self.query_one(GitHeader), "no_repository", True)

    # -- actions -------------------------------------------------------------------------------------

    def _request(self, tiers: tuple[Tier, ...] | None, *, full: bool = False, reason: str) -> None:
        if self.session is None:
            self.notify("the engine is still starting", severity="warning")
            return
        self.session.request(tiers, full=full, reason=reason)

    def action_run_all(self) -> None:
        self._request(None, reason="run all (key a)")

    def action_run_tier(self, tier: str) -> None:
        chosen = Tier(tier)
        if chosen not in self.config.tiers:
            self.notify(f"this project has no {tier} tier", severity="warning")
            return
        self._request((chosen,), reason=f"rerun (key {tier[0]})")

    def action_full_training(self) -> None:
        if Tier.MODEL not in self.config.tiers:
            self.notify("this project has no model tier", severity="warning")
            return
        self._request((Tier.MODEL,), full=True, reason="full training (key f)")

    def action_cancel(self) -> None:
        if self.session is not None:
            self.session.cancel()

    def action_gate_details(self) -> None:
        self.query_one(GatesPanel).action_details()

    def action_promote(self) -> None:
        self.query_one(GatesPanel).action_promote()

    def action_push(self) -> None:
        self.plan_push()

    @work(thread=True, exclusive=True, group="push")
    def plan_push(self) -> None:
        """Work out what a push would send, then ask (the confirmation screen shows it)."""
        from mlci.engine.errors import MlciError
        from mlci.engine.git.push import plan_push

        try:
            plan = plan_push(self.config.root, remote=self.config.git.remote)
        except MlciError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            return
        if plan.up_to_date:
            self.call_from_thread(self.notify, plan.summary())
            return
        self.call_from_thread(self.push_screen, PushConfirmScreen(plan), self._push_confirmed)

    def _push_confirmed(self, decision: PushDecision | None) -> None:
        if decision is not None:
            self.run_push(decision)

    @work(thread=True, exclusive=True, group="push")
    def run_push(self, decision: PushDecision) -> None:
        """The check, then the push; progress arrives on the CI panel as events. Then follow CI."""
        from mlci.engine.ci.follow import follow_after_push
        from mlci.engine.errors import MlciError
        from mlci.engine.git.push import push_branch
        from mlci.engine.loop.check import run_check

        check = None if decision.no_verify else (lambda: run_check(self.config, emit=self.post_engine_event))
        try:
            outcome = push_branch(
                self.config.root,
                remote=decision.plan.remote,
                check=check,
                progress=self.post_engine_event,
                plan=decision.plan,
            )
        except MlciError:
            return  # the final PushProgress event already carries the message to the panel
        finally:
            self.refresh_git_state()
        if outcome.pushed:
            follow_after_push(
                self.config.root,
                outcome.plan.head,
                emit=self.post_engine_event,
                remote=decision.plan.remote,
                stop=self._ci_stop,
            )
