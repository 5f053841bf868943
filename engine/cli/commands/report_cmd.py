"""`mlci report [--output FILE] [--json] [PATH]`: the pull-request report (Markdown and PNG plots).

The Markdown goes to `--output` (default `.mlci/report/report.md` in the project), the plots
to `report_assets/` beside it. `--json` prints the same figures for machines on stdout.
The exit status is 0 once the report is written, whatever the gates say: `mlci gates`
is the check that fails a build, the report is what gets posted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["DEFAULT_OUTPUT", "add_arguments", "run"]

DEFAULT_OUTPUT = ".mlci/report/report.md"
"""Inside mlci's own folder of the project, so that a report never lands among the user's files unasked."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        default=None,
        help=f"the Markdown file to write (default: {DEFAULT_OUTPUT} in the project)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument(
        "--gates",
        type=Path,
        default=None,
        metavar="FILE",
        help="reuse a gate report saved by `mlci gates --json` instead of evaluating the gates again",
    )
    parser.add_argument(
        "--run-id", default=None, help="the MLflow run whose training curves to plot (default: the candidate's run)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="the candidate MLflow model directory (default: inferred from dvc.yaml)",
    )


def run(args: argparse.Namespace) -> int:
    from mlci.engine import short_lived
    from mlci.engine.config.loader import load_config
    from mlci.engine.config.private_dir import PRIVATE_DIR, private_dir
    from mlci.engine.gates.pr_report import build_report, report_json, write_report
    from mlci.engine.run.gates_child import PROGRESS_PREFIX

    short_lived.declare()  # the process ends with the command
    config = load_config(Path(args.path))
    output = (args.output if args.output is not None else config.root / DEFAULT_OUTPUT).resolve()
    if output.is_relative_to((config.root / PRIVATE_DIR).resolve()):
        # mlci's own folder never shows in `git status`, even when the report is the first thing written there.
        private_dir(config.root)
    dvc = None
    if not config.mlflow.used and (config.root / "dvc.yaml").is_file():
        from mlci.engine.telemetry.dvc_metrics import read_dvc_metrics_event

        dvc = read_dvc_metrics_event(config.root, config.git.main_branch)

    def progress(line: str) -> None:
        print(f"{PROGRESS_PREFIX}{line}", file=sys.stderr, flush=True)

    report = build_report(
        config,
        output,
        model_path=args.model,
        run_id=args.run_id,
        gates_json=args.gates,
        emit_progress=progress,
        dvc=dvc,
    )
    write_report(report, output)
    if args.json:
        print(json.dumps(report_json(report, output), indent=2))
    else:
        print(f"report written: {output}")
        for title, path in report.plots:
            print(f"  {title}: {path}")
        for note in report.notes:
            print(f"  note: {note}")
    return 0
