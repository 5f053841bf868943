"""`mlci hooks install`: the git pre-push hook; `mlci hooks pre-push`: what the hook runs.

`pre-push` reads git's lines on standard input (local ref, local SHA, remote ref, remote
SHA), checks each pushed tip as committed (a deletion needs no check; a commit that
`mlci push` has just checked is not checked twice), and exits 1 naming every red one.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="hooks_command", metavar="{install,pre-push}", required=True)
    install = sub.add_parser("install", help="write the git pre-push hook that checks every pushed commit")
    install.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    install.add_argument("--force", action="store_true", help="replace a pre-push hook that is not mlci's")
    pre_push = sub.add_parser(
        "pre-push", help="what the installed hook runs: check each commit git's standard input says is pushed"
    )
    pre_push.add_argument("remote", nargs="?", default="", help="the remote's name (git passes it)")
    pre_push.add_argument("url", nargs="?", default="", help="the remote's URL (git passes it)")


def run(args: argparse.Namespace) -> int:
    if args.hooks_command == "pre-push":
        return _pre_push()
    from mlci.engine.git.hooks import install_pre_push_hook

    result = install_pre_push_hook(Path(args.path).resolve(), force=args.force)
    if result.replaced == "mlci":
        print(f"updated the mlci pre-push hook: {result.path}")
    elif result.replaced == "foreign":
        print(f"replaced the pre-push hook (the old one is kept as {result.backup}): {result.path}")
    else:
        print(f"installed the pre-push hook: {result.path}")
    print("every `git push` now checks each pushed commit first; `git push --no-verify` skips it once")
    return 0


def _pre_push() -> int:
    from mlci.engine.cli.printer import HumanPrinter
    from mlci.engine.config.loader import load_config
    from mlci.engine.git.hooks import parse_pushed_refs
    from mlci.engine.git.push import CHECKED_HEAD_ENV
    from mlci.engine.git.worktree import resolve_commit
    from mlci.engine.loop.session import Session
    from mlci.engine.run.interrupts import exit_on_signals, shielded

    # git may point these at the user's repository for its hooks; a check in a worktree must not inherit them.
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        os.environ.pop(name, None)
    pushed = parse_pushed_refs(sys.stdin.read())
    checked_by_mlci_push = os.environ.get(CHECKED_HEAD_ENV, "")
    root = Path.cwd()  # git runs the hook at the top of the working tree
    tips: dict[str, list[str]] = {}
    for ref in pushed:
        if ref.deletion:
            print(f"mlci pre-push hook: {ref.remote_ref} is deleted: nothing to check")
            continue
        sha = resolve_commit(root, ref.local_sha)
        if sha == checked_by_mlci_push:
            print(f"mlci pre-push hook: {sha[:8]} was just checked by mlci push")
            continue
        tips.setdefault(sha, []).append(ref.local_ref)
    if not tips:
        return 0
    config = load_config(root)
    printer = HumanPrinter()
    session = Session(config, emit=printer, watch=False)
    red: list[str] = []
    session.start()
    try:
        with exit_on_signals():
            for sha, names in tips.items():
                result = session.check(sha)
                if not result.ok:
                    red.append(f"{', '.join(names)} ({sha[:8]}) is red: {'; '.join(result.failures)}")
    finally:
        with shielded():
            session.stop()
    for line in red:
        print(f"mlci pre-push hook: {line}", file=sys.stderr)
    if red:
        print("mlci pre-push hook: nothing was pushed; `git push --no-verify` skips the check", file=sys.stderr)
        return 1
    return 0
