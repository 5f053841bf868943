"""The talk that plays itself: `mlci demo --scenario` tells the loop's story on a demo sandbox.

Each step changes the sandbox the way a person would (an edit, drifted data, a param, a
promotion, a push) and then waits for the loop's own verdict on it, never for a timer, so
a talk can be rehearsed and the story holds on a slow laptop. The player works on the
events of the session the dashboard (or `mlci demo --scenario --headless`) runs: it is fed
with `observe` and drives the session only through its public commands.

The story (quick mode):
 1. a bug in the feature scaling: the code tier goes red, naming the failing test;
 2. the fix: green again;
 3. the data drifts: the data tier goes red on the drift tests;
 4. the data is restored: green;
 5. a learning rate a thousand times too small: the model retrains and the regression
    gate fails, with both numbers;
 6. the param restored: retrained, every gate passes, registered as challenger;
 7. the challenger promoted to champion;
 8. committed and pushed: the pre-push check runs, the push lands, and the remote's CI
    (the sandbox's local provider) is followed to green.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.engine.errors import MlciError
from mlci.engine.events import (
    SUPERSEDED,
    CiStatus,
    Event,
    GateReport,
    Notice,
    PushProgress,
    ScenarioCaption,
    TestOutcome,
    TestResult,
    Tier,
    TierFinished,
    Verdict,
)

if TYPE_CHECKING:
    from mlci.engine.loop.session import Session

__all__ = ["STEPS", "ScenarioPlayer", "Seen", "Step"]

Emit = Callable[[Event], None]

STEP_TIMEOUT_S = 1800.0
"""A step whose verdict has not come after this long fails the story (a hung run, a stopped session)."""


@dataclass
class Seen:
    """What the loop said since the step began, for the step to read its verdict from."""

    finished: dict[Tier, TierFinished] = field(default_factory=dict)
    failed_tests: list[str] = field(default_factory=list)
    gates: GateReport | None = None
    registered: str = ""
    pushed: PushProgress | None = None
    ci: CiStatus | None = None

    def observe(self, event: Event) -> None:
        if isinstance(event, TierFinished):
            if event.verdict is Verdict.CANCELLED and event.reason == SUPERSEDED:
                return  # a newer change reruns the tier: its verdict is the one the step waits for
            self.finished[event.tier] = event
        elif isinstance(event, TestResult) and event.outcome in (TestOutcome.FAILED, TestOutcome.ERROR):
            self.failed_tests.append(event.nodeid)
        elif isinstance(event, GateReport):
            self.gates = event
        elif isinstance(event, Notice) and event.source == "registry":
            self.registered = event.text
        elif isinstance(event, PushProgress) and event.stage == "done":
            self.pushed = event
        elif isinstance(event, CiStatus):
            self.ci = event


Answer = tuple[str, bool] | None
"""The step's verdict in words and whether it is the expected one; None while it has not come."""


@dataclass(frozen=True)
class Step:
    caption: str
    act: Callable[[ScenarioPlayer], None]
    answer: Callable[[Seen], Answer]


# -- the acts ------------------------------------------------------------------------------------


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise MlciError(f"scenario: {path.name} does not contain {old!r}: is this the demo sandbox?")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


_SCALING = ("scale = np.nanstd(x, axis=0)", "scale = np.nanvar(x, axis=0)")
_LEARNING_RATE = ("lr: 0.0001", "lr: 0.0000001")


def _break_scaling(p: ScenarioPlayer) -> None:
    _replace(p.root / "src" / "credit" / "features.py", *_SCALING)


def _fix_scaling(p: ScenarioPlayer) -> None:
    _replace(p.root / "src" / "credit" / "features.py", *reversed(_SCALING))


def _drift(p: ScenarioPlayer) -> None:
    data = p.root / "data" / "raw" / "credit.csv"
    shutil.copy2(data, p.saved_data)
    p.run_tool(sys.executable, "-m", "credit.generate", "--drift", "--out", str(data))


def _restore_data(p: ScenarioPlayer) -> None:
    shutil.copy2(p.saved_data, p.root / "data" / "raw" / "credit.csv")


def _slow_learning(p: ScenarioPlayer) -> None:
    _replace(p.root / "params.yaml", *_LEARNING_RATE)


