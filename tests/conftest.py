"""Shared fixtures: a demo sandbox (real git, DVC, MLflow, bare remote), built once per run.

Under pytest-xdist (`make test` runs the suite on two workers per core) the template is built once for
the whole run, not once per worker: the first worker to need it builds it under a file lock
in the run's shared temporary directory, the others wait for it and copy it.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from tests.tmux import Tmux, tmux_available

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ("tests.schedule",)  # under xdist, the longest modules start first (see schedule.py)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` starts two workers per core. Torch, numpy and scikit-learn in the tests'
    # subprocesses (training, the gates' latency timing) then use one thread each: left to
    # start a thread per core in every worker, they preempt each other, and a latency gate
    # measured beside a training run reads the other worker's load.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # Started as a background job of a shell without job control (`make test &` in a script), the
    # suite inherits Ctrl-C ignored, and so would every mlci it starts: Python keeps an inherited
    # SIG_IGN, and the tests that stop mlci with Ctrl-C would wait for it in vain. A person's
    # Ctrl-C is what those tests play: give it back its default.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Free what collection left as garbage and freeze the rest, as mlci's plugin does in a tier's run: the
    garbage collections during the in-process tests, and pytest's five at the end, then skip the modules
    collection imported (Textual, MLflow, torch; 0.93x the CPU of the Pilot tests). What the tests make is
    collected as before, so a leak they cause still warns."""
    gc.collect()
    gc.freeze()


_BUILD = "import sys\nfrom mlci.engine.demo.sandbox import build_sandbox\nbuild_sandbox(sys.argv[1], progress=print)\n"


def run_temp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary directory of this run that every xdist worker shares.

    A worker's base temp is `<run's base temp>/popen-gwN`; without xdist it is the run's own.
    """
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def _mlci_cache_of_this_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    """mlci's user cache (what the warm runner learned, for a project's copies) is this run's, shared by every
    test and worker as one user's machine shares it; the user's own `~/.cache/mlci` is left alone.

    Set in the environment, so the `mlci` and `mlci-tui` the tests start use it too.
    """
    os.environ["MLCI_CACHE_DIR"] = str(run_temp_root(tmp_path_factory) / "mlci-cache")


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo sandbox built by `build_sandbox`, once per run. Never modify it: use `sandbox`.

    Built in a child interpreter, as `mlci demo` builds it: MLflow's process-wide state
    (tracking URI, environment variables) stays out of the test processes.
    """
    shared = run_temp_root(tmp_path_factory)
    target = shared / "sandbox-template"
    ready = shared / "sandbox-template.ready"
    with FileLock(str(shared / "sandbox-template.lock")):
        if not ready.exists():
            shutil.rmtree(target, ignore_errors=True)  # what a failed build in another worker left
            env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
            built = subprocess.run(
                [sys.executable, "-c", _BUILD, str(target)], capture_output=True, text=True, env=env, check=False
            )
            if built.returncode != 0:
                pytest.fail(f"building the demo sandbox failed:\n{built.stdout[-2000:]}\n{built.stderr[-3000:]}")
            ready.touch()
    return target


@pytest.fixture
def sandbox(sandbox_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo sandbox for one test: its own git repository, DVC cache and MLflow store.

    The template holds its own absolute path in the git remote's URL, the DVC remote's URL
    (`.dvc/config.local`) and MLflow's artifact locations: each is re-pointed at the copy,
    so pushes, `dvc push` and model registrations stay inside it. A copy is cheap (about
    8 MB, 300 files); the files are copied, not linked, since tests edit them in place.
    """
    dest = tmp_path / "sandbox"
    shutil.copytree(sandbox_template, dest, symlinks=True)
    for config in (dest / ".git" / "config", dest / ".dvc" / "config.local"):
        # The same edit as `git remote set-url` and `dvc remote modify --local`, without starting
        # git and an interpreter that imports DVC (seconds per test on a loaded machine).
        config.write_text(config.read_text().replace(str(sandbox_template), str(dest)))
    _repoint_mlflow_store(dest / "mlflow.db", str(sandbox_template), str(dest))
    # The demo's remote checks every push in the background (local CI). Tests that do not follow
    # it switch it off, so their pushes start no check (tests/e2e/test_local_ci.py switches it on).
    (dest / ".sandbox" / "remote.git" / "hooks" / "post-receive").unlink(missing_ok=True)
    return dest


def _repoint_mlflow_store(db: Path, old: str, new: str) -> None:
    """Rewrite the copied store's absolute artifact locations from the template to the copy.

    Without it, runs and registrations made in a copy would write into the template's
    `mlruns/`, and tests would see each other's models.
    """
    with sqlite3.connect(db) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [
                row[1]
                for row in conn.execute(f"PRAGMA table_info('{table}')")
                if row[2].upper() in ("TEXT", "VARCHAR") or row[2].upper().startswith("VARCHAR")
            ]
            for column in columns:
                conn.execute(
                    f'UPDATE \'{table}\' SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                    (old, new, old),
                )
    conn.close()


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if not tmux_available():
        pytest.fail("tmux is required for the end-to-end tests (make test installs it)")
    session = Tmux()
    yield session
    session.kill()


@pytest.fixture
def tool_env() -> dict[str, str]:
    """The environment for running the installed `mlci`/`mlci-tui` binaries in subprocesses."""
    from mlci.engine.run.tool_env import tool_env as project_env

    env = project_env({"NO_COLOR": "1"})
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_RUN_ID", None)
    return env


@pytest.fixture
def only_testmon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tier runs a test starts load one pytest plugin, testmon (affected tests first), not every plugin of
    the suite's environment (Hypothesis, Textual's snapshots, Hydra, anyio, xdist: a second of imports a run).

    For the modules whose subject is the runner, the session or the check, not how a run meets the plugins a
    user has installed: `test_warm_runner` and `test_affected` keep pytest's default, as do the sandbox's
    tests (the demo project names its plugin itself).
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p pytest-testmon")
