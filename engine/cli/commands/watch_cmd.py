"""`mlci watch`: the loop without the dashboard, printing one line per event (or JSON lines)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("--json", action="store_true", help="print the events as JSON lines")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print the tiers' output and every test (human form only)"
    )
    parser.add_argument("--poll", action="store_true", help="poll the tree rather than use inotify")
    parser.add_argument(
        "--cold", action="store_true", help="run every test in a fresh interpreter (no warm runner; `runner: cold`)"
    )
    parser.add_argument(
        "--no-initial-run",
        action="store_true",
        help="do not run the code tier at start (it runs unless this tree's code tier is already green)",
    )


def run(args: argparse.Namespace) -> int:
    from mlci.engine.cli.printer import HumanPrinter, JsonPrinter
    from mlci.engine.config.loader import load_config
    from mlci.engine.errors import MlciError
    from mlci.engine.git.state import find_git_dir
    from mlci.engine.loop.initial_run import TreeProofs
    from mlci.engine.loop.session import Session
    from mlci.engine.run.interrupts import exit_on_signals, shielded

    config = load_config(Path(args.path))
    if args.cold:
        config = dataclasses.replace(config, runner="cold")
    if find_git_dir(config.root) is None:
        raise MlciError(f"{config.root} is not a git repository: mlci watches a git working tree")
    printer = JsonPrinter() if args.json else HumanPrinter(verbose=args.verbose)
    proofs = TreeProofs(config)
    session = Session(config, emit=proofs.recording(printer), force_polling=args.poll, warm_runner=True)
    asked_to_stop = False
    with exit_on_signals():
        try:
            session.start()
            if not args.no_initial_run:
                proofs.initial_run(session.request, printer)
            while session.alive and not printer.broken:
                time.sleep(0.2)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM/SIGHUP (Stopped)
            asked_to_stop = True
        finally:
            with shielded():
                session.stop()
    # Left alone, the loop only ends when it could not start (it printed why).
    return 0 if asked_to_stop or printer.broken else 1
