"""What evaluating the model gates costs on the sample model, and how stable the latency gate's p99 is.

Works on a demo sandbox (built in a temporary directory, about a minute, unless one is
given) and prints:

- `mlci gates` end to end, in a fresh interpreter (imports included), median of 3 runs;
- `evaluate_gates` in-process with everything already imported, median of 3 runs, and
  the same without the latency gate (what the 1100 timed calls cost);
- the latency gate's figures over 5 repeats of `measure_latency` on one loaded model
  (100 warm-up + 1000 timed single-row calls each): p50/p95/p99 per repeat, and the p99's
  spread (max - min, and relative to its median);
- what the confidence intervals cost inside `evaluate_gates` (issue 13's goal: under 0.5 s
  extra): the time spent in the bootstrap (drawing the resamples, every metric per resample,
  the percentiles), and apart from it the champion's evaluation on the test split that the
  paired regression gate needs (download, load, predict); median of 3 runs;
- the bootstrap alone on the test split, per step: the draw, all classification metrics of
  one model over 1000 resamples, and AUC by resampled weights next to AUC by sorting each
  resample with scikit-learn (the peer it replaces).

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    interval_cost(config)
    bootstrap_steps(model, frame, features)
    print(f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def interval_cost(config: object) -> None:
    """Time the interval code and the champion's evaluation inside real `evaluate_gates` runs."""
    from mlci.engine.gates import evaluate

    spent: dict[str, float] = {}
    depth = [0]

    def timed(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """fn, its time added to `spent[kind]` (a call inside another timed call is not counted twice)."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            depth[0] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - start

        return wrapper

    from mlci.engine.gates.intervals import Bootstrap

    names = ("Bootstrap", "group_samples", "disparity_samples", "interval_of", "mean_samples")
    saved = {name: getattr(evaluate, name) for name in (*names, "_champion_predictions")}
    for name in names:
        setattr(evaluate, name, timed("intervals", saved[name]))
    evaluate._champion_predictions = timed("champion", saved["_champion_predictions"])  # type: ignore[attr-defined]
    classification = Bootstrap.classification
    Bootstrap.classification = timed("intervals", classification)  # type: ignore[method-assign]
    rows: list[tuple[float, float, float]] = []
    try:
        for _ in range(RUNS):
            spent.clear()
            total = _seconds(lambda: evaluate.evaluate_gates(config))  # type: ignore[arg-type]
            rows.append((total, spent.get("intervals", 0.0), spent.get("champion", 0.0)))
    finally:
        for name, fn in saved.items():
            setattr(evaluate, name, fn)
        Bootstrap.classification = classification  # type: ignore[method-assign]
    total, intervals, champion = (statistics.median(r[i] for r in rows) for i in range(3))
    print(f"\nintervals inside evaluate_gates (all gates, median of {RUNS} runs):")
    print(f"  bootstrap (draw, metrics per resample, percentiles): {intervals:.3f} s of {total:.2f} s")
    print(f"  champion evaluated on the test split for pairing:    {champion:.3f} s")
    print(f"  together:                                           {intervals + champion:.3f} s (goal: under 0.5 s)")


def bootstrap_steps(model: Any, frame: Any, features: Any) -> None:
    """The bootstrap on the sample's test split, step by step, and AUC against sorting every resample."""
    import numpy as np
    from mlci.engine.gates.intervals import Bootstrap
    from sklearn.metrics import roc_auc_score

    y = frame[model.metadata_label].to_numpy()
    labels, scores, _why = model.labels_and_scores(features)
    draw = [_seconds(lambda: Bootstrap(len(y))) for _ in range(RUNS)]
    boot = Bootstrap(len(y))
    every = [_seconds(lambda: boot.classification(y, labels, scores)) for _ in range(RUNS)]
    without_auc = [_seconds(lambda: boot.classification(y, labels, scores, with_auc=False)) for _ in range(RUNS)]
    rows = [np.repeat(np.arange(len(y)), boot.counts[b].astype(int)) for b in range(100)]
    sorted_auc = _seconds(lambda: [roc_auc_score(y[r], scores[r]) for r in rows]) * boot.resamples / len(rows)
    print(f"\nbootstrap of {len(y)} rows x {boot.resamples} resamples (median of {RUNS}):")
    print(f"  draw the resamples:                         {statistics.median(draw):.3f} s")
    print(f"  all metrics of one model, AUC by weights:   {statistics.median(every):.3f} s")
    print(f"  the same without AUC:                       {statistics.median(without_auc):.3f} s")
    print(f"  AUC by sorting each resample (sklearn):     {sorted_auc:.3f} s (100 timed, scaled to {boot.resamples})")


if __name__ == "__main__":
    raise SystemExit(main())
