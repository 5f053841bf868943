"""How fast the commands answer: `mlci --help`, and `mlci-tui`'s first frame, against peer tools.

Prints the median wall time of `--help` over repeated runs for mlci and for the peer tools
installed in the same environment (pytest-watch, pytest-watcher, dvc, mlflow), with ratios,
then the time from starting `mlci-tui` in tmux until its first frame is on screen.
Figures only: nothing here is asserted.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
REPEATS = 15


def median_wall(argv: list[str], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def first_frame_s(project: Path, repeats: int = 5) -> float:
    times = []
    for i in range(repeats):
        socket = f"mlci-bench-{i}"
        start = time.perf_counter()
        subprocess.run(
            ["tmux", "-L", socket, "new-session", "-d", "-x", "120", "-y", "36", f"{BIN / 'mlci-tui'} {project}"],
            check=True,
        )
        try:
            while (
                "Tiers"
                not in subprocess.run(
                    ["tmux", "-L", socket, "capture-pane", "-p"], capture_output=True, text=True
                ).stdout
            ):
                time.sleep(0.01)
            times.append(time.perf_counter() - start)
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)
    return statistics.median(times)


def main() -> None:
    tools = [
        ("mlci --help", [str(BIN / "mlci"), "--help"]),
        ("ptw --help (pytest-watch)", [str(BIN / "ptw"), "--help"]),
        ("pytest-watcher --help", [str(BIN / "pytest-watcher"), "--help"]),
        ("dvc --help", [str(BIN / "dvc"), "--help"]),
        ("mlflow --help", [str(BIN / "mlflow"), "--help"]),
    ]
    results = [(name, median_wall(argv)) for name, argv in tools if Path(argv[0]).exists()]
    base = results[0][1]
    print(f"median wall time of --help over {REPEATS} runs")
    print(f"{'command':32} {'median':>9} {'vs mlci':>8}")
    for name, seconds in results:
        print(f"{name:32} {seconds * 1000:7.0f}ms {seconds / base:7.1f}x")
    if shutil.which("tmux"):
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / "project"
            (project / "tests" / "unit").mkdir(parents=True)
            (project / "dvc.yaml").write_text("stages: {}\n")
            print(f"\nmlci-tui first frame (tmux, median of 5): {first_frame_s(project) * 1000:.0f}ms")


if __name__ == "__main__":
    main()
