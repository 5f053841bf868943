"""How fast a pre-push check answers when the same content was already proven green.

Builds a small real project (git, DVC-tracked data, a code tier and a data tier of real
pytest tests), then times, with peers in the same run:

- the first `mlci check` (it runs the tiers, and remembers the green content);
- the next `mlci check` of the same commit (answered from `.mlci/history.sqlite`), as a
  whole `mlci` process and in-process (`run_check`), `--repeat` times each;
- the content key alone (`proof.content_key`: git tree, DVC records, params, config,
  installed packages), which is most of the in-process figure;
- `git rev-parse HEAD^{tree}` as a floor: one git process.

Figures only (median and slowest); nothing is asserted.

    python bench/bench_check_memo.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "NO_COLOR": "1", "GIT_CONFIG_NOSYSTEM": "1"}


def _run(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, env=ENV, capture_output=True, text=True, check=False)


def make_project(root: Path) -> Path:
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "unit" / "test_code.py").write_text("def test_code():\n    assert sum([1, 2]) == 3\n")
    (root / "tests" / "data").mkdir(parents=True)
    (root / "tests" / "data" / "test_rows.py").write_text(
        "from pathlib import Path\n\n\n"
        "def test_rows():\n    assert len(Path('data/rows.csv').read_text().splitlines()) == 3\n"
    )
    (root / "mlci.yaml").write_text("tiers:\n  code:\n    tests: [tests/unit]\n  data:\n    tests: [tests/data]\n")
    (root / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    (root / "data").mkdir()
    (root / "data" / "rows.csv").write_text("id\n1\n2\n")
    for argv in (
        ("git", "init", "-q", "-b", "main"),
        ("git", "config", "user.email", "bench@example.com"),
        ("git", "config", "user.name", "bench"),
        (sys.executable, "-m", "dvc", "init", "-q"),
        (sys.executable, "-m", "dvc", "add", "-q", "data/rows.csv"),
        ("git", "add", "-A"),
        ("git", "commit", "-q", "-m", "start"),
    ):
        done = _run(root, *argv)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}")
    return root


def timed(what: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        what()
        times.append(time.perf_counter() - start)
    return times


def show(name: str, times: list[float]) -> None:
    print(f"{name:<48} median {statistics.median(times):7.3f} s   slowest {max(times):7.3f} s   (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from mlci.engine.config.loader import load_config
    from mlci.engine.loop.check import run_check
    from mlci.engine.loop.proof import content_key

    with tempfile.TemporaryDirectory(prefix="mlci-bench-memo-") as tmp:
        root = make_project(Path(tmp) / "project")
        mlci = (sys.executable, "-m", "mlci.engine", "check")
        first = timed(lambda: _run(root, *mlci), 1)
        answer = _run(root, *mlci).stdout
        if "checked green at" not in answer:
            raise SystemExit(f"the second check did not answer from history:\n{answer}")
        config = load_config(root)
        sha = _run(root, "git", "rev-parse", "HEAD").stdout.strip()
        print(f"project: {root} (code and data tiers, DVC-tracked data); commit {sha[:8]}")
        show("first `mlci check` (runs the tiers)", first)
        show("`mlci check` again, whole process", timed(lambda: _run(root, *mlci), args.repeat))
        show("run_check again, in-process", timed(lambda: run_check(config, emit=lambda e: None), args.repeat))
        show("content_key alone", timed(lambda: content_key(config, sha, full=False), args.repeat))
        show(
            "peer: `git rev-parse HEAD^{tree}`",
            timed(lambda: _run(root, "git", "rev-parse", "HEAD^{tree}"), args.repeat),
        )
        show("peer: `python -c pass`", timed(lambda: _run(root, sys.executable, "-c", "pass"), args.repeat))


if __name__ == "__main__":
    main()
