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
  and runs as soon as it can, so the tree as it is after the last edit always gets a verdict;
* the pre-push check (`check`, and `push`, which checks, pushes and follows CI) is the
  session's own work too: its tiers run one at a time, in order, on the checked commit
  (in place or in a temporary worktree), held by its own red verdicts, numbered with the
  session's run ids and cancelled by its `cancel`. A tier never runs twice at once: the
  watcher's run of a tier waits for the check's run of it, and the other way round.

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
    SUPERSEDED,
    TIER_ORDER,
    ChangeDetected,
    Event,
    Notice,
    PlanMade,
    PushPlan,
    Tier,
    TierFinished,
    TierStale,
    Trigger,
    Verdict,
)
from mlci.engine.run.affected import has_fingerprints
from mlci.engine.run.tier_run import TierRun
from mlci.engine.telemetry.model_run_companions import ModelRunCompanions

if TYPE_CHECKING:
    from mlci.engine.config.loader import Config
    from mlci.engine.git.push import PushOutcome
    from mlci.engine.loop.check import CheckResult, CheckVerdicts
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
CHECK_CANCELLED = "the check was cancelled"
"""The failure line of a check that `cancel` or `stop` ended: nothing is pushed after it."""
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


@dataclass
class _Check:
    """A pre-push check in the coordinator's hands: its tiers in order, on its own site, with its own verdicts."""

    config: Config
    """The config of the checked commit; its root is the worktree (or the project, in place)."""
    todo: list[Tier]
    full: bool
    reason: str
    verdicts: CheckVerdicts
    done: threading.Event = field(default_factory=threading.Event)
    plan_id: int = 0
    held: dict[Tier, Verdict] = field(default_factory=dict)
    """The check's own verdicts: a red tier holds the check's later tiers, not the watcher's."""
    active: _Active | None = None
    cancelled: bool = False
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    """Set by `Session.cancel` from any thread, possibly before the coordinator has this check."""

    def emit_to(self, emit: Emit) -> Emit:
        def both(event: Event) -> None:
            self.verdicts.observe(event)
            emit(event)

        return both


@dataclass(frozen=True)
class _CheckStart:
    check: _Check


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
    check: bool = False
    """The run was the pre-push check's."""


class _Cancel:
    pass


class _Stop:
    pass


_Command = _Change | _Request | _CheckStart | _Done | _Cancel | _Stop


