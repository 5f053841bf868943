"""Where a pre-push check of the sample project spends its time, tier by tier, and what lies between.

Builds the demo sandbox once (real git, DVC, MLflow, a trained model), then runs `mlci check`
`--repeat` times, each on a fresh copy with a new empty commit (so no run is answered from the
history of an earlier one), and prints the median of when each line came: each tier's start
and verdict, and the gaps between a verdict and the next tier's start (what mlci does itself:
planning, DVC's status, creating the model tier's MLflow run). The copies keep the sandbox's
absolute paths (its DVC remote, its MLflow experiment's artifact folder): their runs' artifacts
land in the template's `mlruns/`, which is deleted with it; only the times are kept.

With `--mlci PATH` (repeatable) it times other `mlci` executables too, alternating with this
checkout's, in the same run: another checkout's `.venv/bin/mlci` is the peer to compare with.
Figures only; nothing is asserted.

    python bench/bench_check_phases.py [--repeat 3] [--mlci /other/checkout/.venv/bin/mlci]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "NO_COLOR": "1", "GIT_CONFIG_NOSYSTEM": "1"}
LINE = re.compile(r"(?P<mark>[▶✔✖]) (?P<tier>code|data|model)\b")
"""A tier's start (▶) or verdict (✔ passed, ✖ failed) in `mlci check`'s output."""


def timeline(mlci: str, template: Path, work: Path) -> dict[str, float]:
    """One check on a fresh copy of `template`: seconds from its start to each tier's start and verdict, and the end."""
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(template, project, symlinks=True)
    subprocess.run(["git", "-C", str(project), "commit", "-q", "--allow-empty", "-m", "bench"], check=True, env=ENV)
    seen: dict[str, float] = {}
    start = time.perf_counter()
    with subprocess.Popen(
        [mlci, "check"], cwd=project, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as check:
        assert check.stdout is not None
        for line in check.stdout:
            if found := LINE.search(line):
                what = "start" if found["mark"] == "▶" else "verdict"
                seen.setdefault(f"{found['tier']} {what}", time.perf_counter() - start)
    seen["end"] = time.perf_counter() - start
    if check.returncode != 0:
        raise SystemExit(f"{mlci} check failed (exit {check.returncode})")
    return seen


def show(name: str, runs: list[dict[str, float]]) -> None:
    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    print(f"{name} (median of {len(runs)})")
    for key in ("code start", "code verdict", "data start", "data verdict", "model start", "model verdict", "end"):
        print(f"  {key:<14} {median(key):6.2f} s")
    for verdict, start in (("code verdict", "data start"), ("data verdict", "model start")):
        gap = statistics.median(run[start] - run[verdict] for run in runs)
        print(f"  gap: {verdict} -> {start:<12} {gap:5.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mlci", action="append", default=[], help="another mlci executable to time alongside")
    args = parser.parse_args()
    ours = str(Path(sys.executable).with_name("mlci"))
    executables = [ours, *args.mlci]

    from mlci.engine.demo.sandbox import build_sandbox

    with tempfile.TemporaryDirectory(prefix="mlci-bench-phases-") as tmp:
        template = Path(tmp) / "sandbox"
        build_sandbox(str(template), progress=lambda _line: None)
        runs: dict[str, list[dict[str, float]]] = {mlci: [] for mlci in executables}
        for _ in range(args.repeat):
            for mlci in executables:  # alternating, so that the machine's drift falls on each alike
                runs[mlci].append(timeline(mlci, template, Path(tmp)))
        for mlci in executables:
            show("this checkout" if mlci == ours else mlci, runs[mlci])


if __name__ == "__main__":
    main()
