"""Benchmark: what a project without MLflow costs the dashboard: its DVC metrics, and following DVCLive.

    python bench/bench_dvc_metrics.py [--rows 1000] [--repeat 5]

On the unprepared DVC project of the tests (tests/unprepared_projects.py, built in a temporary
directory), printed as medians:

* `read_dvc_metrics_event` in a fresh interpreter (DVC's import included: what the dashboard's
  first DvcMetrics costs, off the UI thread), and again in a warm one;
* one DVCLive poll that finds nothing changed, and one that reads a TSV of `--rows` rows.

Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlci.engine.telemetry.dvc_metrics import read_dvc_metrics_event
from mlci.engine.telemetry.dvclive_follower import DvcLiveFollower

from tests.unprepared_projects import build_unprepared_project

_COLD = (
    "import sys, time\nt = time.perf_counter()\n"
    "from mlci.engine.telemetry.dvc_metrics import read_dvc_metrics_event\n"
    "from pathlib import Path\nread_dvc_metrics_event(Path(sys.argv[1]))\nprint(time.perf_counter() - t)\n"
)


def _median(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlci-bench-dvc-") as tmp:
        root = build_unprepared_project(Path(tmp) / "project")
        cold = [
            float(subprocess.run([sys.executable, "-c", _COLD, str(root)], capture_output=True, text=True).stdout)
            for _ in range(args.repeat)
        ]
        warm = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            read_dvc_metrics_event(root)
            warm.append(time.perf_counter() - start)
        follower = DvcLiveFollower([root / "dvclive"], "bench", lambda _event: None)
        idle, full = [], []
        tsv = root / "dvclive" / "plots" / "metrics" / "loss.tsv"
        for index in range(args.repeat):
            start = time.perf_counter()
            follower.poll_once()
            idle.append(time.perf_counter() - start)
            rows = "".join(f"{step}\t{(index + 1) / (step + 1)}\n" for step in range(args.rows))
            tsv.write_text("step\tloss\n" + rows)
            start = time.perf_counter()
            follower.poll_once()
            full.append(time.perf_counter() - start)
    print(f"read_dvc_metrics_event, fresh interpreter (DVC import included): {_median(cold)}")
    print(f"read_dvc_metrics_event, warm:                                    {_median(warm)}")
    print(f"DVCLive poll, nothing changed:                                   {_median(idle)}")
    print(f"DVCLive poll, one TSV of {args.rows} rows rewritten:                     {_median(full)}")


if __name__ == "__main__":
    main()
