"""`mlci hooks install`: the git pre-push hook that runs `mlci check` and blocks a red push."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="hooks_command", metavar="{install}", required=True)
    install = sub.add_parser("install", help="write the git pre-push hook that runs mlci check")
    install.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    install.add_argument("--force", action="store_true", help="replace a pre-push hook that is not mlci's")


def run(args: argparse.Namespace) -> int:
    from mlci.engine.git.hooks import install_pre_push_hook

    result = install_pre_push_hook(Path(args.path).resolve(), force=args.force)
    if result.replaced == "mlci":
        print(f"updated the mlci pre-push hook: {result.path}")
    elif result.replaced == "foreign":
        print(f"replaced the pre-push hook (the old one is kept as {result.backup}): {result.path}")
    else:
        print(f"installed the pre-push hook: {result.path}")
    print("every `git push` now runs `mlci check` first; `git push --no-verify` skips it once")
    return 0
