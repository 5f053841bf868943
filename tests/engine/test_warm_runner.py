"""The warm runner and the project's interpreter: real servers, real forks, real pytest, real virtual environments."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlci.engine.config.loader import Config, load_config
from mlci.engine.config.tracking_store import QUIET_MLFLOW_ENV, quiet_mlflow
from mlci.engine.events import (
    GateReport,
    Notice,
    OutputLines,
    TestOutcome,
    TestResult,
    Tier,
    TierFinished,
    Verdict,
)
from mlci.engine.run.pytest_plugin import REPORT_ENV
from mlci.engine.run.run_token import RUN_TOKEN_ENV
from mlci.engine.run.tier_run import TierRun
from mlci.engine.run.warm.client import (
    WarmProcess,
    _key_name,
    _runtime_dir,
    server_statuses,
    stop_servers,
    wait_for_replacements,
)
from mlci.engine.run.warm.server import same_run

from tests.gate_projects import GOOD_GATES, build_gate_project, register_champion, write_gates
from tests.loop_projects import (
    MARKER_ENV,
    EventLog,
    living_processes,
    make_dvc_project,
    make_project,
    processes_with_env,
    wait_until,
    write,
    written,
)

BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"

TESTS = {
    "tests/unit/test_calc.py": """
        import json
        from calc import add

        def test_add():
            assert add(2, 2) == 4

        def test_json():
            assert json.loads("[1]") == [1]
    """,
}
SOURCES = {"calc.py": "def add(a, b):\n    return a + b\n"}


@pytest.fixture(autouse=True)
def _no_server_left() -> Iterator[None]:
    yield
    stop_servers()


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test's runs learn stays its own: another test's project of the same shape would start from it."""
    monkeypatch.setenv("MLCI_CACHE_DIR", str(tmp_path / "mlci-cache"))


def run_tier(config: Config, tier: Tier = Tier.CODE, *, warm: bool = True) -> tuple[TierFinished, EventLog]:
    log = EventLog()
    finished = TierRun(config, tier, run_id=1, plan_id=1, emit=log, warm=warm).run()
    return finished, log


def notices(log: EventLog) -> list[str]:
    return [e.text for e in log.snapshot() if isinstance(e, Notice) and e.source == "runner"]


def outcomes(log: EventLog) -> dict[str, TestOutcome]:
    return {e.nodeid: e.outcome for e in log.snapshot() if isinstance(e, TestResult)}


def server_pid(root: Path, tier: str = "code") -> int:
    [server] = [s for s in server_statuses(root) if s.tier == tier]
    return server.pid


def test_warm_and_cold_give_the_same_results_on_the_sample_project(sandbox: Path) -> None:
    write(
        sandbox / "tests/unit/test_red.py",
        """
        import numpy as np

        def test_red():
            assert np.zeros(2).sum() == 1
        """,
    )
    write(sandbox / "tests/data/test_red_data.py", "def test_red_data():\n    assert False\n")
    config = load_config(sandbox)

    def every_test(tier: Tier, *, warm: bool) -> tuple[TierFinished, EventLog]:
        # Without affected-test data every test counts as affected, so each run runs them all
        # (with it, a red affected test would end the run before the rest).
        shutil.rmtree(sandbox / ".mlci" / "affected", ignore_errors=True)
        return run_tier(config, tier, warm=warm)

    for tier in (Tier.CODE, Tier.DATA):
        cold, cold_log = every_test(tier, warm=False)
        first, _ = every_test(tier, warm=True)  # starts the server
        warm, warm_log = every_test(tier, warm=True)
        assert not any("cold" in text for text in notices(warm_log))
        assert cold.verdict is warm.verdict is first.verdict is Verdict.FAILED
        assert outcomes(warm_log) == outcomes(cold_log)
        assert (warm.passed, warm.failed) == (cold.passed, cold.failed)
        assert warm.failed >= 1 and warm.passed >= 3
        output = [line for e in warm_log.snapshot() if isinstance(e, OutputLines) for line in e.lines]
        assert not any("cannot be rewritten" in line for line in output)  # plugins are left to pytest
    statuses = {s.tier: s for s in server_statuses(sandbox)}
    assert {"code", "data"} <= set(statuses)
    assert {"torch", "pandas", "numpy"} <= {m.split(".")[0] for m in statuses["code"].preloaded}
    assert all("credit" not in m for m in statuses["code"].preloaded)  # never the project's own code
    # The data tests reach pandas, not the training's torch and MLflow: that server starts without them.
    assert not {"torch", "mlflow", "sklearn"} & {m.split(".")[0] for m in statuses["data"].preloaded}
    assert statuses["code"].rss_bytes and statuses["code"].rss_bytes > 50 * 2**20


