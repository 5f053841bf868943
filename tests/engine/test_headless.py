"""The engine is headless: no engine module pulls in Textual or Rich, and `mlci --help` stays light."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import mlci.engine
import mlci.engine.cli.commands
import pytest
from mlci.engine.cli.main import COMMANDS

ENGINE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(mlci.engine.__path__, "mlci.engine.") if m.name != "mlci.engine.__main__"
)
HEAVY = ("textual", "rich")


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_module_imports_without_textual_or_rich(module: str) -> None:
    code = f"import sys, {module}\nbad = [m for m in {HEAVY!r} if m in sys.modules]\nprint(','.join(bad))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_mlci_help_lists_every_subcommand_and_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from mlci.engine.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('mlflow','dvc','torch','sklearn','git','textual','pandas') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "HEAVY=\n" in result.stdout or result.stdout.rstrip().endswith("HEAVY=")
    for command in COMMANDS:
        assert f"    {command.name}" in result.stdout


def test_every_listed_subcommand_exists() -> None:
    commands_dir = Path(mlci.engine.cli.commands.__file__).parent
    for command in COMMANDS:
        assert (commands_dir / f"{command.module}.py").is_file(), f"mlci {command.name} is listed but missing"
        result = subprocess.run(
            [sys.executable, "-m", "mlci.engine", command.name, "--help"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert f"usage: mlci {command.name}" in result.stdout


def test_unknown_subcommand_is_an_error() -> None:
    result = subprocess.run([sys.executable, "-m", "mlci.engine", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_a_finished_command_ends_as_pythons_shutdown_would_less_the_teardown(tmp_path: Path) -> None:
    """`mlci` skips tearing its modules down (a second once torch and MLflow are loaded) and nothing else:
    the exit status, all of the output through a pipe, the atexit handlers, a thread still at its work."""
    code = textwrap.dedent(
        f"""
        import atexit, sys, threading, time
        from concurrent.futures import ThreadPoolExecutor
        from pathlib import Path
        from mlci.engine.process_exit import exit_without_teardown

        out = Path({str(tmp_path)!r})
        atexit.register(lambda: (out / "atexit").write_text("ran"))

        def finishing():
            time.sleep(0.5)
            (out / "thread").write_text("done")

        threading.Thread(target=finishing).start()
        ThreadPoolExecutor(2).submit(print, end="").result()  # its idle worker must not hold the exit
        sys.stdout.write("x" * 200_000)  # no newline: still in the buffer
        exit_without_teardown(3)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "x" * 200_000
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "done"