def _restore_learning(p: ScenarioPlayer) -> None:
    _replace(p.root / "params.yaml", *reversed(_LEARNING_RATE))


def _promote(p: ScenarioPlayer) -> None:
    from mlci.engine.gates.registry import promote

    p.emit(Notice("info", promote(p.session.config).describe(), source="registry"))


def _commit_and_push(p: ScenarioPlayer) -> None:
    # The retrained model's files go to the DVC remote first, as they would in a team: the
    # remote's CI pulls them into its clone.
    p.run_tool(sys.executable, "-m", "dvc", "push", "-q")
    readme = p.root / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nChampion promoted after the talk's retraining.\n")
    p.run_tool("git", "add", "-A")
    p.run_tool("git", "commit", "-q", "-m", "Retrained model, promoted to champion")
    p.session.push(p.session.plan_push(), verify=True, follow_ci=True)


# -- the verdicts ----------------------------------------------------------------------------------


def _tier_red(tier: Tier) -> Callable[[Seen], Answer]:
    def answer(seen: Seen) -> Answer:
        finished = seen.finished.get(tier)
        if finished is None:
            return None
        if finished.verdict is Verdict.FAILED:
            named = f": {seen.failed_tests[0]}" if seen.failed_tests else ""
            more = f" and {len(seen.failed_tests) - 1} more" if len(seen.failed_tests) > 1 else ""
            return f"{tier.value} tier red{named}{more}", True
        return f"{tier.value} tier {finished.verdict.value}, not red", False

    return answer


def _tiers_green(*tiers: Tier) -> Callable[[Seen], Answer]:
    def answer(seen: Seen) -> Answer:
        if any(t not in seen.finished for t in tiers):
            return None
        red = [t.value for t in tiers if not seen.finished[t].verdict.is_green]
        if red:
            return f"{', '.join(red)} not green", False
        return f"{', '.join(t.value for t in tiers)} green", True

    return answer


def _regression_red(seen: Seen) -> Answer:
    if Tier.MODEL not in seen.finished:
        return None
    failing = [r for r in (seen.gates.results if seen.gates else ()) if r.gate == "regression" and not r.passed]
    if failing:
        return f"regression gate red: {failing[0].reason}", True
    return f"model tier {seen.finished[Tier.MODEL].verdict.value}, regression gate not red", False


def _challenger(seen: Seen) -> Answer:
    if Tier.MODEL not in seen.finished:
        return None
    if seen.finished[Tier.MODEL].verdict.is_green and seen.gates is not None and seen.gates.passed:
        return f"all {len(seen.gates.results)} gates pass; {seen.registered or 'not registered'}", bool(seen.registered)
    return f"model tier {seen.finished[Tier.MODEL].verdict.value}", False


def _promoted(seen: Seen) -> Answer:
    return (seen.registered, True) if seen.registered else None


def _ci_green(seen: Seen) -> Answer:
    if seen.pushed is not None and not seen.pushed.ok:
        return f"push refused: {seen.pushed.message}", False
    status = seen.ci
    if status is None:
        return None
    if status.message:
        return f"pushed; CI not followed: {status.message}", False
    if not status.runs or any(run.status != "completed" for run in status.runs):
        return None
    green = all(run.conclusion == "success" for run in status.runs)
    return ("pushed; the check passed; remote CI green" if green else "pushed; remote CI red"), green


STEPS: tuple[Step, ...] = (
    Step("A bug in the feature scaling: variance where the standard deviation belongs", _break_scaling,
         _tier_red(Tier.CODE)),
    Step("The fix: standard deviation again", _fix_scaling, _tiers_green(Tier.CODE)),
    Step("The data drifts: incomes and loans shift upwards", _drift, _tier_red(Tier.DATA)),
    Step("The drifted data is reverted", _restore_data, _tiers_green(Tier.DATA, Tier.MODEL)),
    Step("A learning rate a thousand times too small: the model retrains", _slow_learning, _regression_red),
    Step("The learning rate restored: retrained, gated, registered", _restore_learning, _challenger),
    Step("The challenger is promoted to champion", _promote, _promoted),
    Step("Committed and pushed: the pre-push check, the push, the remote's CI", _commit_and_push, _ci_green),
)  # fmt: skip