MODEL_TESTS = """
    import json
    import os
    from pathlib import Path

    def test_the_stages_environment_reaches_the_tests():
        assert os.environ["MLCI_TRAIN_MODE"] == "quick"
        assert os.environ["MLFLOW_TRACKING_URI"].startswith("sqlite:")

    def test_what_the_stage_wrote():
        with Path("forks.txt").open("a") as forks:  # one line per run: the pid that ran the tests
            forks.write(f"{os.getpid()}\\n")
        assert json.loads(Path("out/env.json").read_text())["MLCI_TRAIN_MODE"] == "full"
"""


def test_the_model_tiers_tests_run_warm_too_with_the_stages_environment_and_the_cold_verdict(tmp_path: Path) -> None:
    """After a training the model tier's tests no longer pay for importing MLflow and the model's framework."""
    stage = (
        "python -c \"import json, os; json.dump({k: os.environ.get(k) for k in ('MLCI_TRAIN_MODE',)}, "
        "open('out/env.json', 'w'))\""
    )
    root = make_dvc_project(
        tmp_path / "p",
        stage_cmd=f"mkdir -p out && {stage}",
        outs=["out"],
        deps=["params.txt"],
        files={"params.txt": "1\n", "tests/model/test_model.py": textwrap.dedent(MODEL_TESTS)},
        config="mlflow:\n  experiment: loop-test\ntiers:\n  model:\n    tests: [tests/model]\n",
    )
    config = load_config(root)
    cold, cold_log = run_tier(config, Tier.MODEL, warm=False)
    first, _ = run_tier(config, Tier.MODEL)  # starts the model tier's server
    warm, warm_log = run_tier(config, Tier.MODEL)
    assert not any("cold" in text for text in notices(warm_log))
    assert cold.verdict is first.verdict is warm.verdict is Verdict.FAILED
    assert (
        outcomes(warm_log)
        == outcomes(cold_log)
        == {
            "tests/model/test_model.py::test_the_stages_environment_reaches_the_tests": TestOutcome.PASSED,
            "tests/model/test_model.py::test_what_the_stage_wrote": TestOutcome.FAILED,
        }
    )
    [status] = [s for s in server_statuses(root) if s.tier == "model"]
    assert "pytest" in status.preloaded
    cold_pid, *warm_pids = (root / "forks.txt").read_text().split()
    assert len(set(warm_pids)) == 2 and status.pid not in {int(p) for p in (cold_pid, *warm_pids)}


def _gate_figures(log: EventLog) -> list[tuple[str, str, bool, float | None]]:
    """The run's gate checks with their values; latency's values vary from run to run, so only its verdicts."""
    [report] = [e for e in log.snapshot() if isinstance(e, GateReport)]
    return [(r.gate, r.check, r.passed, None if r.gate == "latency" else r.value) for r in report.results]


def _gates_lines(log: EventLog) -> list[str]:
    return [line for e in log.snapshot() if isinstance(e, OutputLines) for line in e.lines if line.startswith("gates:")]


def test_the_model_tiers_gates_fork_from_its_warm_server_and_give_the_cold_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model tier that retrains nothing gives its verdict without importing MLflow and the model's libraries."""
    forked: list[tuple[str | None, int | None]] = []
    start = WarmProcess.start

    def spy(self: WarmProcess) -> None:
        start(self)
        forked.append((self.module, self.pgid))

    monkeypatch.setattr(WarmProcess, "start", spy)
    root = build_gate_project(tmp_path / "proj")
    # The model is already trained: the tier's stage only says so, and the gates judge that model.
    (root / "dvc.yaml").write_text(
        "stages:\n  ready:\n    cmd: python -c \"print('trained')\"\n    deps: [metrics.json]\n"
    )
    write_gates(root, "evaluation: {model: models/model, test_data: data/test.csv, label: y}\n" + GOOD_GATES)
    register_champion(root)
    config = load_config(root)
    cold, cold_log = run_tier(config, Tier.MODEL, warm=False)
    assert forked == []
    first, first_log = run_tier(config, Tier.MODEL)  # starts the model tier's server, which forks the gates
    warm, warm_log = run_tier(config, Tier.MODEL)
    assert cold.verdict is first.verdict is warm.verdict is Verdict.PASSED
    assert _gate_figures(warm_log) == _gate_figures(first_log) == _gate_figures(cold_log)
    assert "gates: forked from the tier's warm server" not in _gates_lines(cold_log)
    for log in (first_log, warm_log):
        assert "gates: forked from the tier's warm server" in _gates_lines(log)
        assert not [text for text in notices(log) if "cold" in text]
    [status] = [s for s in server_statuses(root) if s.tier == "model"]
    # Each gates child was a child of the server (a group of its own), and taught it nothing to preload.
    assert [module for module, _ in forked] == ["mlci.engine", "mlci.engine"]
    assert status.pid not in {pgid for _, pgid in forked}
    assert "mlflow" not in status.preloaded


