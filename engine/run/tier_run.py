"""Run one tier once: its command in its own process group, its results from pytest's reports, its verdict.

* code and data tiers: `python -m pytest -p mlci.engine.run.pytest_plugin <pytest_args> <tests>` (started
  as `-m mlci.engine.run.pytest_main`, the same less the interpreter's teardown; or forked by a warm server);
* model tier: `python -m dvc repro <stale stages>` with `MLCI_TRAIN_MODE` (quick or full),
  `MLFLOW_TRACKING_URI` and `MLFLOW_RUN_ID` (a run mlci creates first, so that whoever follows
  it live sees the training from its first epoch), then the tier's pytest tests, then the
  model gates when the gate module and a gate file are there.

The whole tier shares one deadline (the tier's timeout): at the deadline, or on `cancel`,
the running command is killed with its whole process group. Everything that happens is
an event passed to `emit`, from the thread that calls `run`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.engine.config.loader import Config, TierConfig
from mlci.engine.config.tracking_store import quiet_mlflow
from mlci.engine.errors import MlciError
from mlci.engine.events import (
    Event,
    GateReport,
    Notice,
    OutputLines,
    Tier,
    TierFinished,
    TierStarted,
    Verdict,
)
from mlci.engine.run.affected import AffectedTail, affected_args
from mlci.engine.run.interpreter import Interpreter, mlci_path, project_interpreter
from mlci.engine.run.process_group import Ending, GroupProcess, Outcome, kill_marked
from mlci.engine.run.pytest_plugin import output_end_line
from mlci.engine.run.run_token import new_token, with_token
from mlci.engine.run.test_report import ReportTail
from mlci.engine.run.tool_env import tool_env

if TYPE_CHECKING:
    from mlci.engine.run.warm.client import WarmProcess, WarmServer

__all__ = ["TierRun", "evaluate_gates_if_available", "failing_gates", "register_candidate", "tier_environment"]

PYTEST_MAIN = "mlci.engine.run.pytest_main"
"""What a cold run starts in place of `-m pytest` (see `pytest_main`)."""

Emit = Callable[[Event], None]

OUTPUT_END_WAIT_S = 2.0
"""How long an early verdict waits for the rest of pytest's output (its end line), should the line not come
(a plugin that silenced the terminal): the verdict then goes first."""

_PYTEST_EXIT_REASONS = {
    2: "pytest was interrupted",
    3: "pytest hit an internal error",
    4: "pytest could not start (usage error)",
}


@dataclass(frozen=True)
class _Step:
    """How one command of a tier ended, before it is folded into the tier's verdict."""

    verdict: Verdict
    reason: str = ""
    passed: int = 0
    failed: tuple[str, ...] = ()


def tier_environment(extra: Mapping[str, str] | None = None, interpreter: Interpreter | None = None) -> dict[str, str]:
    """The environment of a tier's commands: ours, unbuffered output, and the interpreter's bin first on PATH
    (this one's, or the project's `interpreter`: a DVC stage's `python` is then the project's)."""
    env = tool_env(extra)
    env["PYTHONUNBUFFERED"] = "1"
    if interpreter is not None and not interpreter.is_mlci:
        env["PATH"] = os.pathsep.join([str(interpreter.bin_dir), env.get("PATH", "")])
    return env


