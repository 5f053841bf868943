"""What `mlci watch` costs while nothing happens, on a 50,000-file git tree, against peer watchers.

Builds a git repository of 50,000 small files in a temporary directory (500 packages of
100 modules, one trivial unit test, all committed), then starts each watcher on it in
turn: `mlci watch`, `mlci watch --poll` (the fallback when inotify cannot be used), the
engine's Watcher alone (what watching costs inside `mlci watch`), `ptw` (pytest-watch) and
`pytest-watcher`. Each one is left to settle (its start-up work
and first test run done: its CPU time stops growing), then measured over an idle window:
CPU seconds consumed and resident memory, read from /proc for the whole process tree.
Prints a table with ratios to `mlci watch`. Figures only: nothing here is asserted.

    python bench/bench_idle_watch.py [--files 50000] [--idle 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

WATCHER_SCRIPT = """
import sys, threading
from pathlib import Path
from mlci.engine.loop.watch import Watcher
w = Watcher(Path(sys.argv[1]), on_change=lambda c: print(c, flush=True), force_polling=len(sys.argv) > 2)
w.start()
w.wait_ready()
print("ready", flush=True)
threading.Event().wait()
"""
"""The engine's Watcher alone, printing changes: its own share of `mlci watch`'s cost."""


def build_tree(root: Path, files: int) -> None:
    per_package = 100
    for i in range(files):
        package = root / "src" / f"pkg{i // per_package:04d}"
        if i % per_package == 0:
            package.mkdir(parents=True)
            (package / "__init__.py").write_text("")
        (package / f"mod{i % per_package:03d}.py").write_text(f"VALUE = {i}\n\n\ndef value():\n    return VALUE\n")
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "unit" / "test_smoke.py").write_text("def test_smoke():\n    assert True\n")
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    (root / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n.mlci/\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "b@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "b@example.invalid",
    }
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "tree"]):
        subprocess.run(argv, cwd=root, env=env, check=True)


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()


def process_tree(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(name))[1]), []).append(int(name))
            except (OSError, IndexError):
                continue
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(root_pid: int) -> float:
    """User + system time of the live tree, with the children it has reaped."""
    total = 0.0
    for pid in process_tree(root_pid):
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK  # utime stime cutime cstime
    return total


def rss_mib(root_pid: int) -> float:
    total = 0
    for pid in process_tree(root_pid):
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            continue
    return total / 2**20


@dataclass
class Result:
    name: str
    cpu_s: float
    idle_s: float
    rss: float
    processes: int
    note: str = ""


def settle(proc: subprocess.Popen[bytes], window: float = 5.0, timeout: float = 240.0) -> bool:
    """Wait until the start-up work is done; False if the process ended.

    Done means a 5 s window in which the tree used (almost) no CPU, or, for a watcher that
    keeps working while idle (polling), two windows in a row that used about the same.
    """
    previous: float | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        start = cpu_seconds(proc.pid)
        time.sleep(window)
        if proc.poll() is not None:
            return False
        used = cpu_seconds(proc.pid) - start
        if used < 0.05 or (previous is not None and abs(used - previous) <= 0.15 * max(used, previous)):
            return True
        previous = used
    return True


def measure(name: str, argv: list[str], cwd: Path, idle: float) -> Result | None:
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if not settle(proc):
            return None
        start = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        time.sleep(idle)
        cpu = cpu_seconds(proc.pid) - start
        elapsed = time.monotonic() - t0
        return Result(name, cpu, elapsed, rss_mib(proc.pid), len(process_tree(proc.pid)))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def mlci_watch(name: str, tree: Path, idle: float, *extra: str) -> Result:
    """`mlci watch` itself; the bare Watcher when the command does not run here."""
    result = measure(name, [str(BIN / "mlci"), "watch", str(tree), *extra], tree, idle)
    if result is not None:
        return result
    script = [sys.executable, "-c", WATCHER_SCRIPT, str(tree), *(["poll"] if extra else [])]
    fallback = measure(name, script, tree, idle)
    assert fallback is not None, "the Watcher script exited"
    fallback.note = "(engine Watcher: `mlci watch` exited)"
    return fallback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle measured per watcher")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlci-bench-watch-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        t0 = time.perf_counter()
        build_tree(tree, args.files)
        print(
            f"tree: {args.files} files in git, built in {time.perf_counter() - t0:.1f} s; "
            f"idle window {args.idle:g} s per watcher"
        )
        results = [
            mlci_watch("mlci watch", tree, args.idle),
            mlci_watch("mlci watch --poll", tree, args.idle, "--poll"),
        ]
        alone = measure("engine Watcher alone", [sys.executable, "-c", WATCHER_SCRIPT, str(tree)], tree, args.idle)
        if alone is not None:
            results.append(alone)
        for name, argv in (
            ("ptw (pytest-watch)", [str(BIN / "ptw"), str(tree)]),
            ("pytest-watcher", [str(BIN / "pytest-watcher"), str(tree)]),
        ):
            result = measure(name, argv, tree, args.idle)
            if result is not None:
                results.append(result)
            else:
                print(f"{name}: exited before settling, not measured")
    base = results[0]
    print(
        f"{'watcher':22} {'CPU s':>7} {'CPU %':>7} {'RSS MiB':>8} {'procs':>5} {'CPU vs mlci':>11} {'RSS vs mlci':>11}"
    )
    for r in results:
        # /proc counts CPU in clock ticks: a watcher that used none is counted as one tick for the ratio.
        cpu_ratio = max(r.cpu_s, 1 / TICK) / max(base.cpu_s, 1 / TICK)
        print(
            f"{r.name:22} {r.cpu_s:7.2f} {100 * r.cpu_s / r.idle_s:6.2f}% {r.rss:8.1f} {r.processes:5d} "
            f"{cpu_ratio:10.2f}x {r.rss / base.rss:10.2f}x {r.note}"
        )
    print(
        f"CPU: user+system seconds of the whole process tree over the idle window (resolution 1/{TICK} s;"
        " ratios count zero as one tick). RSS: summed over the tree."
    )


if __name__ == "__main__":
    main()