@pytest.fixture
def prepared_runs(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each warm run was taken by the server's spare child (its pytest config built before the request)."""
    seen: list[bool] = []
    start = WarmProcess.start

    def spy(self: WarmProcess) -> None:
        start(self)
        seen.append(self.prepared)

    monkeypatch.setattr(WarmProcess, "start", spy)
    return seen


def test_an_edit_to_a_source_module_fails_the_very_next_warm_run_and_the_fix_passes(
    tmp_path: Path, prepared_runs: list[bool]
) -> None:
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES)
    config = load_config(root)
    for _ in range(3):  # until the server preloads what the runs import (replaced in the background, once)
        assert run_tier(config)[0].verdict is Verdict.PASSED
        assert wait_for_replacements(root, timeout=120)
    pid = server_pid(root)
    # The spare child for the next run was forked, and pytest's config built, before this edit.
    write(root / "calc.py", "def add(a, b):\n    return a - b\n")
    broken, log = run_tier(config)
    assert broken.verdict is Verdict.FAILED
    assert outcomes(log)["tests/unit/test_calc.py::test_add"] is TestOutcome.FAILED
    write(root / "calc.py", "def add(a, b):\n    return a + b\n")
    assert run_tier(config)[0].verdict is Verdict.PASSED
    assert server_pid(root) == pid  # the same server served the edit and the fix
    assert prepared_runs[-2:] == [True, True]  # both by a spare child prepared before the edit


def test_a_conftest_that_imports_a_broken_module_shows_the_error_in_the_run_that_a_spare_child_took(
    tmp_path: Path, prepared_runs: list[bool]
) -> None:
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES)
    write(root / "tests/conftest.py", "from calc import add\n")
    config = load_config(root)
    for _ in range(2):
        assert run_tier(config)[0].verdict is Verdict.PASSED
        assert wait_for_replacements(root, timeout=120)
    write(root / "calc.py", "def add(a, b)\n    return a + b\n")  # a syntax error, read as the conftest loads
    broken, log = run_tier(config)
    assert broken.verdict is Verdict.ERROR
    output = "\n".join(line for e in log.snapshot() if isinstance(e, OutputLines) for line in e.lines)
    assert "SyntaxError" in output and "calc.py" in output
    assert prepared_runs[-1] is True


@pytest.mark.parametrize(
    ("addopts", "error", "prepared"),
    [
        # Unknown options are only refused after the conftests load: the spare child takes the run and says so.
        ("--no-such-option", "unrecognized arguments: --no-such-option", [False, True, True]),
        # A missing plugin fails while the config is built: each spare fails before its gate and is dropped.
        ("-p no_such_plugin", 'Error importing plugin "no_such_plugin"', [False, False, False]),
    ],
)
def test_a_pytest_config_error_shows_in_every_warm_run_whether_or_not_a_spare_child_takes_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prepared_runs: list[bool],
    addopts: str,
    error: str,
    prepared: list[bool],
) -> None:
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES)
    monkeypatch.setenv("PYTEST_ADDOPTS", addopts)
    config = load_config(root)
    for _ in range(3):
        finished, log = run_tier(config)
        assert finished.verdict is Verdict.ERROR
        output = "\n".join(line for e in log.snapshot() if isinstance(e, OutputLines) for line in e.lines)
        assert error in output
    assert prepared_runs == prepared


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({}, True),
        ({"env": {REPORT_ENV: "/tmp/b.jsonl", RUN_TOKEN_ENV: "b"}}, True),  # mlci's per-run variables
        ({"env": {"PYTEST_ADDOPTS": "-x"}}, False),
        ({"argv": ["tests/unit/test_calc.py"]}, False),
        ({"cwd": "/elsewhere"}, False),
    ],
)
def test_a_spare_child_takes_only_the_run_it_was_prepared_for(change: dict[str, Any], same: bool) -> None:
    prepared = {"argv": ["tests"], "cwd": "/p", "env": {"PATH": "/bin", REPORT_ENV: "/tmp/a.jsonl", RUN_TOKEN_ENV: "a"}}
    request = {**prepared, **change, "env": {"PATH": "/bin", **change.get("env", prepared["env"])}}
    assert same_run(prepared, request) is same


