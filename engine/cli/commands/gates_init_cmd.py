"""`mlci gates init [--force] [--tolerance T] [PATH]`: write a first model_gates.yaml from the project as it is.

A performance gate per metric of the project's DVC metrics files (today's value minus the
tolerance, or plus it where lower is better), a regression gate, and a size gate when a model
file is found. The file is checked with the gate file's own parser before it is written, and
an existing gate file is kept unless `--force`. Exit 0 written, 1 refused or nothing to gate,
2 a malformed config.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

__all__ = ["add_arguments", "run"]


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mlci.engine.config.gate_file_writer import DEFAULT_TOLERANCE

    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing gate file")
    parser.add_argument(
        "--tolerance",
        type=_tolerance,
        default=DEFAULT_TOLERANCE,
        help=f"how much worse than today each metric may get (default {DEFAULT_TOLERANCE:g}; "
        "absolute within [-1, 1], relative beyond)",
    )


def run(args: argparse.Namespace) -> int:
    from mlci.engine.config.gate_file import load_gate_spec
    from mlci.engine.config.gate_file_writer import gateable, render_gate_file
    from mlci.engine.config.loader import GATE_FILE, load_config
    from mlci.engine.config.new_file import write_new_file
    from mlci.engine.errors import MlciError
    from mlci.engine.gates.gate_inference import current_metrics, find_model_file

    config = load_config(Path(args.path), with_gates=False)
    target = config.gates_path or config.root / GATE_FILE
    shown = target.relative_to(config.root).as_posix()
    if target.exists() and not args.force:
        raise MlciError(f"{shown} already exists: pass --force to overwrite it")
    metrics, errors = current_metrics(config.root)
    for error in errors:
        print(f"mlci gates init: could not read {error}")
    kept = gateable(metrics)
    model = find_model_file(config.root)
    if not kept and model is None:
        raise MlciError("nothing to gate: no metric in the project's DVC metrics files and no model file found")
    text = render_gate_file(metrics, model, tolerance=args.tolerance)
    with tempfile.TemporaryDirectory(prefix="mlci-gates-init-") as tmp:
        check = Path(tmp) / GATE_FILE
        check.write_text(text, encoding="utf-8")
        load_gate_spec(check)  # what we write must load; a failure here is mlci's bug, said as a config error
    write_new_file(target, text, force=args.force, shown_as=shown)
    parts = [f"{len(kept)} performance gate(s) ({', '.join(m.name for m in kept)})"] if kept else []
    parts += ["a regression gate"] if kept else []
    parts += [f"a size gate ({model.path})"] if model is not None else []
    print(f"wrote {shown}: {', '.join(parts)}; tolerance {args.tolerance:g}")
    print("next: `mlci gates` evaluates it; tighten the bounds once you know how much your metrics vary")
    return 0
