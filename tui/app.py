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
from typing import TYPE_CHECKING, ClassVar, TypeVar

from mlci.engine.events import GitState, GpuSample, Notice, ScenarioCaption, Tier
from mlci.tui.components.caption_bar import CaptionBar
from mlci.tui.components.ci_panel import CiPanel
from mlci.tui.components.failures_panel import FailuresPanel
from mlci.tui.components.gates_panel import GatesPanel
from mlci.tui.components.git_header import GitHeader
from mlci.tui.components.gpu_panel import GpuPanel
from mlci.tui.components.gpu_tier_line import GpuTierLine
from mlci.tui.components.metrics_panel import MetricsPanel
from mlci.tui.components.output_log import OutputLog
from mlci.tui.components.tier_panel import TierPanel
from mlci.tui.components.tier_strip import TierStrip
from mlci.tui.screens.help_screen import HelpScreen
from mlci.tui.screens.push_confirm_screen import PushConfirmScreen, PushDecision
from mlci.tui.settings import load_theme, save_theme
from mlci.tui.themes import HIGH_CONTRAST
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Footer, Tab, Tabs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mlci.engine.config.loader import Config
    from mlci.engine.demo.scenario import ScenarioPlayer
    from mlci.engine.events import Event
    from mlci.engine.loop.session import Session
    from textual.screen import Screen

__all__ = ["HEAVY_MODULES", "EngineEvent", "MlciApp"]

PANELS = (
    ("tiers", "Tiers"),
    ("output", "Output"),
    ("gates", "Gates"),
    ("metrics", "Metrics"),
    ("gpu", "GPU"),
    ("ci", "Push & CI"),
)
"""The panels of the narrow layout, in the order of their number keys (1-6) and tabs."""

HEAVY_MODULES = ("mlflow", "dvc", "torch", "sklearn", "pandas", "git")
"""Libraries that cost 0.1 to 2.7 s to import: none may be loaded before the first frame."""
OPEN_WAIT_S = 10.0
"""How long the last known state waits for the session to start watching before it is read anyway."""


_W = TypeVar("_W", bound=Widget)