def run_on_a_ready_server(config: Config, root: Path) -> TierFinished:
    """Run the tier until a ready server is there: a restarted server leaves the runs cold while it preloads
    (it is not waited for), and on a loaded machine that can outlast the next run."""
    runs: list[TierFinished] = []

    def served() -> bool:
        runs.append(run_tier(config)[0])
        return any(s.tier == "code" for s in server_statuses(root))

    wait_until(served, what="a ready server after the restart")
    return runs[-1]


@pytest.mark.parametrize(("path", "text"), [("tests/conftest.py", "import pytest\n"), ("poetry.lock", "[[package]]\n")])
def test_a_conftest_or_lock_file_edit_restarts_the_server_and_that_run_is_cold(
    tmp_path: Path, path: str, text: str
) -> None:
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES)
    config = load_config(root)
    run_tier(config)
    pid = server_pid(root)
    write(root / path, text)
    finished, log = run_tier(config)
    assert finished.verdict is Verdict.PASSED
    assert any(f"{path} changed" in text and "this run is cold" in text for text in notices(log))
    finished = run_on_a_ready_server(config, root)
    assert finished.verdict is Verdict.PASSED
    assert server_pid(root) != pid
    assert pid not in living_processes([pid])


@pytest.mark.parametrize("change", ["a retrain rewrites dvc.lock", "mlci's process first uses MLflow"])
def test_a_retrain_or_mlcis_first_use_of_mlflow_keeps_the_server_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Neither says anything of the installed packages: the next run is warm, on the same server.

    `dvc repro` rewrites dvc.lock at every training; mlci sets MLflow's quiet defaults in its own
    process the first time it registers a model or follows a run.
    """
    for name in QUIET_MLFLOW_ENV:  # as in a fresh mlci process (and restored after the test)
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES)
    config = load_config(root)
    write(root / "dvc.lock", "schema: '2.0'\nstages: {}\n")
    run_tier(config)
    pid = server_pid(root)
    if change.endswith("dvc.lock"):
        write(root / "dvc.lock", "schema: '2.0'\nstages:\n  train:\n    cmd: python train.py\n")
    else:
        quiet_mlflow()
    finished, log = run_tier(config)
    assert finished.verdict is Verdict.PASSED
    assert not [text for text in notices(log) if "restarting" in text or "cold" in text]
    assert server_pid(root) == pid


def _tiny_wheel(directory: Path) -> Path:
    path = directory / "tinypkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("tinypkg/__init__.py", "VALUE = 1\n")
        wheel.writestr("tinypkg-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n")
        wheel_file = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        wheel.writestr("tinypkg-0.1.dist-info/WHEEL", wheel_file)
        wheel.writestr("tinypkg-0.1.dist-info/RECORD", "")
    return path


def _project_venv(path: Path) -> Path:
    """A second virtual environment, without mlci: the base interpreter's pytest through its system site."""
    subprocess.run([str(BASE_PYTHON), "-m", "venv", "--system-site-packages", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import pytest"], capture_output=True)
    if probe.returncode != 0:
        pytest.fail(f"{BASE_PYTHON} has no pytest: the two-environment tests need it")
    assert subprocess.run([str(python), "-c", "import mlci.engine"], capture_output=True).returncode != 0
    return python


def test_mlci_runs_the_tiers_in_the_projects_own_environment(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        tests={
            "tests/unit/test_where.py": """
                import sys

                def test_runs_in_the_projects_venv():
                    assert sys.prefix.endswith("/p/.venv"), sys.prefix
            """
        },
        sources=SOURCES,
    )
    python = _project_venv(root / ".venv")
    config = load_config(root)
    cold, log = run_tier(config, warm=False)
    assert cold.verdict is Verdict.PASSED, [e for e in log.snapshot() if not isinstance(e, TestResult)]
    warm, _ = run_tier(config)
    assert warm.verdict is Verdict.PASSED
    out = subprocess.run(
        [sys.executable, "-m", "mlci.engine", "config", str(root)], capture_output=True, text=True, check=True
    ).stdout
    assert f"# python: {python} (.venv/ at the project root)" in out
    assert "code tier server pid" in out


def test_installing_a_package_into_the_environment_restarts_the_server(tmp_path: Path) -> None:
    venv = tmp_path / "env"
    python = _project_venv(venv)
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES, config=f"python: {python}\n")
    config = load_config(root)
    assert run_tier(config)[0].verdict is Verdict.PASSED
    pid = server_pid(root)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(_tiny_wheel(tmp_path))],
        check=True,
        capture_output=True,
    )
    finished, log = run_tier(config)
    assert finished.verdict is Verdict.PASSED
    assert any("the installed packages" in text and "this run is cold" in text for text in notices(log))
    run_on_a_ready_server(config, root)
    assert server_pid(root) != pid


