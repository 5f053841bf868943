"""`mlci gates [--json] [PATH]`: evaluate model_gates.yaml; exit 0 only when every gate passes.

Exit codes: 0 every gate passed, 1 a gate failed (or none could be evaluated), 2 a
malformed gate or config file (nothing evaluated). Progress goes to stderr, so that
`--json` output on stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "format_report", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("--json", action="store_true", help="print the gate report as JSON")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="the candidate MLflow model directory (default: inferred from dvc.yaml)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--log-to-run",
        metavar="RUN_ID",
        default=None,
        help="log each gate's figure and its confidence interval to this MLflow run (accuracy, accuracy_ci_low, ...)",
    )


def format_report(report: Any) -> list[str]:
    """The gate table as plain text lines, failing gates first."""
    ordered = sorted(report.results, key=lambda r: r.passed)
    width = max((len(r.check) for r in ordered), default=10)
    lines = [
        f"candidate: {report.model_uri or '(none)'}" + (f"    baseline: {report.baseline}" if report.baseline else "")
    ]
    for r in ordered:
        lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.gate:<11} {r.check:<{width}}  {r.reason}")
        if r.interval_low is not None and r.interval_high is not None and r.confidence is not None:
            lines.append(f"{'':<6}{'':<11} {'':<{width}}  {_interval_line(r)}")
        elif r.interval_note:  # why this figure has no interval ("no rows to resample: ... metrics.json")
            lines.append(f"{'':<6}{'':<11} {'':<{width}}  {r.interval_note}")
    failed = sum(not r.passed for r in report.results)
    borderline = sum(r.borderline for r in report.results)
    lines.append(
        f"{len(report.results) - failed} of {len(report.results)} gates pass"
        + ("" if report.passed else f", {failed} fail")
        + (f"; {borderline} borderline (the value passes, its interval crosses the threshold)" if borderline else "")
    )
    return lines


def _interval_line(r: Any) -> str:
    """The second line of a gate with an interval: "95% interval [0.9105, 0.9275]", and BORDERLINE when it is."""
    text = f"{r.confidence:.0%} interval [{r.interval_low:.4f}, {r.interval_high:.4f}]"
    if r.gate == "regression" and r.baseline is not None:
        low, high = r.interval_low - r.baseline, r.interval_high - r.baseline
        text += f" (paired: candidate - baseline [{low:+.4f}, {high:+.4f}])"
    return f"BORDERLINE: {text}" if r.borderline else text


def run(args: argparse.Namespace) -> int:
    from mlci.engine import short_lived
    from mlci.engine.config.loader import load_config
    from mlci.engine.gates.evaluate import evaluate_gates, gate_report_json
    from mlci.engine.run.gates_child import PROGRESS_PREFIX

    short_lived.declare()  # the process ends with the command (the model tier's gates child too)
    config = load_config(Path(args.path))

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"{PROGRESS_PREFIX}{line}", file=sys.stderr, flush=True)

    report = evaluate_gates(config, model_path=args.model, emit_progress=progress)
    if args.log_to_run:
        from mlci.engine.errors import MlciError
        from mlci.engine.gates.mlflow_figures import log_gate_figures

        try:
            logged = log_gate_figures(config, args.log_to_run, report)
            progress(f"logged {len(logged)} figures to MLflow run {args.log_to_run}")
        except MlciError as exc:  # the verdict stands; the log is what failed, and it says so
            print(f"mlci gates: {exc}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(gate_report_json(report), indent=2))
    else:
        print("\n".join(format_report(report)))
    return 0 if report.passed else 1
