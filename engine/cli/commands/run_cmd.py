"""`mlci run [--tier T]`: run the tiers once (all, or one) and exit 0 when green, 1 when not."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("--tier", choices=("code", "data", "model"), help="run only this tier")
    parser.add_argument("--full", action="store_true", help="train in full mode (the model tier; default quick)")
    parser.add_argument("--json", action="store_true", help="print the events as JSON lines")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print the tiers' output and every test (human form only)"
    )


def run(args: argparse.Namespace) -> int:
    from mlci.engine.cli.printer import HumanPrinter, JsonPrinter, print_summary
    from mlci.engine.config.loader import ensure_tier, load_config
    from mlci.engine.errors import MlciError
    from mlci.engine.events import Tier
    from mlci.engine.loop.check import run_tiers
    from mlci.engine.run.interrupts import exit_on_signals

    config = load_config(Path(args.path))
    tiers = None
    if args.tier is not None:
        tiers = [ensure_tier(config, Tier(args.tier)).tier]
    if args.full and (Tier.MODEL not in config.tiers or (tiers is not None and Tier.MODEL not in tiers)):
        raise MlciError("--full trains the model tier: use it with --tier model, or without --tier")
    printer = JsonPrinter() if args.json else HumanPrinter(verbose=args.verbose)
    with exit_on_signals():
        result = run_tiers(config, emit=printer, tiers=tiers, full=args.full)
    if not args.json:
        print_summary(result, printer)
    return 0 if result.ok else 1