FORK_UNSAFE = {
    "threadymod/__init__.py": """
        import threading
        import time

        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    """,
    "fakegpu/__init__.py": """
        class cuda:
            '''Stands in for torch.cuda: this "library" initialises CUDA as it is imported.'''

            @staticmethod
            def is_initialized():
                return True
    """,
}


def project_with_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lib: Path, library: dict[str, str], tests: dict[str, str]
) -> Path:
    """A project whose tests import `library`: third-party modules in `lib`, outside the project, on PYTHONPATH."""
    for name, text in library.items():
        write(lib / name, text)
    monkeypatch.setenv("PYTHONPATH", str(lib))
    return make_project(tmp_path / "p", tests=tests)


def test_a_preloaded_module_that_starts_a_thread_or_initialises_cuda_is_left_out_with_a_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = {
        "tests/unit/test_libs.py": """
            import fakegpu
            import threadymod

            def test_both_still_import_in_the_child():
                assert fakegpu.cuda.is_initialized() and threadymod
        """
    }
    root = project_with_library(tmp_path, monkeypatch, tmp_path / "lib", FORK_UNSAFE, tests)
    finished, log = run_tier(load_config(root))
    assert finished.verdict is Verdict.PASSED
    said = "\n".join(notices(log))
    assert "preloading threadymod started a thread (not fork-safe): restarting without it" in said
    assert "preloading fakegpu initialised CUDA (not fork-safe): restarting without it" in said
    [status] = server_statuses(root)
    assert not {"threadymod", "fakegpu"} & set(status.preloaded)
    again, log = run_tier(load_config(root))  # the same server, or its replacement: still without them
    assert again.verdict is Verdict.PASSED and not [n for n in notices(log) if "threadymod" in n or "fakegpu" in n]
    [status] = server_statuses(root)
    assert not {"threadymod", "fakegpu"} & set(status.preloaded)


LAZY_LIBRARY = {
    "heavylib/__init__.py": """
        def deterministic():
            # Like torch.use_deterministic_algorithms: imports its heavy part on the first call.
            import heavylib.compiler

            return heavylib.compiler.READY
    """,
    "heavylib/compiler.py": "READY = True\n",
}


def test_what_a_run_imports_beyond_the_preloaded_modules_is_preloaded_for_the_next_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prepared_runs: list[bool]
) -> None:
    tests = {
        "tests/unit/test_lazy.py": """
            import sys
            from pathlib import Path

            import heavylib

            def test_deterministic():
                with Path("runs.txt").open("a") as runs:  # was it imported before the test asked for it?
                    runs.write(f"{'heavylib.compiler' in sys.modules}\\n")
                assert heavylib.deterministic()
        """
    }
    # In a `site-packages` directory: an installed library, as the project's environment has it.
    root = project_with_library(tmp_path, monkeypatch, tmp_path / "env" / "site-packages", LAZY_LIBRARY, tests)
    first, log = run_tier(load_config(root))
    assert first.verdict is Verdict.PASSED
    # A replacement that preloads it too starts in the background as that run ends; the old server
    # would serve a run meanwhile. Wait for it, so that the next run shows the switch.
    assert wait_for_replacements(root, timeout=120)
    second, log = run_tier(load_config(root))
    assert second.verdict is Verdict.PASSED
    [switched] = notices(log)
    assert switched.startswith("warm runner: now preloading ") and switched.endswith(", which earlier runs imported")
    assert "heavylib.compiler" in switched
    [status] = server_statuses(root)
    assert "heavylib.compiler" in status.preloaded
    third, log = run_tier(load_config(root))
    assert third.verdict is Verdict.PASSED and not notices(log)  # learned once: no restart after each run
    # Kept in the project's .mlci: the next session's first server preloads it from the start.
    stop_servers(root)
    fourth, log = run_tier(load_config(root))
    assert fourth.verdict is Verdict.PASSED
    assert not any("now preloading" in n for n in notices(log))
    assert (root / "runs.txt").read_text().split() == ["False", "True", "True", "True"]
    # A new server's first run forks afresh; the replacement's first run, as every later one, is taken by a spare
    # child prepared for it.
    assert prepared_runs == [False, True, True, False]
    # A fresh clone has learned nothing of its own (`.mlci/` is not committed): it starts from what the
    # original learned, so its very first run finds the lazy part imported, and no replacement follows.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True, capture_output=True)
    assert not (clone / ".mlci").exists()
    cloned, log = run_tier(load_config(clone))
    assert cloned.verdict is Verdict.PASSED
    assert (clone / "runs.txt").read_text().split() == ["True"]
    assert wait_for_replacements(clone, timeout=120)
    again, log = run_tier(load_config(clone))
    assert again.verdict is Verdict.PASSED and not notices(log)


