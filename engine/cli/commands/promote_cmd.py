"""`mlci promote [--yes] [PATH]`: move the `champion` alias to the version `challenger` names.

Asks for confirmation on a terminal; `--yes` skips the question (and is required when
stdin is not a terminal, so that a script never promotes by accident).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace) -> int:
    from mlci.engine.config.loader import load_config
    from mlci.engine.errors import MlciError
    from mlci.engine.gates.registry import alias_state, promote

    config = load_config(Path(args.path), with_gates=False)
    state = alias_state(config)
    if state.challenger is None:
        raise MlciError(
            f"nothing to promote: registered model {state.name!r} has no challenger "
            f"(a model tier run whose gates all pass sets it)"
        )
    if state.champion == state.challenger:
        print(f"{state.name} v{state.challenger} is already champion")
        return 0
    before = f"v{state.champion}" if state.champion else "no version"
    question = f"{state.name}: move champion from {before} to v{state.challenger} (the challenger)?"
    if not args.yes:
        if not sys.stdin.isatty():
            raise MlciError(f"{question} Not asked: stdin is not a terminal; pass --yes to promote")
        answer = input(f"{question} [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("not promoted")
            return 1
    print(promote(config).describe())
    return 0