def pytest_environment(interpreter: Interpreter, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A pytest run's environment: the tier's, plus mlci's plugin importable in the project's interpreter."""
    env = tier_environment(extra, interpreter)
    shim = mlci_path(interpreter)
    if shim is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (shim, env.get("PYTHONPATH", "")) if p)
    return env


def evaluate_gates_if_available(
    config: Config,
    progress: Callable[[str], None] | None = None,
    *,
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> GateReport | None:
    """The gate report, or None when the project has no gate file; raises MlciError when there is none.

    Evaluated in the gates child (see `gates_child`): loading the candidate imports the project's
    own code and torch, which a long-lived dashboard must not keep (stale after the next edit).
    It gets the model tier's timeout (`timeout` overrides it) and environment; `stop` cancels it,
    and so does an exception in the calling thread (Ctrl-C).
    """
    if config.gates is None:
        return None
    from mlci.engine.config.loader import DEFAULT_TIMEOUTS
    from mlci.engine.run.gates_child import evaluate_gates_in_subprocess

    model = config.tier(Tier.MODEL)
    if timeout is None:
        timeout = model.timeout if model is not None else DEFAULT_TIMEOUTS[Tier.MODEL]
    return evaluate_gates_in_subprocess(
        config, emit_progress=progress, timeout=timeout, stop=stop, env=tier_environment()
    )


def log_gate_figures_to_run(config: Config, report: GateReport, mlflow_run_id: str) -> Notice | None:
    """The gates' figures and their intervals into the tier's MLflow run, beside the metrics training logged."""
    if not mlflow_run_id:
        return None
    from mlci.engine.gates.mlflow_figures import log_gate_figures

    try:
        log_gate_figures(config, mlflow_run_id, report)
    except MlciError as exc:
        return Notice("warning", str(exc), source="gates")
    return None


def register_candidate(config: Config, report: GateReport, mlflow_run_id: str) -> Notice | None:
    """Register a candidate that passed every gate as `challenger`; the outcome as a notice."""
    if not config.mlflow.used:
        return None  # no registry to register in, and none is made: the project does not use MLflow
    from mlci.engine.gates.registry import register_if_passed

    try:
        registration = register_if_passed(config, report, run_id=mlflow_run_id or None)
    except MlciError as exc:
        return Notice("warning", f"the candidate passed its gates but was not registered: {exc}", source="registry")
    return Notice("info", registration.describe(), source="registry") if registration is not None else None


def failing_gates(report: GateReport) -> tuple[str, ...]:
    """One line per failing gate check ("gate performance: accuracy 0.81 < 0.92")."""
    if not report.results:
        return ("gates: no gate was evaluated",)
    return tuple(f"gate {r.gate}: {r.reason or r.check}" for r in report.results if not r.passed)


def _signal_name(returncode: int) -> str:
    import signal

    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class TierRun:
    """One run of one tier. `run()` blocks (call it from a worker thread); `cancel()` may come from any thread."""

    def __init__(
        self,
        config: Config,
        tier: Tier,
        *,
        run_id: int,
        plan_id: int,
        emit: Emit,
        stages: Sequence[str] = (),
        full: bool = False,
        warm: bool = False,
        register: bool = True,
        affected: bool = True,
    ) -> None:
        tier_config = config.tier(tier)
        if tier_config is None:
            raise MlciError(f"this project has no {tier.value} tier")
        self.config = config
        self.tier = tier
        self.tier_config: TierConfig = tier_config
        self.run_id = run_id
        self.plan_id = plan_id
        self.stages = tuple(stages) or tier_config.stages
        self.full = full
        self.register = register
        """Register a candidate that passes every gate as `challenger` (the pre-push check does not: it only checks)."""
        self.warm = warm and config.runner == "warm"
        """Fork pytest from the tier's warm server (the model tier's tests too, after its stages); the owner stops
        the servers (a session)."""
        self.affected = affected
        """The code tier runs the tests the change affects first, recording testmon's fingerprints for the next
        run. Off where no earlier run recorded any and no later run will read them (a one-shot check in a
        temporary worktree, a CI clone): every test would count as affected, and testmon's per-test tracing
        and its data written at exit (0.8 s of a 6 s code tier on the sample) would buy nothing."""
        self.interpreter = project_interpreter(config)
        """The project's Python, which runs pytest (and a DVC stage's `python`)."""
        self._mlflow_run_id = ""
        """The model tier's MLflow run, once created (the registered challenger points at it)."""
        self._tests_env: dict[str, str] = {}
        """What the model tier's tests get on top of the tier's environment (the stages' mode and store)."""
        self._emit = emit
        self._stop = threading.Event()
        self._token = new_token()
        """Marks every process of this run, in or out of its commands' groups (see `run_token`)."""
        self._cancel_reason = "cancelled"
        self._lock = threading.Lock()
        self._current: GroupProcess | WarmProcess | None = None
        self._started = 0.0
        self._finished: TierFinished | None = None

    @property
    def pgids(self) -> frozenset[int]:
        """The process group of the command running now (empty between commands)."""
        with self._lock:
            pgid = self._current.pgid if self._current is not None else None
        return frozenset() if pgid is None else frozenset({pgid})

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        """Kill the running command's process group; the run ends CANCELLED with `reason`."""
        if not self._stop.is_set():
            self._cancel_reason = reason
            self._stop.set()

    def run(self) -> TierFinished:
        """Run the tier to its verdict; emits TierStarted, output, results and TierFinished.

        A code or data tier gives its verdict as soon as pytest has printed its summary; `run`
        returns once the process group is gone (a heavy interpreter can take seconds to exit).
        """
        self._started = time.monotonic()
        deadline = self._started + self.tier_config.timeout
        try:
            if self.tier is Tier.MODEL:
                step = self._run_model(deadline)
            else:
                pytest_args = self.tier_config.pytest_args
                if self.tier is Tier.CODE and self.affected:  # the tests the change affects first, at once
                    pytest_args = (*pytest_args, *affected_args(self.config.root))
                self._emit(
                    TierStarted(
                        self.run_id,
                        self.tier,
                        self.plan_id,
                        command=self._pytest_argv(self.tier_config.tests, pytest_args),
                    )
                )
                step = self._pytest(self.tier_config.tests, pytest_args, deadline, {}, early=True)
        except (OSError, MlciError) as exc:
            step = _Step(Verdict.ERROR, f"could not run the {self.tier.value} tier: {exc}")
        return self._finish(step)

    def _finish(self, step: _Step) -> TierFinished:
        """Emit the verdict, once: a verdict given early stands, whatever happens to the exiting process."""
        with self._lock:
            if self._finished is not None:
                return self._finished
            self._finished = TierFinished(
                self.run_id,
                self.tier,
                step.verdict,
                time.monotonic() - self._started,
                passed=step.passed,
                failed=len(step.failed),
                reason=step.reason,
                plan_id=self.plan_id,
            )
        self._emit(self._finished)
        return self._finished

    # -- commands ---------------------------------------------------------------------------------

    def _pytest_argv(self, tests: Sequence[str], pytest_args: Sequence[str]) -> tuple[str, ...]:
        # `python -m pytest`, less the interpreter's teardown once pytest has returned (see `pytest_main`).
        return (str(self.interpreter.path), "-m", PYTEST_MAIN, *self._pytest_args(tests, pytest_args))

    def _pytest_args(self, tests: Sequence[str], pytest_args: Sequence[str]) -> tuple[str, ...]:
        """pytest's own arguments (after `python -m pytest`, or `pytest_main`), the same warm and cold."""
        return ("-p", "mlci.engine.run.pytest_plugin", *pytest_args, *tests)

    def _spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        deadline: float,
        tick: Callable[[], None] | None = None,
        *,
        warm: WarmProcess | None = None,
        end_line: str | None = None,
    ) -> tuple[Outcome, GroupProcess | WarmProcess]:
        """Run `argv` in its own process group (or, given `warm`, that run forked by a warm server) to its end."""
        process: GroupProcess | WarmProcess = warm or GroupProcess(
            argv,
            cwd=self.config.root,
            env=env,
            on_lines=lambda lines: self._emit(OutputLines(self.tier, self.run_id, lines)),
            end_line=end_line,
        )
        with self._lock:
            if self._stop.is_set():
                return Outcome(Ending.STOPPED, None), process
            process.start()
            self._current = process
        try:
            return process.wait(deadline=deadline, stop=self._stop, tick=tick), process
        finally:
            with self._lock:
                self._current = None
            # What left the command's group (setsid, a double fork) dies with it: a warm-forked
            # run's own kill covers only its group.
            kill_marked(self._token)

    def _killed(self, outcome: Outcome, what: str, running: str | None = None) -> _Step | None:
        """The step's verdict when it was killed (cancel or timeout), else None."""
        if outcome.ending is Ending.STOPPED:
            return _Step(Verdict.CANCELLED, self._cancel_reason)
        if outcome.ending is Ending.TIMED_OUT:
            where = f" in {running}" if running else f" during {what}"
            return _Step(Verdict.TIMED_OUT, f"timed out after {self.tier_config.timeout:g}s{where}")
        return None

    def _pytest(
        self,
        tests: Sequence[str],
        pytest_args: Sequence[str],
        deadline: float,
        extra_env: Mapping[str, str],
        *,
        early: bool = False,
    ) -> _Step:
        """Run pytest with the plugin; with `early`, the tier's verdict is given on pytest's last report line."""
        fd, name = tempfile.mkstemp(prefix=f"mlci-{self.tier.value}-", suffix=".jsonl")
        os.close(fd)
        report = Path(name)
        tail = (
            AffectedTail(
                report,
                tier=self.tier,
                run_id=self.run_id,
                root=self.config.root,
                started=self._started,
                emit=self._emit,
            )
            if self.tier is Tier.CODE
            else ReportTail(report, tier=self.tier, run_id=self.run_id, emit=self._emit)
        )

        def tick() -> None:
            tail.poll()
            if early and tail.exitstatus is not None and self._finished is None:
                current = self._current
                if current is not None:
                    # The summary's last lines first: the plugin printed its end line just before the status.
                    current.flush_through_end(OUTPUT_END_WAIT_S)
                self._finish(self._pytest_verdict(tail.exitstatus, tail, current.tail if current else ()))

        try:
            env = with_token(
                pytest_environment(self.interpreter, {**extra_env, "MLCI_REPORT_FILE": str(report)}), self._token
            )
            outcome, process = self._spawn_pytest(tests, pytest_args, env, deadline, tick, report)
        finally:
            report.unlink(missing_ok=True)
        killed = self._killed(outcome, "pytest", tail.running)
        if killed is not None:
            return _Step(killed.verdict, killed.reason, tail.passed, tuple(tail.failed))
        # pytest's real exit status decides: the process's own, when it exited by itself; the
        # plugin's last line (the same status, written before the interpreter's teardown) when
        # the exit was a crash after the session had ended.
        exited = outcome.returncode is not None and outcome.returncode >= 0
        status = outcome.returncode if exited or tail.exitstatus is None else tail.exitstatus
        return self._pytest_verdict(status, tail, process.tail)

    def _spawn_pytest(
        self,
        tests: Sequence[str],
        pytest_args: Sequence[str],
        env: Mapping[str, str],
        deadline: float,
        tick: Callable[[], None],
        report: Path,
    ) -> tuple[Outcome, GroupProcess | WarmProcess]:
        """pytest forked by the tier's warm server when it can serve, else a fresh interpreter (cold); a warm run
        calls `tick` as soon as `report` is written."""
        argv = self._pytest_argv(tests, pytest_args)
        end_line = output_end_line(str(report))
        warm = self._warm(tests, pytest_args, env, deadline, report, end_line)
        if warm is not None:
            from mlci.engine.run.warm.client import WarmUnavailable, release

            try:
                return self._spawn(argv, env, deadline, tick=tick, warm=warm)
            except WarmUnavailable as exc:
                self._emit(Notice("warning", f"warm runner: {exc}; this run is cold", source="runner"))
            finally:
                release(warm.server, broken=warm.broken)
        return self._spawn(argv, env, deadline, tick=tick, end_line=end_line)

    def _warm(
        self,
        tests: Sequence[str],
        pytest_args: Sequence[str],
        env: Mapping[str, str],
        deadline: float,
        report: Path,
        end_line: str,
    ) -> WarmProcess | None:
        """A run on the tier's warm server (started, or restarted, as needed), or None: cold, with the notices.

        The model tier's tests too: they load the trained model from disk in the forked child (the server
        never imports the project's own code), and a retrain leaves the server as it is.
        """
        server = self._lease(env, deadline)
        if server is None:
            return None
        from mlci.engine.run.warm.client import WarmProcess

        return WarmProcess(
            server,
            self._pytest_args(tests, pytest_args),
            cwd=self.config.root,
            env=env,
            on_lines=lambda lines: self._emit(OutputLines(self.tier, self.run_id, lines)),
            wake_on=report,
            end_line=end_line,
        )

    def _lease(self, env: Mapping[str, str], deadline: float) -> WarmServer | None:
        """The tier's warm server for one run (started, or restarted, as needed; `env`: the tier's pytest
        environment, which the server's freshness is judged by), or None: cold, with the notices."""
        if not self.warm:
            return None
        from mlci.engine.run.warm.client import lease
        from mlci.engine.run.warm.preload import preload_modules

        got = lease(
            interpreter=str(self.interpreter.path),
            root=self.config.root,
            tier=self.tier.value,
            tests=self.tier_config.tests,
            env=env,
            idle_s=self.config.runner_idle_timeout,
            deadline=deadline,
            stop=self._stop,
            modules=lambda: preload_modules(self.config.root, self.tier_config.tests),
        )
        for level, text in got.notices:
            self._emit(Notice(level, text, source="runner"))
        return got.server

    def _pytest_verdict(self, returncode: int | None, tail: ReportTail, output: Iterable[str]) -> _Step:
        failed = tuple(tail.failed)
        if returncode == 0:
            return _Step(Verdict.PASSED, "", tail.passed, failed)
        if returncode == 1:
            if failed:
                stopped = tail.stopped_rest if isinstance(tail, AffectedTail) else ""
                return _Step(Verdict.FAILED, stopped, tail.passed, failed)
            # Every test passed, yet pytest failed: a conftest or plugin set the session's status
            # (what `--cov-fail-under` does when coverage is short).
            reason = f"a plugin or conftest failed the session: pytest exited 1 after {tail.passed} passed, none failed"
            return _Step(Verdict.FAILED, reason, tail.passed, failed)
        if returncode == 5:
            if self.tier_config.allow_empty:
                return _Step(Verdict.PASSED, "no tests collected (allow_empty)", 0, failed)
            return _Step(Verdict.FAILED, "no tests ran: the selection matched no test (allow_empty: true allows it)")
        if tail.collect_errors:
            reason = f"collection error in {', '.join(tail.collect_errors)}"
        elif returncode is not None and returncode < 0:
            reason = f"pytest was killed by {_signal_name(returncode)}"
        else:
            last = next((line for line in reversed(list(output)) if line.strip()), "")
            reason = _PYTEST_EXIT_REASONS.get(returncode or 0, f"pytest exited with status {returncode}")
            reason = f"{reason}: {last.strip()}" if last else reason
        return _Step(Verdict.ERROR, reason, tail.passed, failed)

    # -- the model tier -----------------------------------------------------------------------------

    def _run_model(self, deadline: float) -> _Step:
        mode = "full" if self.full else "quick"
        # A project that does not use MLflow gets no run (and so no store) from mlci: its tree stays as it was.
        mlflow_run_id = self._create_mlflow_run(mode) if self.config.mlflow.used else ""
        self._mlflow_run_id = mlflow_run_id
        repro = (sys.executable, "-m", "dvc", "repro", *(("--force",) if self.full else ()), *self.stages)
        self._emit(
            TierStarted(
                self.run_id, self.tier, self.plan_id, command=repro, full=self.full, mlflow_run_id=mlflow_run_id
            )
        )
        uri = self.config.mlflow.tracking_uri if self.config.mlflow.used else self._private_store()
        stage_env = {
            "MLCI_TRAIN_MODE": mode,
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_EXPERIMENT_NAME": self.config.mlflow.experiment,
        }
        if mlflow_run_id:
            stage_env["MLFLOW_RUN_ID"] = mlflow_run_id
        step = self._steps(repro, stage_env, deadline, mode)
        self._end_mlflow_run(mlflow_run_id, step.verdict)
        return step

    def _steps(self, repro: Sequence[str], stage_env: dict[str, str], deadline: float, mode: str) -> _Step:
        outcome, process = self._spawn(repro, tier_environment(stage_env, self.interpreter), deadline)
        killed = self._killed(outcome, "dvc repro")
        if killed is not None:
            return killed
        if outcome.returncode != 0:
            last = next((line for line in reversed(process.tail) if line.strip()), "")
            return _Step(Verdict.FAILED, f"dvc repro failed (exit {outcome.returncode}): {last.strip()}".rstrip(": "))
        what = f"stages {', '.join(self.stages)}" if self.stages else "the pipeline"
        step = _Step(Verdict.PASSED, f"{what} reproduced ({mode})")
        tests = tuple(t for t in self.tier_config.tests if (self.config.root / t).exists())
        self._tests_env = {k: v for k, v in stage_env.items() if k != "MLFLOW_RUN_ID"}
        if tests:
            step = self._pytest(tests, self.tier_config.pytest_args, deadline, self._tests_env)
            if step.verdict is Verdict.FAILED and not self._stop.is_set():
                # Red model tests do not hide the gates: their figures say how far off the candidate is.
                # It stays red, and is never registered.
                gated = self._gates(step, deadline, register=False)
                return (
                    step
                    if gated.verdict is Verdict.PASSED
                    else _Step(
                        Verdict.FAILED, "; ".join(r for r in (step.reason, gated.reason) if r), step.passed, step.failed
                    )
                )
            if step.verdict is not Verdict.PASSED:
                return step
        if self._stop.is_set():
            return _Step(Verdict.CANCELLED, self._cancel_reason, step.passed, step.failed)
        return self._gates(step, deadline, register=self.register)

    def _gates(self, step: _Step, deadline: float, *, register: bool = True) -> _Step:
        if self.config.gates is None:
            return step
        report = self._evaluate_gates(deadline)
        if isinstance(report, _Step):
            return _Step(report.verdict, report.reason, step.passed, step.failed)
        self._emit(report)
        logged = log_gate_figures_to_run(self.config, report, self._mlflow_run_id)
        if logged is not None:
            self._emit(logged)
        if report.passed:
            notice = register_candidate(self.config, report, self._mlflow_run_id) if register else None
            if notice is not None:
                self._emit(notice)
            return step
        return _Step(Verdict.FAILED, "; ".join(failing_gates(report)), step.passed, step.failed)

    def _evaluate_gates(self, deadline: float) -> GateReport | _Step:
        """The gates child (`gates_child`), under the tier's deadline, cancel and environment; in a watching
        session forked from the tier's warm server, when that runs mlci's own interpreter (the child needs
        mlci's packages, which a project's other interpreter need not have)."""
        from mlci.engine.run.gates_child import run_gates_child

        def on_progress(line: str) -> None:
            self._emit(OutputLines(self.tier, self.run_id, (f"gates: {line}",)))

        def on_start(process: GroupProcess | WarmProcess | None) -> None:
            with self._lock:
                self._current = process

        server = None
        if self.interpreter.is_mlci:
            server = self._lease(pytest_environment(self.interpreter, self._tests_env), deadline)
        outcome = run_gates_child(
            self.config,
            env=tier_environment(),
            deadline=deadline,
            stop=self._stop,
            on_progress=on_progress,
            on_start=on_start,
            server=server,
        )
        if outcome.warm:
            self._emit(Notice("warning", f"warm runner: {outcome.warm}; the gates ran cold", source="runner"))
        killed = self._killed(Outcome(outcome.ending, None), "the gates")
        if killed is not None:
            return killed
        if outcome.report is None:
            return _Step(Verdict.ERROR, outcome.error)
        return outcome.report

    def _private_store(self) -> str:
        """Where a stage that logs to MLflow anyway writes, in a project that does not use it: under `.mlci/`."""
        return f"sqlite:///{(self.config.root / '.mlci' / 'mlflow.db').as_posix()}"

    def _create_mlflow_run(self, mode: str) -> str:
        """A fresh MLflow run for the stages to log into; "" (and a notice) when the store is unusable."""
        try:
            return create_mlflow_run(
                self.config,
                name=f"mlci model tier #{self.run_id} ({mode})",
                tags={"mlci.tier": "model", "mlci.mode": mode},
            )
        except Exception as exc:  # any store failure: the stages then start their own run
            self._emit(Notice("warning", f"could not create the MLflow run: {exc}", source="model tier"))
            return ""

    def _end_mlflow_run(self, run_id: str, verdict: Verdict) -> None:
        if not run_id:
            return
        status = {Verdict.PASSED: "FINISHED", Verdict.CANCELLED: "KILLED", Verdict.TIMED_OUT: "KILLED"}
        try:
            from mlflow.tracking import MlflowClient

            MlflowClient(tracking_uri=self.config.mlflow.tracking_uri).set_terminated(
                run_id, status.get(verdict, "FAILED")
            )
        except Exception as exc:  # the verdict stands even if the store went away
            self._emit(Notice("warning", f"could not close the MLflow run {run_id}: {exc}", source="model tier"))


def create_mlflow_run(config: Config, *, name: str, tags: Mapping[str, str]) -> str:
    """Create a run in the project's experiment (made if missing); its id."""
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    uri = config.mlflow.tracking_uri
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(config.mlflow.experiment)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        # Beside a sqlite store, artifacts go to <project>/mlruns, as the sample project's stages expect.
        location = (config.root / "mlruns").as_uri() if uri.startswith("sqlite:") else None
        experiment_id = client.create_experiment(config.mlflow.experiment, artifact_location=location)
    run = client.create_run(experiment_id, run_name=name, tags=dict(tags))
    return str(run.info.run_id)
