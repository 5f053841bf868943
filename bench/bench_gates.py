"""What evaluating the model gates costs on the sample model, and how stable the latency gate's p99 is.

Works on a demo sandbox (built in a temporary directory, about a minute, unless one is
given) and prints:

- `mlci gates` end to end, in a fresh interpreter (imports included), median of 3 runs;
- `evaluate_gates` in-process with everything already imported, median of 3 runs, and
  the same without the latency gate (what the 1100 timed calls cost);
- the latency gate's figures over 5 repeats of `measure_latency` on one loaded model
  (100 warm-up + 1000 timed single-row calls each): p50/p95/p99 per repeat, and the p99's
  spread (max - min, and relative to its median).

Figures only: nothing is asserted. The machine's other load shows in the spread.

    python bench/bench_gates.py [SANDBOX]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 5
RUNS = 3


def _seconds(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sandbox", nargs="?", type=Path, help="an existing demo sandbox (default: build one)")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory(prefix="mlci-bench-gates-") as tmp:
        root = args.sandbox
        if root is None:
            from mlci.engine.demo.sandbox import build_sandbox

            print("building a demo sandbox (one quick training run) ...", flush=True)
            root = build_sandbox(Path(tmp) / "sandbox", progress=lambda _line: None)
            os.environ.pop("MLFLOW_TRACKING_URI", None)  # the builder's mlflow.set_tracking_uri sets it
        run(root.resolve())
    return 0


def run(root: Path) -> None:
    from mlci.engine.config.loader import load_config
    from mlci.engine.gates.evaluate import evaluate_gates
    from mlci.engine.gates.model_eval import LATENCY_CALLS, LATENCY_WARMUP, load_model, load_table, measure_latency

    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    cli = [
        _seconds(
            lambda: subprocess.run(
                [sys.executable, "-m", "mlci.engine", "gates", "--quiet", str(root)],
                env=env,
                capture_output=True,
                check=False,
            )
        )
        for _ in range(RUNS)
    ]
    config = load_config(root)
    evaluate_gates(config)  # imports mlflow, torch, pandas, sklearn once
    warm = [_seconds(lambda: evaluate_gates(config)) for _ in range(RUNS)]
    assert config.gates is not None
    no_latency = dataclasses.replace(config, gates=dataclasses.replace(config.gates, latency=None))
    without = [_seconds(lambda: evaluate_gates(no_latency)) for _ in range(RUNS)]
    report = evaluate_gates(config)

    print(f"project: {root}")
    print(f"gates: {len(report.results)} checks, all pass: {report.passed}")
    print(
        f"mlci gates (fresh interpreter, imports included): median {statistics.median(cli):.2f} s "
        f"over {RUNS} runs ({', '.join(f'{s:.2f}' for s in cli)})"
    )
    print(f"evaluate_gates in-process, all gates:             median {statistics.median(warm):.2f} s")
    print(f"evaluate_gates in-process, without latency:       median {statistics.median(without):.2f} s")

    model = load_model(root / "models" / "model")
    frame = load_table(root / "data" / "prepared" / "test.csv")
    features = model.features(frame, model.metadata_label)
    print(f"\nlatency gate: {LATENCY_WARMUP} warm-up + {LATENCY_CALLS} timed single-row calls, {REPEATS} repeats")
    print("repeat   p50 ms   p95 ms   p99 ms")
    p99s = []
    for i in range(REPEATS):
        figures = measure_latency(model, features)
        p99s.append(figures.p99_ms)
        print(f"{i + 1:>6} {figures.p50_ms:8.3f} {figures.p95_ms:8.3f} {figures.p99_ms:8.3f}")
    spread = max(p99s) - min(p99s)
    print(
        f"p99 spread: {spread:.3f} ms (min {min(p99s):.3f}, median {statistics.median(p99s):.3f}, "
        f"max {max(p99s):.3f}); {spread / statistics.median(p99s):.0%} of the median"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    raise SystemExit(main())
