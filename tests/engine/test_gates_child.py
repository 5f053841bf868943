"""The one gates child launcher: the tier's deadline, cancel and environment, and it dies with its parent.

The project's model hangs while it loads (a real `python_function` loader module that
starts a `setsid` daemon and sleeps), so every way of stopping the child is exercised on
a real `mlci gates --json` process and checked by scanning /proc.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.errors import MlciError
from mlci.engine.events import Tier, Verdict
from mlci.engine.run.gates_child import evaluate_gates_in_subprocess
from mlci.engine.run.run_token import RUN_TOKEN_ENV
from mlci.engine.run.tier_run import TierRun, evaluate_gates_if_available

from tests.loop_projects import (
    MARKER_ENV,
    EventLog,
    living_processes,
    make_dvc_project,
    make_project,
    processes_with_env,
    write,
    written,
)

pytestmark = [
    pytest.mark.usefixtures("only_testmon"),
    pytest.mark.skipif(sys.platform != "linux", reason="/proc (Linux) only"),
]

HANGING_LOADER = """
import json, os, subprocess, time
from pathlib import Path

def _load_pyfunc(path):
    Path("loader.json").write_text(json.dumps({"pid": os.getpid(), "env": dict(os.environ)}))
    daemon = subprocess.Popen(["setsid", "sleep", "1000"])
    Path("daemon.pid").write_text(str(daemon.pid))
    time.sleep(1000)
"""

GATES = """
evaluation: {model: models/hang, test_data: data/test.csv, label: y}
performance: {accuracy: {min: 0.5}}
"""


@pytest.fixture
def marker(monkeypatch: pytest.MonkeyPatch) -> str:
    value = uuid.uuid4().hex
    monkeypatch.setenv(MARKER_ENV, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return value


def _hanging_files() -> dict[str, str]:
    return {
        "hang_loader.py": HANGING_LOADER,
        "models/hang/MLmodel": "flavors:\n  python_function:\n    loader_module: hang_loader\n",
        "data/test.csv": "x,y\n1,1\n0,0\n",
        "model_gates.yaml": GATES,
    }


def _hanging_project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "p", tests={"tests/test_ok.py": "def test_one():\n    pass\n"}, sources=_hanging_files()
    )


def _loader_started(root: Path, *, alive: bool = True) -> tuple[int, int]:
    loader_json, daemon_pid = written(root / "loader.json", root / "daemon.pid", what="the model loader")
    loader = json.loads(loader_json)["pid"]
    daemon = int(daemon_pid)
    if alive:
        assert len(living_processes([loader, daemon])) == 2
    return loader, daemon


def test_the_gates_child_is_killed_at_its_timeout_with_what_it_started(tmp_path: Path, marker: str) -> None:
    root = _hanging_project(tmp_path)
    started = time.monotonic()
    with pytest.raises(MlciError, match=r"gate evaluation timed out after 30s"):
        evaluate_gates_in_subprocess(load_config(root), timeout=30)
    assert time.monotonic() - started < 120  # bounded by the timeout, not by the model's sleep(1000)
    loader, daemon = _loader_started(root, alive=False)  # it had started, and hung
    assert living_processes([loader, daemon]) == []
    assert processes_with_env(MARKER_ENV, marker) == []


def test_the_gates_child_is_cancelled_from_another_thread(tmp_path: Path, marker: str) -> None:
    root = _hanging_project(tmp_path)
    stop = threading.Event()
    errors: list[Exception] = []

    def evaluate() -> None:
        try:
            evaluate_gates_if_available(load_config(root), stop=stop)
        except MlciError as exc:
            errors.append(exc)

    thread = threading.Thread(target=evaluate)
    thread.start()
    loader, daemon = _loader_started(root)
    stop.set()
    thread.join(60)
    assert [str(e) for e in errors] == ["gate evaluation was cancelled"]
    assert living_processes([loader, daemon]) == []
    assert processes_with_env(MARKER_ENV, marker) == []


def test_the_gates_child_gets_the_tier_environment(tmp_path: Path, marker: str) -> None:
    root = _hanging_project(tmp_path)
    stop = threading.Event()
    config = load_config(root)

    def evaluate() -> None:
        with pytest.raises(MlciError, match="cancelled"):
            evaluate_gates_if_available(config, stop=stop)

    thread = threading.Thread(target=evaluate)
    thread.start()
    try:
        _loader_started(root)
        env = json.loads((root / "loader.json").read_text())["env"]
    finally:
        stop.set()
        thread.join(60)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env[RUN_TOKEN_ENV] and env[MARKER_ENV] == marker
    assert processes_with_env(MARKER_ENV, marker) == []


def test_mlci_check_ctrl_c_during_the_gates_leaves_no_process(tmp_path: Path, marker: str) -> None:
    """A project without a model tier: `mlci check` evaluates the gates itself, in the gates child."""
    root = _hanging_project(tmp_path)
    cli = subprocess.Popen(
        [sys.executable, "-m", "mlci.engine", "check", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        loader, daemon = _loader_started(root)
        cli.send_signal(signal.SIGINT)
        cli.wait(60)
    finally:
        cli.kill()
        out = cli.communicate()[0]
    assert cli.returncode != 0, out
    assert "Traceback" not in out
    assert living_processes([loader, daemon]) == []
    assert processes_with_env(MARKER_ENV, marker) == []


@pytest.mark.slow
def test_the_model_tier_gates_child_has_the_tier_deadline_and_cancel(tmp_path: Path, marker: str) -> None:
    root = make_dvc_project(
        tmp_path / "p",
        stage_cmd="python -c \"open('out.txt', 'w').write('1')\"",
        outs=["out.txt"],
        deps=["params.txt"],
        files={"params.txt": "1\n", **_hanging_files()},
        config="mlflow:\n  experiment: gates-child\ntiers:\n  model:\n    timeout: 40\n",
    )
    log = EventLog()
    run = TierRun(load_config(root), Tier.MODEL, run_id=1, plan_id=1, emit=log)
    thread = threading.Thread(target=run.run)
    thread.start()
    loader, daemon = _loader_started(root)
    assert run.pgids  # the gates child's group is the run's while it runs
    thread.join(120)
    finished = log.finished(Tier.MODEL)[-1]
    assert finished.verdict is Verdict.TIMED_OUT
    assert finished.reason == "timed out after 40s during the gates"
    assert living_processes([loader, daemon]) == []
    assert processes_with_env(MARKER_ENV, marker) == []
    assert run.pgids == frozenset()


def test_a_broken_gates_child_is_an_error_with_its_last_words(tmp_path: Path, marker: str) -> None:
    root = _hanging_project(tmp_path)
    write(root / "hang_loader.py", "def _load_pyfunc(path):\n    raise SystemExit('the model refused')\n")
    with pytest.raises(MlciError, match=r"gate evaluation failed: .*the model refused"):
        evaluate_gates_in_subprocess(load_config(root), timeout=120)