def _panel(widget: _W) -> _W:
    """Mark a widget as one of the panels the narrow layout shows one at a time."""
    widget.add_class("panel")
    return widget


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
    | `1`-`6` | Narrow screens: show the tiers, output, gates, metrics, GPU, or push and CI panel. |
    | `?` | Every key of this screen. |
    | `ctrl+p` | The command palette: every action, and the themes. |
    | `q` | Quit (stops every run, leaves no process behind). |

    Clicking a tier's line reruns that tier.
    """

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    """Absolute, so that subclasses defined elsewhere (tests) find it too."""
    TITLE = "mlci"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (150, "-wide")]
    """Three columns from 150, two from 100, one panel at a time below (see app.tcss)."""
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
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("space", "scenario_pause", "Pause the story", show=False),
        Binding("n", "scenario_step", "Next step of the story", show=False),
        Binding("q", "quit", "Quit"),
        *(Binding(str(n), f"show_panel('{panel}')", title, show=False) for n, (panel, title) in enumerate(PANELS, 1)),
    ]

    def __init__(self, config: Config, *, start_engine: bool = True, scenario: bool = False) -> None:
        super().__init__()
        self.config = config
        self.scenario = scenario
        """Play the demo's story (`mlci demo --scenario`) once the session runs; space pauses, n steps."""
        self.player: ScenarioPlayer | None = None
        self.project_name = config.root.name
        self.start_engine = start_engine
        """False in tests that feed events by hand: no session, no watcher, no GPU sampling."""
        self.session: Session | None = None
        self._engine_stopped = threading.Event()
        """Set by stop_engine: a session or story still being made must not start."""
        self._remove_signal_handlers: Callable[[], None] | None = None
        self.heavy_at_first_paint: tuple[str, ...] | None = None
        """Which of HEAVY_MODULES were imported when the first frame was painted (for tests)."""

    def compose(self) -> ComposeResult:
        header = GitHeader(id="git-header")
        header.project = self.project_name
        yield header
        yield TierStrip(id="tier-strip")
        yield Tabs(
            *(Tab(f"{n} {title}", id=f"tab-{panel}") for n, (panel, title) in enumerate(PANELS, 1)), id="panel-tabs"
        )
        # The nesting lets app.tcss turn three columns into two, or into one panel at a time.
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield _panel(TierPanel(tuple(self.config.tiers), id="tiers"))
                yield _panel(FailuresPanel(id="failures"))
            with Container(id="rest"):
                with Vertical(id="center"):
                    yield _panel(OutputLog(id="output"))
                    yield _panel(GatesPanel(self.config, id="gates"))
                with Container(id="right"):
                    with Vertical(id="metrics-box"):
                        yield _panel(MetricsPanel(id="metrics"))
                        yield GpuTierLine(id="gpu-tier")
                    with Vertical(id="hw"):
                        yield _panel(GpuPanel(id="gpu"))
                        yield _panel(CiPanel(id="ci"))
        if self.scenario:
            yield CaptionBar(id="caption")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"mlci · {self.project_name}"
        self.register_theme(HIGH_CONTRAST)
        remembered = load_theme()
        if remembered in self.available_themes:
            self.theme = remembered
        self.theme_changed_signal.subscribe(self, lambda theme: save_theme(theme.name))
        self.action_show_panel("tiers")
        if not self.is_headless:  # a real terminal (`mlci-tui`): the process is the app's
            from mlci.tui.terminal_signals import quit_on_signals

            self._remove_signal_handlers = quit_on_signals(self)
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
        player = self.player
        if player is not None:
            player.observe(event)
        self.post_message(EngineEvent(event))

    @work(thread=True, exclusive=True, group="session")
    def start_session(self) -> None:
        from mlci.engine.loop.initial_run import TreeProofs
        from mlci.engine.loop.session import Session

        proofs = TreeProofs(self.config)
        emit = proofs.recording(self.post_engine_event)
        session = Session(self.config, emit=emit, gpu=True, warm_runner=True)
        self.session = session
        session.start()
        if self._engine_stopped.is_set():
            # Quit while the session was being made (`q` at the first frame): stop_engine may have found none.
            session.stop()
            return
        # The last known state is read once the watcher is ready: an edit made before then is in what it reads
        # (marked stale), one made after is a change the session plans for. Either way a verdict or a gate
        # report the tree has moved on from says so.
        session.wait_opened(OPEN_WAIT_S)
        if self._engine_stopped.is_set():
            return
        self.restore_last_state()
        if self.scenario:
            from mlci.engine.demo.scenario import ScenarioPlayer

            # The story begins on a quiet loop: no run at start, the sandbox is green as built.
            self.player = player = ScenarioPlayer(session, self.post_engine_event)
            if not self._engine_stopped.is_set():
                player.start()
            return
        proofs.initial_run(session.request, self.post_engine_event)  # a verdict at once, unless proven green

    def on_unmount(self) -> None:
        self.stop_engine()
        # Only now: a terminal closed while the runs were being stopped still ends the process cleanly.
        if self._remove_signal_handlers is not None:
            self._remove_signal_handlers()

    def stop_engine(self) -> None:
        """Stop the story and the session: every run cancelled, no process left.

        From any thread; a second call finds nothing left to stop. A session still being made when it is called
        is stopped by `start_session` once made.
        """
        self._engine_stopped.set()
        if self.player is not None:
            self.player.stop()
        if self.session is not None:
            self.session.stop()

    def on_engine_event(self, message: EngineEvent) -> None:
        try:
            self._show(message.event)
        except NoMatches:
            # Quitting (no longer running): the widgets are removed before the engine's last events
            # stop coming, a git refresh that ends after a push, say. Nothing is left to show them on.
            if self.is_running:
                raise

    def _show(self, event: Event) -> None:
        if isinstance(event, ScenarioCaption):
            self.query_one(CaptionBar).caption = event
            return
        if isinstance(event, GitState):
            self.query_one(GitHeader).state = event
            return
        if isinstance(event, GpuSample):
            self.query_one(GpuPanel).update_sample(event)
            tier_line = self.query_one(GpuTierLine)
            tier_line.update_sample(event)
            tier_line.set_class(not event.devices, "-no-gpu")  # with no GPU, the panel's one line says so
            return
        if isinstance(event, Notice) and event.source == "watch":
            self.query_one(GitHeader).note = event.text
        if isinstance(event, Notice) and event.level in ("warning", "error") and event.source not in ("metrics",):
            self.notify(event.text, severity="warning" if event.level == "warning" else "error", timeout=8)
        tiers = self.query_one(TierPanel)
        tiers.handle(event)
        self.query_one(TierStrip).rows = tiers.rows
        self.query_one(OutputLog).handle(event)
        self.query_one(FailuresPanel).handle(event)
        self.query_one(MetricsPanel).on_engine_event(event)
        self.query_one(GatesPanel).on_engine_event(event)
        self.query_one(CiPanel).handle(event)

    def restore_last_state(self) -> None:
        """Open on a live picture: the last verdicts, gate report and curves that earlier sessions left (from the
        session's worker thread)."""
        from mlci.engine.loop.last_state import last_known_state

        last_known_state(self.config, self.post_engine_event)

    @work(thread=True, exclusive=True, group="git")
    def refresh_git_state(self) -> None:
        """Read the git state off the UI thread (GitPython shells out to git).

        A git that cannot read the repository (dubious ownership, corruption) is a notice
        and a note in the header; an exception here would end the worker, and the app with it.
        """
        from mlci.engine.config.redact import mask_credentials
        from mlci.engine.git.state import read_git_state

        try:
            state = read_git_state(self.config.root)
        except Exception as exc:
            self.post_engine_event(Notice("error", mask_credentials(str(exc)), source="git"))
            self.call_from_thread(self._set_header, "note", "git cannot read this repository")
            return
        if state is not None:
            self.post_engine_event(state)
        else:
            self.call_from_thread(self._set_header, "no_repository", True)

    def _set_header(self, name: str, value: object) -> None:
        """On the UI thread: the worker never touches a widget, and a header already gone (quitting) is fine."""
        for header in self.query(GitHeader):
            setattr(header, name, value)

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

    def on_tier_panel_rerun_requested(self, message: TierPanel.RerunRequested) -> None:
        self.action_run_tier(message.tier.value)

    def action_help(self) -> None:
        """Every key that works here, from the active bindings (the app's and the focused widget's)."""
        if isinstance(self.screen, HelpScreen):
            return
        keys = [
            (active.binding.key_display or self.get_key_display(active.binding), active.binding.description)
            for active in self.active_bindings.values()
            if active.binding.description
        ]
        self.push_screen(HelpScreen(keys))

    def action_show_panel(self, panel: str) -> None:
        """Show one panel in the narrow layout (the wider layouts show them all)."""
        for name, _ in PANELS:
            self.screen.set_class(name == panel, f"-show-{name}")
        tabs = self.query_one(Tabs)
        if tabs.active != f"tab-{panel}":
            tabs.active = f"tab-{panel}"

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id is not None:
            self.action_show_panel(event.tab.id.removeprefix("tab-"))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own commands (themes, keys, quit), then every dashboard action."""
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or binding.action in ("quit", "help"):
                continue
            if not self.check_action(binding.action, ()):
                continue
            yield SystemCommand(
                binding.description,
                f"key {binding.key_display or binding.key}",
                lambda action=binding.action: self.run_action(action),
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The talk's keys exist only while a talk plays (so `?` and the palette list them only then)."""
        if action.startswith("scenario_"):
            return self.scenario
        return True

    def action_scenario_pause(self) -> None:
        if self.player is not None:
            self.player.toggle_pause()

    def action_scenario_step(self) -> None:
        if self.player is not None:
            self.player.step()

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
        """Ask the session what a push would send, then ask the person (the confirmation screen shows it)."""
        from mlci.engine.errors import MlciError

        session = self.session
        if session is None:
            self.call_from_thread(self.notify, "the engine is still starting", severity="warning")
            return
        try:
            plan = session.plan_push()
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

    def run_push(self, decision: PushDecision) -> None:
        """Hand the push to the session: it checks the commit on its own runner, pushes it, follows CI.

        Its tiers, progress and CI runs arrive as events like every other; `x` cancels its
        check (nothing is pushed) and quitting stops it.
        """
        session = self.session
        if session is None:
            self.notify("the engine is still starting", severity="warning")
            return
        if not session.push(decision.plan, verify=not decision.no_verify):
            self.notify("a push is already under way", severity="warning")