class ScenarioPlayer:
    """Plays `steps` on the session's project; thread-safe controls (pause, step, stop).

    `emit` gets a ScenarioCaption when a step starts, when its verdict comes, and on pause.
    """

    def __init__(self, session: Session, emit: Emit, *, steps: tuple[Step, ...] = STEPS) -> None:
        self.session = session
        self.root = session.config.root
        self.emit = emit
        self.steps = steps
        self.saved_data = self.root / ".mlci" / "scenario-original-credit.csv"
        self._cond = threading.Condition()
        self._seen = Seen()
        self._paused = False
        self._step_once = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._watching = threading.Event()
        """Set when the session's watcher has its baseline: an edit made before it would go unseen."""
        self.answers: list[tuple[str, bool]] = []
        """Each step's verdict, in order (for the headless runner and the tests)."""

    # -- controls (any thread) -----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._play, name="mlci-scenario", daemon=True)
        self._thread.start()

    def observe(self, event: Event) -> None:
        """Feed the session's events here (cheap; any thread)."""
        if isinstance(event, Notice) and event.source == "watch" and event.text.startswith("watching"):
            self._watching.set()
        with self._cond:
            self._seen.observe(event)
            self._cond.notify_all()

    def toggle_pause(self) -> bool:
        """Pause before the next step, or go on; returns whether it is paused now."""
        with self._cond:
            self._paused = not self._paused
            self._cond.notify_all()
            return self._paused

    def step(self) -> None:
        """While paused: play the next step, then pause again."""
        with self._cond:
            self._step_once = True
            self._cond.notify_all()

    def stop(self) -> None:
        self._watching.set()
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the story to end; False on timeout."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    @property
    def ok(self) -> bool:
        return len(self.answers) == len(self.steps) and all(ok for _, ok in self.answers)

    # -- the story (its own thread) --------------------------------------------------------------

    def run_tool(self, *argv: str) -> None:
        """A command in the sandbox, as the presenter would type it; MlciError with its output when it fails."""
        from mlci.engine.run.tool_env import tool_env

        env = tool_env({"PYTHONPATH": str(self.root / "src")})
        done = subprocess.run(argv, cwd=self.root, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise MlciError(f"scenario: {' '.join(argv[:3])} failed: {(done.stdout + done.stderr).strip()[-500:]}")

    def _gate(self, number: int, step: Step) -> bool:
        """Wait while paused (a step key plays one step); False when stopped."""
        with self._cond:
            if self._paused and not self._step_once:
                self.emit(ScenarioCaption(number, len(self.steps), step.caption, paused=True))
            while self._paused and not self._step_once and not self._stopped:
                self._cond.wait()
            if self._step_once:
                self._step_once, self._paused = False, True
            return not self._stopped

    def _play(self) -> None:
        total = len(self.steps)
        try:
            self.saved_data.parent.mkdir(exist_ok=True)
            while not self._watching.wait(1.0):
                if self._stopped or not self.session.alive:
                    return
            for number, step in enumerate(self.steps, 1):
                if not self._gate(number, step):
                    return
                # Let what runs now finish first: the step's verdict must be about its own change.
                self.session.wait_idle(STEP_TIMEOUT_S)
                with self._cond:
                    self._seen = Seen()
                self.emit(ScenarioCaption(number, total, step.caption))
                step.act(self)
                answer = self._await(step)
                self.answers.append(answer)
                self.emit(ScenarioCaption(number, total, step.caption, answer=answer[0], ok=answer[1]))
                if not answer[1]:
                    break
        except MlciError as exc:
            self.answers.append((str(exc), False))
            self.emit(ScenarioCaption(len(self.answers), total, "the story stopped", answer=str(exc), ok=False))
        finally:
            self.emit(ScenarioCaption(len(self.answers), total, "the end", finished=True, ok=self.ok))

    def _await(self, step: Step) -> tuple[str, bool]:
        with self._cond:
            answer = step.answer(self._seen)
            while answer is None and not self._stopped:
                if not self._cond.wait(STEP_TIMEOUT_S):
                    return "no verdict came", False
                answer = step.answer(self._seen)
        return answer if answer is not None else ("stopped", False)