SLEEPER = {
    "tests/unit/test_sleeps.py": """
        import os
        import subprocess
        import time
        from pathlib import Path

        def test_hangs():
            if not Path("hang").exists():
                return
            child = subprocess.Popen(["sleep", "600"])
            Path("child.pid").write_text(str(child.pid))
            Path("test.pid").write_text(str(os.getpid()))
            time.sleep(600)
    """
}


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_cancel_and_timeout_kill_the_forked_childs_group_and_stopping_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    marker = uuid.uuid4().hex
    monkeypatch.setenv(MARKER_ENV, marker)
    config_text = "tiers:\n  code:\n    tests: [tests/unit]\n    timeout: 20\n"
    root = make_project(tmp_path / "p", tests=SLEEPER, config=config_text)
    config = load_config(root)
    assert run_tier(config)[0].verdict is Verdict.PASSED  # the server is up: the deadline below is the run's own
    (root / "hang").touch()
    log = EventLog()
    run = TierRun(config, Tier.CODE, run_id=1, plan_id=1, emit=log, warm=True)
    thread = threading.Thread(target=run.run)
    thread.start()
    pids = [int(text) for text in written(root / "child.pid", root / "test.pid", what="the test's child")]
    server = server_pid(root)
    assert server not in pids and os.getpgid(pids[1]) == pids[1]  # a forked child, leader of its own group
    if how == "cancel":
        run.cancel("cancelled by you")
    thread.join(60)
    [finished] = log.finished(Tier.CODE)
    assert finished.verdict is (Verdict.CANCELLED if how == "cancel" else Verdict.TIMED_OUT)
    assert living_processes(pids) == []
    assert living_processes([server]) == [server]  # the server survives its child
    stop_servers(root)
    assert processes_with_env(MARKER_ENV, marker) == []
    assert server_statuses(root) == []


def test_a_server_killed_outright_leaves_no_folder_behind(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES)
    config = load_config(root)
    assert run_tier(config)[0].verdict is Verdict.PASSED
    ours = f"{_key_name(root, 'code')}-"
    runtime = _runtime_dir()
    # The server's, and a replacement's when the run learned modules.
    learned = [p for p in runtime.iterdir() if p.name.startswith(ours) and "-learned-" in p.name]
    assert learned
    os.kill(server_pid(root), signal.SIGKILL)  # as `kill -9` on a hung server: it cleans up nothing itself
    stop_servers(root)
    assert [p for p in learned if p.exists()] == []
    assert [p.name for p in runtime.iterdir() if p.name.startswith(ours)] == []


def test_the_runner_says_which_interpreter_and_why(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", tests=TESTS, sources=SOURCES, config="python: nowhere/python\n")
    done = subprocess.run([sys.executable, "-m", "mlci.engine", "runner", str(root)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("mlci.yaml:1: python: no such interpreter 'nowhere/python'")
    assert "Traceback" not in done.stderr
    write(root / "mlci.yaml", f"python: {sys.executable}\nrunner: cold\n")
    out = subprocess.run(
        [sys.executable, "-m", "mlci.engine", "runner", str(root)], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == [
        f"python: {sys.executable} (python: at mlci.yaml:1)",
        "runner: cold (a fresh interpreter for every run)",
    ]
