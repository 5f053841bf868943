"""The dashboard's frame: git state in the header, the configured tiers, keys in the footer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlci.engine.config.loader import load_config
from mlci.tui.app import MlciApp
from mlci.tui.components.git_header import GitHeader
from mlci.tui.components.tier_panel import TierPanel

from tests.loop_projects import processes_in, temporary_files


def git_project(root: Path, *, data: bool = True) -> Path:
    (root / "tests" / "unit").mkdir(parents=True)
    if data:
        (root / "tests" / "data").mkdir()
    (root / "tests" / "unit" / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    # As in any Python project: the dashboard's own first run compiles the tests, and a machine
    # without PYTHONDONTWRITEBYTECODE would otherwise add `tests/unit/__pycache__/` to the count.
    (root / ".gitignore").write_text("__pycache__/\n")
    subprocess.run(["git", "init", "-q", "-b", "feature"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], cwd=root, check=True)
    (root / "notes.txt").write_text("uncommitted\n")
    return root


async def test_header_and_tiers_show_the_project(tmp_path: Path) -> None:
    root = git_project(tmp_path / "proj")
    app = MlciApp(load_config(root))
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(50):
            await pilot.pause(0.05)
            if app.query_one(GitHeader).state is not None:
                break
        header = str(app.query_one(GitHeader).render())
        assert "proj" in header
        assert "⎇ feature" in header
        assert "1 uncommitted" in header
        assert [r.tier.value for r in app.query_one(TierPanel).rows] == ["code", "data"]
        await pilot.press("q")
    assert app.return_code in (0, None)


async def test_a_folder_outside_git_says_so(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    app = MlciApp(load_config(tmp_path), start_engine=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "not a git repository" in str(app.query_one(GitHeader).render())


def at_the_first_frame(root: Path, then: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The app on `root` in a process of its own, run to its first frame; then `then` (Python, with `app`)."""
    script = (
        "import asyncio, sys\n"
        "from mlci.engine.config.loader import load_config\n"
        "from mlci.tui.app import MlciApp\n"
        "async def main():\n"
        "    app = MlciApp(load_config(sys.argv[1]))\n"
        "    async with app.run_test(size=(120, 36)) as pilot:\n"
        "        while app.heavy_at_first_paint is None:\n"
        "            await pilot.pause(0.02)\n"
        f"        {then}\n"
        "asyncio.run(main())\n"  # which waits for the worker that makes the session
    )
    argv = [sys.executable, "-c", script, str(root)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def test_first_frame_is_painted_before_any_heavy_import(tmp_path: Path) -> None:
    root = git_project(tmp_path / "proj")
    (root / "dvc.yaml").write_text("stages: {}\n")
    result = at_the_first_frame(root, "print('HEAVY=' + ','.join(app.heavy_at_first_paint))")
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stdout


def test_quitting_at_the_first_frame_stops_the_session_that_was_being_made(tmp_path: Path) -> None:
    """Quit before the engine has started: the session still being made is stopped once made, and leaves nothing."""
    root = git_project(tmp_path / "proj")
    (root / "dvc.yaml").write_text("stages: {}\n")  # DVC's imports: the session takes its time to be made
    temp = tmp_path / "temp"  # the app's TMPDIR: where the watcher's private index lives
    temp.mkdir()
    # At once, as `kill` right after opening: before the session is made.
    result = at_the_first_frame(root, "app.exit()", env={**os.environ, "TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    # Made after the quit had found no session to stop: stopped by the worker that made it.
    assert temporary_files(temp) == []
    assert processes_in(root) == []


def test_malformed_config_stops_the_tui_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text("tiers:\n  code:\n    timeout: never\n")
    bin_dir = Path(sys.executable).parent
    result = subprocess.run([str(bin_dir / "mlci-tui"), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    expected = "mlci.yaml:3: tiers.code.timeout must be a number of seconds, got a string ('never')"
    assert result.stderr.strip().endswith(expected)
