"""The loop: watch the project, plan each change set, run the tiers it needs, and report every step as an event.

One coordinator thread owns all decisions; it takes commands from a queue (a change from
the watcher, a request or a cancel from the user, a run that finished, stop) and starts each
tier run in a thread of its own. The policies:

* code and data tiers run one at a time, in order; a change that needs the tier that is
  running cancels that run (its whole process group) and it starts again;
* the model tier is never cancelled by a change: it finishes, each new change that needs
  it is counted (`TierStale`), and it runs once more after. The code tier may run beside
  it, so a unit test's verdict never waits for a training; the data tier waits, because the
  model's stages rewrite the data it reads;
* a red tier holds the tiers after it (`held_by`): they finish HELD, with the reason;
* no change is lost: work that cannot start yet is merged (tiers, stages, full training)
  and runs as soon as it can, so the tree as it is after the last edit always gets a verdict.

`emit` is called from the coordinator and from the run threads: it must be cheap and
thread-safe (the TUI posts a message, the printer writes a line under a lock).
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlci.engine.errors import MlciError
from mlci.engine.events import (
    TIER_ORDER,
    ChangeDetected,
    Event,
    Notice,
    PlanMade,
    Tier,
    TierFinished,
    TierStale,
    Trigger,
    Verdict,
)
from mlci.engine.run.tier_run import TierRun
from mlci.engine.telemetry.model_run_companions import ModelRunCompanions

if TYPE_CHECKING:
    from mlci.engine.config.loader import Config
    from mlci.engine.loop.history import History
    from mlci.engine.loop.plan import Planner
    from mlci.engine.loop.watch import Watcher
    from mlci.engine.telemetry.gpu.monitor import GpuMonitor

__all__ = ["Session"]

Emit = Callable[[Event], None]

UNSUPPRESS_DELAY_S = 3.0
"""How long the outputs of a finished model run stay ignored: its last writes may reach the watcher late."""
STOP_JOIN_S = 30.0
"""How long `stop` waits for the runs to be killed and their threads to end."""
FAST_TIERS = (Tier.CODE, Tier.DATA)
"""Tiers cancelled and restarted when a change needs them mid-run."""


@dataclass
class _Work:
    """A tier's work that has not started yet: every plan that asked for it, merged into one run."""

    plan_id: int
    stages: list[str] = field(default_factory=list)
    full: bool = False

    def merge(self, plan_id: int, stages: Iterable[str], full: bool) -> None:
        self.plan_id = plan_id
        self.stages.extend(s for s in stages if s not in self.stages)
        self.full = self.full or full


@dataclass
class _Active:
    run: TierRun
    thread: threading.Thread
    stale: int = 0
    """Changes that needed this (model) run since it started."""


@dataclass(frozen=True)
class _Change:
    change: ChangeDetected


@dataclass(frozen=True)
class _Request:
    tiers: tuple[Tier, ...] | None
    full: bool
    reason: str


@dataclass(frozen=True)
class _Done:
    tier: Tier
    finished: TierFinished
    suppressed: tuple[str, ...] = ()
    """Paths the run had the watcher ignore: released a little later."""


class _Cancel:
    pass


class _Stop:
    pass


_Command = _Change | _Request | _Done | _Cancel | _Stop


