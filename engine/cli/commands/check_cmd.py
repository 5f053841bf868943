"""`mlci check`: the pre-push check of a commit (HEAD by default). Every tier in order, the quick model tier, the gates.

The commit is checked in place when the working tree is exactly it, else in a temporary
worktree; a content already proven green answers from the history. Non-zero when red.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument(
        "--commit",
        default="HEAD",
        metavar="REV",
        help="the commit to check (default: HEAD; uncommitted changes are not part of it)",
    )
    parser.add_argument("--full", action="store_true", help="train in full mode rather than quick")
    parser.add_argument("--json", action="store_true", help="print the events as JSON lines")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print the tiers' output and every test (human form only)"
    )


def run(args: argparse.Namespace) -> int:
    from mlci.engine.cli.printer import HumanPrinter, JsonPrinter, print_summary
    from mlci.engine.config.loader import load_config
    from mlci.engine.loop.check import run_check
    from mlci.engine.run.interrupts import exit_on_signals

    config = load_config(Path(args.path))
    printer = JsonPrinter() if args.json else HumanPrinter(verbose=args.verbose)
    with exit_on_signals():
        result = run_check(config, emit=printer, full=args.full, rev=args.commit)
    if not args.json:
        print_summary(result, printer)
    return 0 if result.ok else 1
