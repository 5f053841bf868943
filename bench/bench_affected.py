"""Benchmark: the code tier's first verdict (the affected tests) against its full verdict, on the sample project.

    python bench/bench_affected.py [--edits 3] [--runner warm,cold,plain]

A copy of `sample_project/` (real torch, sklearn and pandas imports; 36 unit tests) in a git
repository of its own. The code tier runs once to give pytest-testmon its data, then, for
each runner, the same edits are made one at a time and the tier is run after each, as
`mlci watch` would:

* code:  one function of `src/credit/features.py` (`engineer`) is changed (behaviour kept);
* data:  `params.yaml` is changed (a comment): only the tests that read it are affected;
* red:   `engineer` is broken: the affected tests fail, the rest is not run.

The `plain` runner is cold with affected tests first turned off (`-p no:pytest-testmon`):
the full verdict without testmon's per-test coverage, to see what that costs.

Printed: the number of affected tests, and the medians of the time from the tier's start to
the first verdict (`AffectedVerdict`) and to the tier's verdict (`TierFinished`). Figures
only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlci.engine.config.loader import load_config
from mlci.engine.events import AffectedVerdict, Event, Tier, TierFinished
from mlci.engine.run.tier_run import TierRun

SAMPLE = Path(__file__).resolve().parent.parent / "sample_project"
LINE = 'income = np.maximum(_col(df, "income"), 1.0)'


@dataclass
class Figures:
    affected: list[int] = field(default_factory=list)
    first_s: list[float] = field(default_factory=list)
    full_s: list[float] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)


def make_copy(work: Path) -> Path:
    root = work / "sample"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".mlci", ".pytest_cache", "__pycache__", ".dvc"))
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "bench@example.com"],
        ["config", "user.name", "bench"],
        ["add", "-A"],
        ["commit", "-q", "-m", "sample"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True)
    return root


def run_tier(root: Path, run_id: int, *, warm: bool) -> tuple[AffectedVerdict | None, TierFinished]:
    events: list[Event] = []
    finished = TierRun(load_config(root), Tier.CODE, run_id=run_id, plan_id=run_id, emit=events.append, warm=warm).run()
    first = next((e for e in events if isinstance(e, AffectedVerdict)), None)
    return first, finished


def edit_code(root: Path, i: int) -> None:
    path = root / "src/credit/features.py"
    text = path.read_text()
    current = next(line for line in text.splitlines() if LINE in line).strip()
    path.write_text(text.replace(current, f"{LINE} + {i % 2}.0 * 0"))


def edit_data(root: Path, i: int) -> None:
    path = root / "params.yaml"
    path.write_text(path.read_text() + f"# bench edit {i}\n")


def break_code(root: Path, i: int) -> None:
    path = root / "src/credit/features.py"
    text = path.read_text()
    current = next(line for line in text.splitlines() if LINE in line).strip()
    path.write_text(text.replace(current, f"{LINE} * {2 + i % 2}.0"))


def restore(root: Path) -> None:
    shutil.copyfile(SAMPLE / "src/credit/features.py", root / "src/credit/features.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=3)
    parser.add_argument("--runner", default="warm,cold,plain", help="comma-separated: warm, cold, plain")
    args = parser.parse_args()
    scenarios: dict[str, Callable[[Path, int], None]] = {"code": edit_code, "data": edit_data, "red": break_code}
    results: dict[tuple[str, str], Figures] = {}
    with tempfile.TemporaryDirectory(prefix="mlci-bench-affected-") as tmp:
        root = make_copy(Path(tmp))
        run_id = 0
        for runner in args.runner.split(","):
            warm = runner == "warm"
            config = root / "mlci.yaml"
            text = (SAMPLE / "mlci.yaml").read_text()
            if runner == "plain":
                text = text.replace("  code:\n", "  code:\n    pytest_args: ['-p', 'no:pytest-testmon']\n")
            config.write_text(text)
            run_id += 1
            first, finished = run_tier(root, run_id, warm=warm)  # testmon's data (first run), the server warm
            print(f"{runner}: first run {finished.verdict.value} in {finished.duration_s:.2f} s", file=sys.stderr)
            for name, edit in scenarios.items():
                figures = results.setdefault((name, runner), Figures())
                for i in range(args.edits):
                    edit(root, run_id)
                    run_id += 1
                    first, finished = run_tier(root, run_id, warm=warm)
                    if name == "red":
                        restore(root)
                        run_id += 1
                        run_tier(root, run_id, warm=warm)  # green again, so the next edit starts alike
                    if first is not None:
                        figures.affected.append(len(first.nodeids))
                        figures.first_s.append(first.duration_s)
                    figures.full_s.append(finished.duration_s)
                    figures.verdicts.append(finished.verdict.value)
                    print(
                        f"{runner} {name} #{i + 1}: {len(first.nodeids) if first else '-'} affected,"
                        f" first {first.duration_s if first else float('nan'):.2f} s,"
                        f" full {finished.duration_s:.2f} s ({finished.verdict.value})"
                        + (f" [{first.why}]" if first and first.why else ""),
                        file=sys.stderr,
                    )
            if warm:
                from mlci.engine.run.warm.client import stop_servers

                stop_servers(root)
    print()
    print(f"{'edit':<6} {'runner':<6} {'affected':>8} {'first verdict':>14} {'full verdict':>13}  verdicts")
    for (name, runner), f in results.items():
        affected = f"{statistics.median(f.affected):.0f}" if f.affected else "-"
        first_s = f"{statistics.median(f.first_s):.2f} s" if f.first_s else "-"
        print(
            f"{name:<6} {runner:<6} {affected:>8} {first_s:>14} {statistics.median(f.full_s):>11.2f} s"
            f"  {', '.join(sorted(set(f.verdicts)))}"
        )
    print(f"(medians of {args.edits} edits; times from the tier's start; sample project, 36 unit tests)")


if __name__ == "__main__":
    main()
