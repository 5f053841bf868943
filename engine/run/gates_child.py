"""Evaluate the gates in a fresh interpreter (`mlci gates --json`): the one launcher of the gates child.

Loading an MLflow model imports the project's own code (a models-from-code entry point,
its `code_paths`) and its frameworks (torch, sklearn) into the process that loads it. In
the TUI or `mlci watch`, which run for hours, the next evaluation would meet the modules
the previous model imported, which may be stale after a code change, and the app would
carry torch's memory for good. A child process starts clean every time and exits.

The child is a tier command like pytest or `dvc repro`: it runs in its own process group
with the tier's environment (`tier_environment`, the run token), until the tier's deadline;
a cancel, the deadline, or an exception in the waiting thread (Ctrl-C, SIGTERM) kill it
with everything it started. The model tier (`TierRun`), the check of a project without a
model tier (`evaluate_gates_if_available`) and anyone else who wants the gates out of
process all come through `run_gates_child`.

In a watching session the model tier hands it its warm server (when the project's interpreter
is mlci's): the child is then forked from the server, with what the tier's tests preloaded
(MLflow's pyfunc, the data libraries, the model's framework) already imported, and is otherwise
the same command. It still starts clean
of the project (the server never imports it) and exits after the report; a server that cannot
fork it leaves the child to a fresh interpreter.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from mlci.engine.config.loader import Config
from mlci.engine.errors import MlciError
from mlci.engine.events import GateReport, event_from_json
from mlci.engine.run.process_group import Ending, GroupProcess
from mlci.engine.run.tool_env import tool_env

if TYPE_CHECKING:
    from mlci.engine.run.warm.client import WarmProcess, WarmServer

__all__ = [
    "GATES_MODULE",
    "PROGRESS_PREFIX",
    "GatesChildOutcome",
    "evaluate_gates_in_subprocess",
    "gates_child_argv",
    "run_gates_child",
]

GATES_MODULE = "mlci.engine"
"""The module the child runs (`python -m mlci.engine gates ...`)."""
FORKED = "forked from the tier's warm server"
"""The progress line that says the child was forked rather than started afresh."""
PROGRESS_PREFIX = "[gates] "
"""How `mlci gates` marks its progress lines on stderr (its errors start "mlci gates:")."""
ERROR_LINES = 3
"""Last lines of the child's stderr quoted when it fails."""


@dataclass(frozen=True)
class GatesChildOutcome:
    """How the gates child ended: its report, or why there is none."""

    ending: Ending
    """EXITED, or TIMED_OUT / STOPPED when it was killed (with its group)."""
    report: GateReport | None
    error: str = ""
    """Why there is no report ("" when there is one, or when it was killed)."""
    warm: str = ""
    """Why it ran in a fresh interpreter although a warm server was given ("" when forked, or none given)."""


def gates_child_argv(config: Config, model_path: Path | None = None) -> tuple[str, ...]:
    """`python -m mlci.engine gates --json <root> [--model X]`, in this interpreter (where mlci lives)."""
    argv = (sys.executable, "-m", GATES_MODULE, "gates", "--json", str(config.root))
    return (*argv, "--model", str(model_path)) if model_path is not None else argv


def _report(text: str, returncode: int | None, errors: list[str]) -> GateReport | str:
    """The child's report, or why it gave none."""
    if returncode not in (0, 1) or not text.strip():
        tail = "; ".join(errors[-ERROR_LINES:]) or f"exit status {returncode}"
        return f"gates could not be evaluated: {tail}"
    try:
        report = event_from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        return f"gates could not be evaluated: unreadable report ({exc})"
    if not isinstance(report, GateReport):
        return "gates could not be evaluated: `mlci gates --json` printed no gate report"
    return report


