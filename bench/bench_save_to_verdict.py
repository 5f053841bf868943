"""Benchmark: from saving a file to the verdict, mlci warm and cold against ptw and pytest-watcher, in one run.

    python bench/bench_save_to_verdict.py [--edits 7] [--edit tests/unit/test_params.py] [--change comment|test]
                                          [--rerun-timeout 60]

One demo sandbox (`mlci demo DIR`: the sample project with its real torch, sklearn, pandas
and MLflow imports, in git, with DVC data), copied once per tool; each tool watches its copy
at the same time:

* `mlci watch --json` (warm runner, affected tests first),
* `mlci watch --json --cold` (a fresh interpreter per run),
* `ptw` (pytest-watch 4.2), `pytest-watcher`, both running `pytest tests/unit`.

The same edit (a comment line appended to `--edit`, as a person saving a file; with `--change test`
a new test function, which makes one test affected) is made to one
copy at a time, in rounds, so that the machine's load falls on all alike. The clock runs from
the write to the line that says the verdict: for mlci the `AffectedVerdict` event (first
verdict: the tests the change affects) and the code tier's `TierFinished` (full verdict); for
the peers pytest's summary line (their first verdict is their full one). A peer that prints
nothing within `--rerun-timeout` after an edit is reported as "did not rerun" and gets no
more edits. Printed at the end: medians, the warm server's resident memory (`mlci runner
--json`) and its warm-up time. Figures only: nothing here asserts a time.
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

BIN = Path(sys.executable).parent
SUMMARY = re.compile(r"^=+ .*\b(passed|failed|errors?|no tests ran)\b.* in [\d.]+s.* =+$")
"""pytest's last line, which the peers print when their run is over."""
START_TIMEOUT_S = 600.0
EDITS = {
    "comment": ("a comment", "# bench edit {n}\n"),
    "test": ("a new test", "\n\ndef test_bench_edit_{n}():\n    assert {n} + 1 > {n}\n"),
}
"""What each edit appends, and its name: a comment (no test's code changes, so no test is affected) or a new
test (the one affected test)."""


def build_sandbox(work: Path) -> Path:
    target = work / "sandbox"
    subprocess.run([str(BIN / "mlci"), "demo", str(target)], check=True, stdout=subprocess.DEVNULL)
    return target


def copy_sandbox(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True, ignore=shutil.ignore_patterns(".mlci", ".pytest_cache"))
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


def _event(line: str) -> dict[str, object]:
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def mlci_first(line: str) -> bool:
    event = _event(line)
    return event.get("type") == "AffectedVerdict" or mlci_full(line)


def mlci_full(line: str) -> bool:
    event = _event(line)
    return event.get("type") == "TierFinished" and event.get("tier") == "code" and event.get("verdict") != "cancelled"


def summary(line: str) -> bool:
    return bool(SUMMARY.match(line))


