"""Where the test suite's CPU goes: CPU-seconds by kind of process, while the suite runs.

    python bench/suite_cpu.py [COMMAND...] 2>LOG  (default: the suite as `make test` runs it; its output to LOG)

With SUITE_CPU_DUMP=FILE it also writes every process seen to FILE, one per line, tab-separated:
CPU-seconds, kind, the test it was started in, command line (for sorting and grouping by hand).

On a 2-core machine the suite keeps both cores busy from start to end, so its wall time is
its CPU time over two: only less CPU makes it faster, and this says which processes to look
at. Every 0.5 s it reads `/proc/PID/stat` of every process (user + system time, command
line), and once the command ends prints the CPU-seconds of each kind (the model tier's gates
child, tier pytest runs, warm servers and their forks, training, dashboards, DVC, ...), then
the tests whose processes took the most: a process belongs to the test named by the
`PYTEST_CURRENT_TEST` it was started with (so a session's tier runs and gates child count
as the test's; the xdist worker's own, in-process work does not show there).

What it cannot see: a process that lives less than the interval (a git call) is missed, and
one's last half second may be. A forked child shares its parent's command line, so a warm
server's runs count as the server's. Figures only: run it on a quiet machine, twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTERVAL_S = 0.5
TOP_TESTS = 40
TICKS = os.sysconf("SC_CLK_TCK")

COLD_PYTEST = r"-m (?:pytest|mlci\.engine\.run\.pytest_main) -p mlci\.engine\.run\.pytest_plugin"
"""A tier's cold pytest run (`pytest_main` since it ends without the interpreter's teardown)."""

KINDS: tuple[tuple[str, str], ...] = (
    (r"warm\.server", "warm servers and their runs"),
    (r"-m mlci\.engine gates", "gates (mlci gates, the model tier's child)"),
    (r"-m mlci\.engine report", "mlci report"),
    (r"exec\(eval\(sys\.stdin", "pytest-xdist workers (in-process tests)"),
    (COLD_PYTEST + " .*tests/unit", "sample: code tier (cold)"),
    (COLD_PYTEST + " .*tests/model", "sample: model tier tests"),
    (COLD_PYTEST + " .*tests/data", "sample: data tier (cold)"),
    (COLD_PYTEST, "test projects' tier runs"),
    (r"credit\.train", "sample: training"),
    (r"credit\.(evaluate|prepare)", "sample: evaluate, prepare"),
    (r"mlci-tui|mlci\.tui", "dashboards"),
    (r"-m dvc|/dvc ", "dvc"),
    (r"mlflow server|uvicorn|huey|_job_runner", "mlflow server"),
    (r"mlci\.engine|bin/mlci ", "other mlci commands"),
    (r"mypy|ruff|lint-imports", "lint"),
    (r"java|node", "CI linters (Java, Node)"),
    (r"python", "other Python"),
)


def kind_of(command: str) -> str:
    return next((name for pattern, name in KINDS if re.search(pattern, command)), "other")


def started_by(pid: str) -> str:
    """The test a process was started in (`PYTEST_CURRENT_TEST` without its phase), or ''."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return ""
    for entry in environ.split(b"\0"):
        if entry.startswith(b"PYTEST_CURRENT_TEST="):
            return entry.split(b"=", 1)[1].decode(errors="replace").rsplit(" (", 1)[0]
    return ""


def read_once(seen: dict[str, tuple[str, float]], tests: dict[str, str] | None = None) -> None:
    """Record every process: pid:start time -> (command line, CPU-seconds so far), and in
    `tests` the test each was started in."""
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            cpu = (int(fields[11]) + int(fields[12])) / TICKS
            key = f"{pid}:{fields[19]}"
            if key not in seen:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                seen[key] = (raw.replace(b"\0", b" ").decode(errors="replace"), cpu)
                if tests is not None:
                    tests[key] = started_by(pid)
            else:
                seen[key] = (seen[key][0], cpu)
        except (OSError, ValueError, IndexError):
            continue  # gone between the listing and the read


def sample(
    seen: dict[str, tuple[str, float]],
    tests: dict[str, str],
    timeline: list[tuple[float, float]],
    stop: threading.Event,
) -> None:
    """`read_once` every interval until `stop`, and once more then; `timeline` gets (time, CPU-s seen so far)."""
    while not stop.wait(INTERVAL_S):
        read_once(seen, tests)
        timeline.append((time.monotonic(), sum(cpu for _, cpu in seen.values())))
    read_once(seen, tests)


def busy_cores(timeline: list[tuple[float, float]], started: float) -> str:
    """Cores busy in each minute of the run: where the suite leaves a core idle (its tail, a serial stretch)."""
    marks: list[str] = []
    minute, last = 1, (started, timeline[0][1] if timeline else 0.0)
    for at, cpu in timeline:
        if at - started >= minute * 60:
            marks.append(f"{(cpu - last[1]) / (at - last[0]):.1f}")
            minute, last = minute + 1, (at, cpu)
    return " ".join(marks)


def main() -> int:
    command = sys.argv[1:] or ["make", "--no-print-directory", "test"]
    before: dict[str, tuple[str, float]] = {}
    read_once(before)  # what ran before the command: its CPU so far is not the command's
    seen: dict[str, tuple[str, float]] = {}
    tests: dict[str, str] = {}
    timeline: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(seen, tests, timeline, stop), daemon=True)
    sampler.start()
    started = time.monotonic()
    code = subprocess.run(command, cwd=ROOT, stdout=sys.stderr, check=False).returncode  # its output: stderr
    wall = time.monotonic() - started
    stop.set()
    sampler.join()
    by_kind: dict[str, float] = {}
    by_test: dict[str, float] = {}
    unsorted: dict[str, float] = {}  # "other Python" by command line: what KINDS could name next
    count: Counter[str] = Counter()
    rows: list[str] = []
    for key, (line, cpu) in seen.items():
        kind = kind_of(line)
        used = cpu - before.get(key, (line, 0.0))[1]
        flat = " ".join(line.split())  # a `python -c` script's lines and tabs would break the row
        rows.append(f"{used:.2f}\t{kind}\t{tests.get(key, '')}\t{flat[:300]}")
        by_kind[kind] = by_kind.get(kind, 0.0) + used
        count[kind] += 1
        if kind == "other Python":
            unsorted[line[:150]] = unsorted.get(line[:150], 0.0) + used
        if tests.get(key):
            by_test[tests[key]] = by_test.get(tests[key], 0.0) + used
    if dump := os.environ.get("SUITE_CPU_DUMP"):
        Path(dump).write_text("\n".join(rows) + "\n")
    total = sum(by_kind.values())
    print(f"{' '.join(command)}: exit {code}, {wall:.0f} s wall, {total:.0f} CPU-s seen ({total / wall:.2f} cores)")
    print(f"cores busy, minute by minute: {busy_cores(timeline, started)}")
    for kind, cpu in sorted(by_kind.items(), key=lambda item: -item[1]):
        print(f"{cpu:8.1f} CPU-s {cpu / total:6.1%} {count[kind]:6d} processes  {kind}")
    print("the largest of other Python:")
    for line, cpu in sorted(unsorted.items(), key=lambda item: -item[1])[:8]:
        print(f"{cpu:8.1f} CPU-s  {line}")
    print(f"processes started in a test: {sum(by_test.values()):.0f} CPU-s; the {TOP_TESTS} largest:")
    for test, cpu in sorted(by_test.items(), key=lambda item: -item[1])[:TOP_TESTS]:
        print(f"{cpu:8.1f} CPU-s  {test}")
    return code


if __name__ == "__main__":
    sys.exit(main())