def run_gates_child(
    config: Config,
    *,
    env: Mapping[str, str] | None = None,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    model_path: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
    on_start: Callable[[GroupProcess | WarmProcess | None], None] | None = None,
    server: WarmServer | None = None,
) -> GatesChildOutcome:
    """Run the gates child to its report, its `deadline` (monotonic) or `stop`, whichever comes first.

    `env` is the tier's environment (default: the tool environment); `on_progress` gets each
    progress line of the child, without its prefix; `on_start` is told the running process (and
    None once it is gone), so that the caller can show its process group. `server`, a warm
    server leased for this run (in mlci's interpreter), forks the child and is released here.
    Raises OSError when the interpreter cannot be started.
    """
    errors: list[str] = []

    def on_lines(lines: tuple[str, ...]) -> None:
        for line in lines:
            if line.startswith(PROGRESS_PREFIX):
                if on_progress is not None:
                    on_progress(line[len(PROGRESS_PREFIX) :])
            elif line.strip():
                errors.append(line)

    argv = gates_child_argv(config, model_path)
    child_env = env if env is not None else tool_env({"PYTHONUNBUFFERED": "1"})
    # stdout goes to a file: a large report must not fill a pipe nobody reads while stderr streams.
    with tempfile.NamedTemporaryFile(prefix="mlci-gates-", suffix=".json") as out:
        forked, cold_why = _forked(server, argv, config.root, child_env, on_lines, out) if server else (None, "")
        try:
            process: GroupProcess | WarmProcess
            if forked is not None:
                process = forked
                if on_progress is not None:
                    on_progress(FORKED)
            else:
                process = GroupProcess(argv, cwd=config.root, env=child_env, stdout=out, on_lines=on_lines)
                process.start()
            if on_start is not None:
                on_start(process)
            try:
                outcome = process.wait(deadline=deadline, stop=stop or threading.Event())
            finally:
                if on_start is not None:
                    on_start(None)
        finally:
            if forked is not None:
                from mlci.engine.run.warm.client import release

                release(forked.server, broken=forked.broken)  # the server may have failed during the run
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    if outcome.ending is not Ending.EXITED:
        return GatesChildOutcome(outcome.ending, None, warm=cold_why)
    found = _report(text, outcome.returncode, errors)
    if isinstance(found, str):
        return GatesChildOutcome(Ending.EXITED, None, found, warm=cold_why)
    return GatesChildOutcome(Ending.EXITED, found, warm=cold_why)


def _forked(
    server: WarmServer,
    argv: tuple[str, ...],
    root: Path,
    env: Mapping[str, str],
    on_lines: Callable[[tuple[str, ...]], None],
    out: IO[bytes],
) -> tuple[WarmProcess | None, str]:
    """The child forked by `server`, started; or None and why, the server then released."""
    from mlci.engine.run.warm.client import WarmProcess, WarmUnavailable, release

    forked = WarmProcess(
        server, argv[3:], cwd=root, env=env, on_lines=on_lines, module=GATES_MODULE, stdout=Path(out.name)
    )
    try:
        forked.start()
    except WarmUnavailable as exc:
        release(server, broken=forked.broken)
        return None, str(exc) or type(exc).__name__
    return forked, ""


def evaluate_gates_in_subprocess(
    config: Config,
    *,
    model_path: Path | None = None,
    emit_progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
    stop: threading.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> GateReport:
    """The same report as `evaluate_gates`, computed in a child; raises MlciError when there is none."""
    deadline = time.monotonic() + timeout if timeout is not None else None
    outcome = run_gates_child(
        config, env=env, deadline=deadline, stop=stop, model_path=model_path, on_progress=emit_progress
    )
    if outcome.ending is Ending.TIMED_OUT:
        raise MlciError(f"gate evaluation timed out after {timeout:g}s")
    if outcome.ending is Ending.STOPPED:
        raise MlciError("gate evaluation was cancelled")
    if outcome.report is None:
        raise MlciError(outcome.error.replace("gates could not be evaluated", "gate evaluation failed", 1))
    return outcome.report