@dataclass
class Tool:
    name: str
    argv: list[str]
    first: Callable[[str], bool]
    full: Callable[[str], bool]
    root: Path = Path()
    firsts: list[float] = field(default_factory=list)
    fulls: list[float] = field(default_factory=list)
    failure: str = ""
    """Why this tool got no more edits ("did not rerun after edit 2")."""
    lines: queue.Queue[tuple[float, str]] = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)
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
        # Every tool gives a verdict when it starts (mlci: its initial run, warm-up included).
        if self.wait_for(self.full, START_TIMEOUT_S) is None:
            self.failure = "no verdict at start"
        time.sleep(2.0)  # let that run's interpreter exit
        self.drain()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            self.lines.put((time.monotonic(), line.rstrip("\n")))

    def drain(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                at, line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if predicate(line):
                return at

    def edit(self, n: int, path: Path, rerun_timeout: float, change: str = "comment") -> None:
        self.drain()
        started = time.monotonic()
        with (self.root / path).open("a", encoding="utf-8") as stream:
            stream.write(EDITS[change][1].format(n=n))
        first = self.wait_for(self.first, rerun_timeout)
        if first is None:
            self.failure = f"did not rerun after edit {n + 1} (nothing within {rerun_timeout:g}s)"
            return
        full = first if self.first is self.full else self.wait_for(self.full, rerun_timeout)
        if full is None:
            self.failure = f"no full verdict after edit {n + 1}"
            return
        self.firsts.append(first - started)
        self.fulls.append(full - started)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def warm_server(tool: Tool) -> tuple[str, str]:
    """The warm server's resident memory and warm-up time, as `mlci runner --json` tells them."""
    done = subprocess.run(
        [str(BIN / "mlci"), "runner", "--json", str(tool.root)], capture_output=True, text=True, check=False
    )
    try:
        servers = json.loads(done.stdout)["servers"]
    except (ValueError, KeyError):
        return "?", "?"
    code = [s for s in servers if s["tier"] == "code"]
    if not code:
        return "no server", "-"
    rss = code[0]["rss_bytes"]
    return (f"{rss / 2**20:.0f} MiB" if rss else "?"), f"{code[0]['warmup_s']:.2f} s"


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def _report(tools: list[Tool], warm: Tool | None, edit: str, change: str, edits: int, rss: str, warmup: str) -> None:
    print(f"save -> verdict on a demo sandbox ({edit}: {EDITS[change][0]} appended), {edits} edits each, medians")
    print(f"{'tool':<16} {'first verdict s':>16} {'full verdict s':>15} {'edits':>6}  note")
    for tool in tools:
        note = tool.failure
        print(f"{tool.name:<16} {_median(tool.firsts):>16} {_median(tool.fulls):>15} {len(tool.fulls):>6}  {note}")
    if warm is None:
        return
    print(f"mlci warm server: resident memory {rss}, warm-up {warmup}")
    for other in (tool for tool in tools if tool is not warm):
        if warm.fulls and other.fulls:
            ratio_first = statistics.median(other.fulls) / statistics.median(warm.firsts)
            ratio_full = statistics.median(other.fulls) / statistics.median(warm.fulls)
            print(f"{other.name} / mlci warm: {ratio_first:.1f}x (first verdict), {ratio_full:.1f}x (full verdict)")
        elif other.failure:
            print(f"{other.name}: {other.failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=7, help="edits per tool (default 7)")
    parser.add_argument("--edit", default="tests/unit/test_params.py", help="the file each edit appends a comment to")
    parser.add_argument(
        "--change",
        choices=sorted(EDITS),
        default="comment",
        help="what each edit appends: a comment (as the issue measured) or a new test (default comment)",
    )
    parser.add_argument("--rerun-timeout", type=float, default=60.0, help="seconds to wait for a tool's verdict")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox copies")
    parser.add_argument(
        "--only", action="append", metavar="TOOL", help="measure only this tool (repeatable; default: all four)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlci-bench-"))
    mlci = str(BIN / "mlci")
    tools = [
        Tool("mlci warm", [mlci, "watch", "--json", "."], mlci_first, mlci_full),
        Tool("mlci cold", [mlci, "watch", "--json", "--cold", "."], mlci_first, mlci_full),
        Tool(
            "ptw",
            [str(BIN / "ptw"), "--nobeep", "--runner", str(BIN / "pytest"), "--", "tests/unit"],
            summary,
            summary,
        ),
        # With watchdog >= 5 its default pattern `*.py` matches top-level files only: ask for every .py file.
        Tool(
            "pytest-watcher",
            [str(BIN / "pytest-watcher"), "--now", "--patterns", "**/*.py", ".", "tests/unit"],
            summary,
            summary,
        ),
    ]
    if args.only:
        unknown = set(args.only) - {tool.name for tool in tools}
        if unknown:
            parser.error(f"no tool named {', '.join(sorted(unknown))}: {', '.join(tool.name for tool in tools)}")
        tools = [tool for tool in tools if tool.name in args.only]
    warm = next((tool for tool in tools if tool.name == "mlci warm"), None)
    rss, warmup = "?", "?"
    try:
        print(f"building the demo sandbox in {work}", file=sys.stderr, flush=True)
        template = build_sandbox(work)
        for i, tool in enumerate(tools):
            tool.root = copy_sandbox(template, work / f"copy{i}")
            if tool.name == "ptw":
                pytest_ini_for_ptw(tool.root)
            print(f"starting {tool.name} in {tool.root}", file=sys.stderr, flush=True)
            tool.start()
        for n in range(args.edits):
            for tool in tools:
                if tool.failure:
                    continue
                tool.edit(n, Path(args.edit), args.rerun_timeout, args.change)
                said = tool.failure or f"first {tool.firsts[-1]:.2f} s, full {tool.fulls[-1]:.2f} s"
                print(f"edit {n + 1}/{args.edits} {tool.name}: {said}", file=sys.stderr, flush=True)
                time.sleep(1.0)
        if warm is not None:
            rss, warmup = warm_server(warm)
    finally:
        for tool in tools:
            tool.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _report(tools, warm, args.edit, args.change, args.edits, rss, warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
