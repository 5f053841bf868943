"""Benchmark: the median time from saving a file to the code tier's verdict, mlci against two watchers.

    python bench/bench_save_to_verdict.py [--edits 7]

Three copies of `sample_project/` (git-initialised, committed), one per tool, each watched
by its tool at the same time: `mlci watch --json`, `pytest-watcher` and `pytest-watch`
(`ptw`), all running `pytest tests/unit` (pytest-watch's copy gets its pytest settings as a
`pytest.ini`, as it cannot read `pyproject.toml`). The same edit (a new comment line in
`src/credit/params.py`) is made to one copy at a time, in rounds, so that the load of the
machine falls on all three alike. The clock stops when the tool says the verdict: mlci's
`TierFinished` event for the code tier, and pytest's summary line ("== 36 passed in ... ==")
in the output of the other two.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EDITED = Path("src/credit/params.py")
SUMMARY = re.compile(r"^=+ .*\b(passed|failed|errors?|no tests ran)\b.* in [\d.]+s.* =+$")
"""pytest's last line, which the other watchers print when their run is over."""
TIMEOUT_S = 600.0


def copy_project(dest: Path) -> Path:
    shutil.copytree(
        REPO / "sample_project",
        dest,
        ignore=shutil.ignore_patterns(
            "__pycache__", ".pytest_cache", "mlflow.db", "mlruns", ".mlci", ".dvc", "models", "metrics.json"
        ),
    )
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for argv in (["init", "-q", "-b", "main"], [*identity, "add", "-A"], [*identity, "commit", "-q", "-m", "start"]):
        subprocess.run(["git", *argv], cwd=dest, check=True, capture_output=True)
    return dest


def pytest_ini_for_ptw(root: Path) -> None:
    """pytest-watch (2018) reads pyproject.toml as an ini file and crashes: give it the same pytest settings
    as a `pytest.ini`, which both it and pytest read first."""
    import tomllib

    options = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = ["[pytest]"]
    for key, value in options.items():
        if isinstance(value, list):
            lines.append(f"{key} =\n" + "\n".join(f"    {v}" for v in value))
        else:
            lines.append(f"{key} = {value}")
    (root / "pytest.ini").write_text("\n".join(lines) + "\n")


def mlci_verdict(line: str) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return event.get("type") == "TierFinished" and event.get("tier") == "code" and event.get("verdict") != "cancelled"


def mlci_ready(line: str) -> bool:
    return '"type": "Notice"' in line and "watching" in line


@dataclass
class Tool:
    name: str
    argv: list[str]
    ready: Callable[[str], bool]
    """The line after which the tool is watching (and idle)."""
    verdict: Callable[[str], bool]
    root: Path = Path()
    times: list[float] = field(default_factory=list)
    lines: queue.Queue[tuple[float, str]] = field(default_factory=queue.Queue)
    proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(self.ready)
        time.sleep(2.0)  # let the first run (pytest-watch starts with one) and its exit settle
        self.drain()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))

    def drain(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()

    def wait_for(self, predicate: Callable[[str], bool]) -> float:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            at, line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if predicate(line):
                return at

    def edit(self, n: int) -> None:
        self.drain()
        path = self.root / EDITED
        text = path.read_text(encoding="utf-8")
        started = time.monotonic()
        path.write_text(text + f"# bench edit {n}\n", encoding="utf-8")
        self.times.append(self.wait_for(self.verdict) - started)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=7, help="edits per tool (default 7)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlci-bench-"))
    tools = [
        Tool("mlci watch", [str(BIN / "mlci"), "watch", "--json", "."], mlci_ready, mlci_verdict),
        # With watchdog >= 5 its default pattern `*.py` matches top-level files only: ask for every .py file.
        Tool(
            "pytest-watcher",
            [str(BIN / "pytest-watcher"), "--now", "--patterns", "**/*.py", ".", "tests/unit"],
            lambda line: bool(SUMMARY.match(line)),
            lambda line: bool(SUMMARY.match(line)),
        ),
        Tool(
            "pytest-watch (ptw)",
            [str(BIN / "ptw"), "--nobeep", "--runner", str(BIN / "pytest"), "--", "tests/unit"],
            lambda line: bool(SUMMARY.match(line)),
            lambda line: bool(SUMMARY.match(line)),
        ),
    ]
    try:
        for i, tool in enumerate(tools):
            tool.root = copy_project(work / f"project{i}")
            if tool.name.startswith("pytest-watch "):
                pytest_ini_for_ptw(tool.root)
            print(f"starting {tool.name} in {tool.root}", file=sys.stderr, flush=True)
            tool.start()
        for n in range(args.edits):
            for tool in tools:
                tool.edit(n)
                print(f"edit {n + 1}/{args.edits} {tool.name}: {tool.times[-1]:.2f} s", file=sys.stderr, flush=True)
                time.sleep(1.0)
    finally:
        for tool in tools:
            tool.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"save -> code-tier verdict on sample_project (tests/unit), {args.edits} edits each, median of each tool")
    print(f"{'tool':<20} {'median s':>9} {'min s':>7} {'max s':>7}")
    for tool in tools:
        print(f"{tool.name:<20} {statistics.median(tool.times):>9.2f} {min(tool.times):>7.2f} {max(tool.times):>7.2f}")
    mine = statistics.median(tools[0].times)
    for other in tools[1:]:
        print(f"mlci / {other.name}: {mine / statistics.median(other.times):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