class Session:
    """The watch-plan-run loop over one project. Thread-safe: call its methods from any thread."""

    def __init__(
        self,
        config: Config,
        *,
        emit: Emit,
        watch: bool = True,
        record_history: bool = True,
        quiet_period_s: float = 0.25,
        force_polling: bool = False,
        gpu: bool = False,
    ) -> None:
        self.config = config
        self._gpu = gpu
        """Sample the GPUs once a second (GpuSample events), marking the running tier's processes."""
        self._gpu_monitor: GpuMonitor | None = None
        self._companions = ModelRunCompanions(config.mlflow.tracking_uri, self.emit)
        self._user_emit = emit
        self._watch = watch
        self._record_history = record_history
        self._quiet_period_s = quiet_period_s
        self._force_polling = force_polling
        self._queue: queue.Queue[_Command] = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._outstanding = 0
        """Commands queued but not handled yet (under _lock): the loop is idle only when none are."""
        self._thread: threading.Thread | None = None
        self._history: History | None = None
        self._watcher: Watcher | None = None
        self._planner: Planner | None = None
        # Owned by the coordinator thread (read under _lock by running_pgids):
        self._pending: dict[Tier, _Work] = {}
        self._active: dict[Tier, _Active] = {}
        self._verdicts: dict[Tier, Verdict] = {}
        self._ids = {"plan": 0, "run": 0}
        self._unsuppress_due: list[tuple[float, tuple[str, ...]]] = []
        self._stopping = False

    # -- commands (any thread) -------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop (and, with `watch`, the watcher); returns at once. Emits a Notice when watching."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="mlci-session", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Cancel every run, kill its process group, stop watching; returns when no process of ours is left."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._put(_Stop())
        thread.join(STOP_JOIN_S)

    @property
    def alive(self) -> bool:
        """Whether the loop runs (False before `start`, after `stop`, or when it could not start)."""
        return self._thread is not None and self._thread.is_alive()

    def request(self, tiers: Iterable[Tier] | None = None, *, full: bool = False, reason: str = "requested") -> None:
        """Run these tiers (None: every tier) now, as if a change needed them; `full` trains in full mode.

        `reason` is the plan's trigger rule, shown by `mlci why` ("requested", "mlci check").
        """
        self._put(_Request(None if tiers is None else tuple(tiers), full, reason))

    def cancel(self) -> None:
        """Cancel the running tiers and drop the work waiting to run."""
        self._put(_Cancel())

    def running_pgids(self) -> set[int]:
        """The process groups of the tier commands running now (the GPU panel marks them as ours)."""
        with self._lock:
            runs = [active.run for active in self._active.values()]
        return {pgid for run in runs for pgid in run.pgids}

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no tier runs or waits to run; False on timeout."""
        return self._idle.wait(timeout)

    @property
    def verdicts(self) -> dict[Tier, Verdict]:
        """The last verdict of each tier this session ran (cancelled runs leave the previous one)."""
        with self._lock:
            return dict(self._verdicts)

    def _put(self, command: _Command) -> None:
        with self._lock:
            self._outstanding += 1
            self._idle.clear()
        self._queue.put(command)

    def _settle(self) -> None:
        """One command handled: the loop is idle when nothing runs, waits, or is queued."""
        with self._lock:
            self._outstanding -= 1
            if not self._outstanding and not self._active and not self._pending:
                self._idle.set()

    # -- the coordinator thread ----------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Record `event` in the history, start or stop what runs beside the model tier, then hand it on."""
        self._companions.observe(event)
        history = self._history
        if history is not None:
            try:
                history.record(event)
            except sqlite3.Error as exc:
                self._history = None
                self._user_emit(Notice("warning", f"run history is off: {exc}", source="history"))
        self._user_emit(event)

    def _loop(self) -> None:
        try:
            self._open()
        except Exception as exc:  # no planner or no watcher: the loop cannot work at all
            self.emit(Notice("error", f"mlci could not start: {type(exc).__name__}: {exc}", source="session"))
            self._shutdown()
            return
        try:
            while True:
                command = self._next_command()
                if command is None:
                    continue
                if isinstance(command, _Stop):
                    break
                try:
                    self._handle(command)
                    self._dispatch()
                except Exception as exc:  # one bad command must not stop the loop
                    self.emit(Notice("error", f"internal error: {type(exc).__name__}: {exc}", source="session"))
                self._settle()
        finally:
            self._shutdown()

    def _open(self) -> None:
        from mlci.engine.loop.plan import Planner

        if self._record_history:
            from mlci.engine.loop.history import History

            try:
                self._history = History(self.config.root)
            except (OSError, sqlite3.Error) as exc:
                self._user_emit(Notice("warning", f"run history is off: {exc}", source="history"))
        self._planner = Planner(self.config)
        if self._gpu:
            self._start_gpu_monitor()
        if self._watch:
            from mlci.engine.loop.watch import Watcher

            self._watcher = Watcher(
                self.config.root,
                on_change=lambda change: self._put(_Change(change)),
                on_notice=self.emit,
                quiet_period_s=self._quiet_period_s,
                force_polling=self._force_polling,
            )
            self._watcher.start()
            self._watcher.wait_ready()
            how = "polling" if self._watcher.polling else "native events"
            self.emit(Notice("info", f"watching {self.config.root} ({how})", source="watch"))
            self._refresh_git_state()

    def _start_gpu_monitor(self) -> None:
        from mlci.engine.events import GpuSample
        from mlci.engine.telemetry.gpu.monitor import GpuMonitor
        from mlci.engine.telemetry.gpu.sampler import open_sampler

        try:
            sampler = open_sampler(self.running_pgids)
        except MlciError as exc:  # an unreadable MLCI_GPU_RECORDING: say so on the panel
            self.emit(GpuSample((), status=str(exc)))
            return
        self._gpu_monitor = GpuMonitor(sampler, self.emit)
        self._gpu_monitor.start()

    def _next_command(self) -> _Command | None:
        timeout = None
        if self._unsuppress_due:
            timeout = max(0.0, min(due for due, _ in self._unsuppress_due) - time.monotonic())
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            now = time.monotonic()
            for item in [item for item in self._unsuppress_due if item[0] <= now]:
                self._unsuppress_due.remove(item)
                self._release(item[1])
            return None

    def _handle(self, command: _Command) -> None:
        if isinstance(command, _Change):
            self._on_change(command.change)
        elif isinstance(command, _Request):
            self._on_request(command)
        elif isinstance(command, _Done):
            self._on_done(command)
        elif isinstance(command, _Cancel):
            self._pending.clear()
            for active in self._active.values():
                active.run.cancel("cancelled by you")

    def _next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def _on_change(self, change: ChangeDetected) -> None:
        assert self._planner is not None
        self.emit(change)
        plan = self._planner.plan(change, plan_id=self._next_id("plan"))
        if plan is not None:
            self.emit(plan)
            self._merge(plan, full=False)
        self._dispatch()
        self._refresh_git_state()

    def _on_request(self, request: _Request) -> None:
        assert self._planner is not None
        plan_id = self._next_id("plan")
        if request.tiers is None:
            plan = self._planner.plan_all(plan_id=plan_id, reason=request.reason)
        else:
            tiers = tuple(t for t in TIER_ORDER if t in request.tiers and t in self.config.tiers)
            stages: tuple[str, ...] = ()
            if Tier.MODEL in tiers:
                try:
                    stages = self._planner.stale_stages()
                except MlciError as exc:  # `dvc repro` of the whole pipeline decides for itself
                    self.emit(Notice("warning", f"DVC could not tell which stages are stale: {exc}", source="plan"))
            plan = PlanMade(plan_id, tiers, tuple(Trigger(t, request.reason) for t in tiers), stages=stages)
        self.emit(plan)
        self._merge(plan, full=request.full)

    def _merge(self, plan: PlanMade, *, full: bool) -> None:
        """Add the plan's tiers to the waiting work; a running tier it needs is restarted or marked stale."""
        for tier in plan.tiers:
            if tier not in self.config.tiers:
                continue
            stages = plan.stages if tier is Tier.MODEL else ()
            work = self._pending.get(tier)
            if work is None:
                self._pending[tier] = _Work(plan.plan_id, list(stages), full and tier is Tier.MODEL)
            else:
                work.merge(plan.plan_id, stages, full and tier is Tier.MODEL)
            active = self._active.get(tier)
            if active is None:
                continue
            if tier in FAST_TIERS:
                active.run.cancel("superseded: a newer change needs this tier")
            else:
                active.stale += 1
                self.emit(TierStale(tier, active.run.run_id, active.stale))

    def _on_done(self, done: _Done) -> None:
        with self._lock:
            active = self._active.pop(done.tier, None)
            if done.finished.verdict is not Verdict.CANCELLED:
                self._verdicts[done.tier] = done.finished.verdict
        if active is not None:
            active.thread.join()
        if done.suppressed:
            self._unsuppress_due.append((time.monotonic() + UNSUPPRESS_DELAY_S, done.suppressed))

    def _dispatch(self) -> None:
        """Start every tier that can start now, in gating order; finish HELD those a red tier holds."""
        if self._stopping:
            return
        from mlci.engine.loop.plan import held_by

        for tier in TIER_ORDER:
            if tier not in self._pending:
                continue
            fast_busy = any(t in self._active for t in FAST_TIERS)
            if tier is Tier.MODEL:
                if fast_busy or Tier.MODEL in self._active or any(t in self._pending for t in FAST_TIERS):
                    continue
            elif fast_busy or (tier is Tier.DATA and Tier.MODEL in self._active):
                return
            work = self._pending.pop(tier)
            holder = held_by(tier, self.verdicts)
            if holder is not None:
                self.emit(
                    TierFinished(
                        self._next_id("run"),
                        tier,
                        Verdict.HELD,
                        0.0,
                        reason=f"held: {holder.value} tier is red",
                        plan_id=work.plan_id,
                    )
                )
                continue
            self._start(tier, work)

    def _start(self, tier: Tier, work: _Work) -> None:
        run = TierRun(
            self.config,
            tier,
            run_id=self._next_id("run"),
            plan_id=work.plan_id,
            emit=self.emit,
            stages=work.stages,
            full=work.full,
        )
        thread = threading.Thread(target=self._run, args=(run,), name=f"mlci-{tier.value}-{run.run_id}", daemon=True)
        with self._lock:
            self._active[tier] = _Active(run, thread)
        thread.start()

    def _run(self, run: TierRun) -> None:
        """A run thread: the model tier's outputs are ignored by the watcher while its stages write them."""
        paths: tuple[str, ...] = ()
        try:
            if run.tier is Tier.MODEL and self._watcher is not None:
                paths = self._model_outputs()
                self._watcher.suppress(paths)  # nests: overlapping runs each release their own
            finished = run.run()
        except Exception as exc:  # a bug in a run must still end the run, or the loop would wait forever
            finished = TierFinished(
                run.run_id, run.tier, Verdict.ERROR, 0.0, reason=f"internal error: {exc}", plan_id=run.plan_id
            )
            self.emit(finished)
        self._put(_Done(run.tier, finished, paths))

    def _model_outputs(self) -> tuple[str, ...]:
        from mlci.engine.loop.dvc_graph import load_stage_graph

        try:
            graph = load_stage_graph(self.config.root)
        except MlciError as exc:  # DVC cannot read the pipeline: `dvc repro` will say why
            self.emit(Notice("warning", f"could not list the pipeline's outputs: {exc}", source="watch"))
            return ("dvc.lock",)
        return (*(out for stage in graph.stages if stage.is_pipeline for out in stage.outs), "dvc.lock")

    def _release(self, paths: tuple[str, ...]) -> None:
        if self._watcher is not None:
            self._watcher.unsuppress(paths)

    def _refresh_git_state(self) -> None:
        from mlci.engine.git.state import read_git_state

        try:
            state = read_git_state(self.config.root)
        except Exception as exc:  # git missing or the repository half-written: not the loop's problem
            self.emit(Notice("warning", f"could not read the git state: {exc}", source="git"))
            return
        if state is not None:
            self.emit(state)

    def _shutdown(self) -> None:
        self._stopping = True
        with self._lock:
            actives = list(self._active.values())
        for active in actives:
            active.run.cancel("mlci is stopping")
        for active in actives:
            active.thread.join(STOP_JOIN_S)
        with self._lock:
            self._active.clear()
        self._pending.clear()
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                self._watcher.stop()
        if self._gpu_monitor is not None:
            self._gpu_monitor.stop()
        self._companions.stop()
        if self._history is not None:
            self._history.close()
            self._history = None
        self._idle.set()
