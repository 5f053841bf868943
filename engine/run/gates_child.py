"""Evaluate the gates in a fresh interpreter (`mlci gates --json`), for long-lived processes.

Loading an MLflow model imports the project's own code (a models-from-code entry point,
its `code_paths`) and its frameworks (torch, sklearn) into the process that loads it. In
the TUI or `mlci watch`, which run for hours, the next evaluation would meet the modules
the previous model imported, which may be stale after a code change, and the app would
carry torch's memory for good. A child process starts clean every time and exits.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mlci.engine.config.loader import Config
from mlci.engine.errors import MlciError
from mlci.engine.events import GateReport, event_from_json
from mlci.engine.gates.evaluate import Progress

__all__ = ["PROGRESS_PREFIX", "evaluate_gates_in_subprocess"]

PROGRESS_PREFIX = "[gates] "
"""How `mlci gates` marks its progress lines on stderr (its errors start "mlci gates:")."""


def evaluate_gates_in_subprocess(
    config: Config, *, model_path: Path | None = None, emit_progress: Progress | None = None
) -> GateReport:
    """The same report as `evaluate_gates`, computed by `python -m mlci.engine gates --json` in a child."""
    argv = [sys.executable, "-m", "mlci.engine", "gates", "--json", str(config.root)]
    if model_path is not None:
        argv += ["--model", str(model_path)]
    errors: list[str] = []
    # stdout goes to a file: a large report must not fill a pipe nobody reads while stderr streams.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        with subprocess.Popen(
            argv,
            cwd=config.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as proc:
            assert proc.stderr is not None
            for line in proc.stderr:
                line = line.rstrip("\n")
                if line.startswith(PROGRESS_PREFIX):
                    if emit_progress is not None:
                        emit_progress(line[len(PROGRESS_PREFIX) :])
                elif line.strip():
                    errors.append(line)
            code = proc.wait()
        out.seek(0)
        text = out.read()
    if code not in (0, 1) or not text.strip():
        tail = "; ".join(errors[-3:]) or f"exit status {code}"
        raise MlciError(f"gate evaluation failed: {tail}")
    report = event_from_json(json.loads(text))
    if not isinstance(report, GateReport):
        raise MlciError("gate evaluation printed something other than a gate report")
    return report