class Session:
    """The watch-plan-run loop over one project. Thread-safe: call its methods from any thread."""

    def __init__(
        self,
        config: Config,
        *,
        emit: Emit,
        watch: bool = True,
        record_history: bool = True,
        quiet_period_s: float | None = None,
        force_polling: bool = False,
        gpu: bool = False,
        warm_runner: bool = False,
    ) -> None:
        self.config = config
        self._warm_runner = warm_runner and config.runner == "warm"
        """Each tier's pytest runs fork from a preloaded server kept for the session (`runner:` in the config)."""
        self._gpu = gpu
        """Sample the GPUs once a second (GpuSample events), marking the running tier's processes."""
        self._gpu_monitor: GpuMonitor | None = None
        self._companions = ModelRunCompanions(
            config.mlflow.tracking_uri,
            self.emit,
            root=config.root,
            mlflow_used=config.mlflow.used,
            main_branch=config.git.main_branch,
        )
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
        self._opened = threading.Event()
        """Set once the loop has opened: watching (the watcher ready), or not able to start."""
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
        self._check: _Check | None = None
        """The pre-push check in progress (one at a time); owned by the coordinator, read under _lock."""
        self._checks_waiting: list[_Check] = []
        self._check_cancels: set[threading.Event] = set()
        """One per `check` under way, set by `cancel` and `stop` at once: a check still preparing its
        worktree (before the coordinator has it) must not start its tiers afterwards."""
        self._push_lock = threading.Lock()
        self._push_thread: threading.Thread | None = None
        self._ci_stop = threading.Event()
        """Set by `stop`: ends the wait of the CI follower between two polls."""

    # -- commands (any thread) -------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop (and, with `watch`, the watcher); returns at once. Emits a Notice when watching."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="mlci-session", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Cancel every run (a push's check too: nothing is pushed), stop watching; return when no process is left."""
        self._ci_stop.set()
        self._cancel_checks()
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._put(_Stop())
            thread.join(STOP_JOIN_S)
        push = self._push_thread
        if push is not None and push is not threading.current_thread():
            push.join(STOP_JOIN_S)  # it removes the check's worktree on its way out

    def wait_opened(self, timeout: float) -> bool:
        """Wait until the loop has opened (with `watch`: every change from now on is seen); whether it has.

        What reads the tree's state for the user (the last known verdicts, stale or not) reads it after this:
        an edit made before is in what it reads, one made after is a change the session plans for.
        """
        return self._opened.wait(timeout)

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
        """Cancel the running tiers and drop the work waiting to run; a push's check ends and nothing is pushed."""
        self._cancel_checks()
        self._put(_Cancel())

    def _cancel_checks(self) -> None:
        with self._lock:
            for cancelled in self._check_cancels:
                cancelled.set()

    # -- the pre-push check and the push (any thread but the coordinator) ------------------------------

    def check(self, rev: str = "HEAD", *, full: bool = False) -> CheckResult:
        """Check the commit `rev` (every tier in order, the quick model tier, the gates) and wait for the verdict.

        The commit is checked in place when the working tree is exactly that commit and this
        session does not watch (a person editing during the check would mix in), else in a
        temporary worktree. A content already proven green answers from the history at once.
        """
        cancelled = self._cancel_token()
        try:
            return self._check_commit(rev, full, cancelled)
        finally:
            self._drop_cancel_token(cancelled)

    def _cancel_token(self) -> threading.Event:
        """A flag that `cancel` and `stop` set: taken before a check or push starts, so no `x` is missed."""
        cancelled = threading.Event()
        with self._lock:
            self._check_cancels.add(cancelled)
        return cancelled

    def _drop_cancel_token(self, cancelled: threading.Event) -> None:
        with self._lock:
            self._check_cancels.discard(cancelled)

    def _check_commit(self, rev: str, full: bool, cancelled: threading.Event) -> CheckResult:
        from mlci.engine.loop.check import CheckResult, check_commit

        if cancelled.is_set():
            return CheckResult(False, (CHECK_CANCELLED,))
        result = check_commit(
            self.config,
            rev,
            emit=self.emit,
            full=full,
            run_tiers=lambda config, full, reason: self._check_tiers(config, full, reason, cancelled),
            in_place=not self._watch,
        )
        return CheckResult(False, (CHECK_CANCELLED,)) if cancelled.is_set() else result

    def plan_push(self, remote: str | None = None) -> PushPlan:
        """What a push of the current branch would send (read-only); MlciError with one line when it cannot."""
        from mlci.engine.git.push import plan_push

        return plan_push(self.config.root, remote=remote or self.config.git.remote)

    def run_push(
        self,
        plan: PushPlan,
        *,
        verify: bool = True,
        interactive: bool = False,
        cancelled: threading.Event | None = None,
    ) -> PushOutcome:
        """Check the plan's commit, then push that very commit; blocks. PushProgress events tell the steps.

        Raises MlciError with one line when nothing arrived on the remote (a red or cancelled
        check, the branch moved, git refused).
        """
        from mlci.engine.git.push import push_branch

        token = cancelled if cancelled is not None else self._cancel_token()

        def check() -> CheckResult:
            return self._check_commit(plan.head, False, token)

        try:
            return push_branch(
                plan.root,
                remote=plan.remote,
                check=check if verify else None,
                progress=self.emit,
                plan=plan,
                interactive=interactive,
            )
        finally:
            self._drop_cancel_token(token)

    def push(self, plan: PushPlan, *, verify: bool = True, follow_ci: bool = True) -> bool:
        """Check, push and follow the remote CI run, in the background; False when a push is already under way.

        Every step is an event (PushProgress, the check's tiers, CiStatus); `cancel` stops the
        check and nothing is pushed; `stop` ends it all and waits for it.
        """
        with self._push_lock:
            if self._push_thread is not None and self._push_thread.is_alive():
                return False
            self._push_thread = threading.Thread(
                target=self._push, args=(plan, verify, follow_ci, self._cancel_token()), name="mlci-push", daemon=True
            )
            self._push_thread.start()
        return True

    def _push(self, plan: PushPlan, verify: bool, follow_ci: bool, cancelled: threading.Event) -> None:
        try:
            outcome = self.run_push(plan, verify=verify, cancelled=cancelled)
        except MlciError:
            return  # the last PushProgress event carries the message
        except Exception as exc:  # a bug must still end the push visibly
            from mlci.engine.events import PushProgress

            self.emit(PushProgress(stage="done", message=f"internal error: {type(exc).__name__}: {exc}", ok=False))
            return
        finally:
            if not self._ci_stop.is_set():  # stopping: nobody is left to show it
                self._refresh_git_state()
        if outcome.pushed and follow_ci and not self._ci_stop.is_set():
            from mlci.engine.ci.follow import follow_after_push

            follow_after_push(
                self.config.root, outcome.plan.head, emit=self.emit, remote=plan.remote, stop=self._ci_stop
            )

    def _check_tiers(self, config: Config, full: bool, reason: str, cancelled: threading.Event) -> CheckResult:
        """Run the check's tiers on `config`'s root through the coordinator, and wait for their verdicts."""
        from mlci.engine.loop.check import CheckResult, CheckVerdicts

        tiers = [t for t in TIER_ORDER if t in config.tiers]
        check = _Check(config, list(tiers), full, reason, CheckVerdicts(), cancel_requested=cancelled)
        if not self.alive or self._stopping or cancelled.is_set():
            return CheckResult(False, (CHECK_CANCELLED,))
        self._put(_CheckStart(check))
        while not check.done.wait(0.2):
            if not self.alive:
                check.cancelled = True
                break
        if check.cancelled:
            return CheckResult(False, (CHECK_CANCELLED,))
        return check.verdicts.result(tiers)

    def running_pgids(self) -> set[int]:
        """The process groups of the tier commands running now (the GPU panel marks them as ours)."""
        with self._lock:
            runs = [active.run for active in self._active.values()]
            if self._check is not None and self._check.active is not None:
                runs.append(self._check.active.run)
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
            if not (self._outstanding or self._active or self._pending or self._check or self._checks_waiting):
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
        finally:
            self._opened.set()
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
            # The first change should not wait for DVC's stage graph (importing dvc and networkx: 0.35 s).
            threading.Thread(target=self._planner.warm, name="mlci-plan-warm", daemon=True).start()
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
        elif isinstance(command, _CheckStart):
            self._on_check_start(command.check)
        elif isinstance(command, _Done):
            self._on_done(command)
        elif isinstance(command, _Cancel):
            self._pending.clear()
            for active in self._active.values():
                active.run.cancel("cancelled by you")
            for waiting in self._checks_waiting:
                waiting.cancelled = True
                waiting.done.set()
            self._checks_waiting.clear()
            check = self._check
            if check is not None:
                check.cancelled = True
                check.todo.clear()
                if check.active is not None:
                    check.active.run.cancel("cancelled by you")

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
        elif change.head_moved and not change.paths:
            self.emit(Notice("info", "HEAD moved, no file changed: every verdict stands", source="plan"))
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
                active.run.cancel(SUPERSEDED)
            else:
                active.stale += 1
                self.emit(TierStale(tier, active.run.run_id, active.stale))

    def _on_check_start(self, check: _Check) -> None:
        if check.cancel_requested.is_set():  # `x` came while the check was still being prepared
            check.cancelled = True
            check.done.set()
            return
        if self._check is not None:  # one check at a time: the next starts when this one is done
            self._checks_waiting.append(check)
            return
        check.plan_id = self._next_id("plan")
        self.emit(PlanMade(check.plan_id, tuple(check.todo), tuple(Trigger(t, check.reason) for t in check.todo)))
        with self._lock:
            self._check = check

    def _on_done(self, done: _Done) -> None:
        if done.check:
            check = self._check
            if check is not None and check.active is not None:
                check.active.thread.join()
                with self._lock:
                    check.active = None
                if done.finished.verdict is not Verdict.CANCELLED:
                    check.held[done.tier] = done.finished.verdict
            return
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

        self._dispatch_check()
        check = self._check
        checking = check.active.run.tier if check is not None and check.active is not None else None
        for tier in TIER_ORDER:
            if tier not in self._pending:
                continue
            fast_busy = any(t in self._active for t in FAST_TIERS)
            if tier is Tier.MODEL:
                if (
                    fast_busy
                    or Tier.MODEL in self._active
                    or any(t in self._pending for t in FAST_TIERS)
                    or checking is Tier.MODEL
                ):
                    continue
            elif fast_busy or (tier is Tier.DATA and Tier.MODEL in self._active) or checking is tier:
                return
            work = self._pending.pop(tier)
            holder = held_by(tier, self.verdicts)
            if holder is not None:
                self.emit(self._held(tier, holder, work.plan_id))
                continue
            self._start(tier, work)

    def _held(self, tier: Tier, holder: Tier, plan_id: int) -> TierFinished:
        """The verdict of a tier a red tier holds: it never starts, so it gets its run id here."""
        return TierFinished(
            self._next_id("run"), tier, Verdict.HELD, 0.0, reason=f"held: {holder.value} tier is red", plan_id=plan_id
        )

    def _dispatch_check(self) -> None:
        """Start the check's next tier when the watcher's run of it is over; finish the check when none is left."""
        from mlci.engine.loop.plan import held_by

        check = self._check
        if check is None or check.active is not None:
            return
        emit = check.emit_to(self.emit)
        while check.todo:
            tier = check.todo[0]
            in_place = check.config.root == self.config.root
            if tier in self._active or (in_place and tier is Tier.DATA and Tier.MODEL in self._active):
                return  # never the same tier twice at once; its _Done dispatches again
            check.todo.pop(0)
            holder = held_by(tier, check.held)
            if holder is not None:
                check.held[tier] = Verdict.HELD
                emit(self._held(tier, holder, check.plan_id))
                continue
            # A check only checks: the registry gets a challenger when the user's own loop trains one.
            run = TierRun(
                check.config,
                tier,
                run_id=self._next_id("run"),
                plan_id=check.plan_id,
                emit=emit,
                full=check.full,
                register=False,
                affected=has_fingerprints(check.config.root),  # none in a temporary worktree: nothing follows there
            )
            thread = threading.Thread(
                target=self._run, args=(run, True), name=f"mlci-check-{tier.value}-{run.run_id}", daemon=True
            )
            with self._lock:
                check.active = _Active(run, thread)
            thread.start()
            return
        with self._lock:
            self._check = None
        check.done.set()
        if self._checks_waiting:
            self._on_check_start(self._checks_waiting.pop(0))
            self._dispatch_check()

    def _start(self, tier: Tier, work: _Work) -> None:
        run = TierRun(
            self.config,
            tier,
            run_id=self._next_id("run"),
            plan_id=work.plan_id,
            emit=self.emit,
            stages=work.stages,
            full=work.full,
            warm=self._warm_runner,
            # A watching session's runs follow each other; a one-shot run uses what an earlier one recorded.
            affected=self._watch or has_fingerprints(self.config.root),
        )
        thread = threading.Thread(target=self._run, args=(run,), name=f"mlci-{tier.value}-{run.run_id}", daemon=True)
        with self._lock:
            self._active[tier] = _Active(run, thread)
        thread.start()

    def _run(self, run: TierRun, check: bool = False) -> None:
        """A run thread: the model tier's outputs are ignored by the watcher while its stages write them."""
        paths: tuple[str, ...] = ()
        try:
            if run.tier is Tier.MODEL and self._watcher is not None and run.config.root == self.config.root:
                paths = self._model_outputs()
                self._watcher.suppress(paths)  # nests: overlapping runs each release their own
            finished = run.run()
        except Exception as exc:  # a bug in a run must still end the run, or the loop would wait forever
            finished = TierFinished(
                run.run_id, run.tier, Verdict.ERROR, 0.0, reason=f"internal error: {exc}", plan_id=run.plan_id
            )
            self.emit(finished)
        self._put(_Done(run.tier, finished, paths, check=check))

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
        check = self._check
        with self._lock:
            actives = list(self._active.values())
            if check is not None and check.active is not None:
                actives.append(check.active)
        for active in actives:
            active.run.cancel("mlci is stopping")
        for active in actives:
            active.thread.join(STOP_JOIN_S)
        with self._lock:
            self._active.clear()
            self._check = None
        for ended in [check, *self._checks_waiting]:
            if ended is not None:
                ended.cancelled = True
                ended.done.set()
        self._checks_waiting.clear()
        self._pending.clear()
        if self._warm_runner:
            from mlci.engine.run.warm.client import stop_servers

            stop_servers(self.config.root)  # each kills its running child's group first
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
