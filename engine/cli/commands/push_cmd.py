"""`mlci push`: check the branch's commit, then push that very commit to its remote (never forced).

The same engine operation as the dashboard's `p`: a session (here one that does not watch)
checks the commit (in place when the working tree is it, else in a temporary worktree) and
pushes it. Prints what will be pushed (branch, remote, commits) before anything runs, the
check's tiers as they finish, and git's progress. Exit 0 when the branch arrived (or there
was nothing to push), 1 with one line when it did not, 2 for a malformed config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlci.engine.events import Event, PushPlan

__all__ = ["add_arguments", "print_plan", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("--remote", help="the remote to push to (default: git.remote in mlci.yaml, else origin)")
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the pre-push check (and git's pre-push hook); the output says that it was skipped",
    )


def print_plan(plan: PushPlan, *, verify: bool) -> None:
    """What will be pushed, in the words the TUI's confirmation uses."""
    print(f"push {plan.branch} → {plan.remote} ({plan.remote_url})")
    if plan.new_branch:
        print(f"  new branch on {plan.remote}: {plan.branch} will track {plan.remote}/{plan.branch}")
    noun = "commit" if plan.total_commits == 1 else "commits"
    print(f"  {plan.total_commits} {noun}:")
    for commit in plan.commits:
        print(f"    {commit.sha} {commit.subject} ({commit.author})")
    if plan.total_commits > len(plan.commits):
        print(f"    … and {plan.total_commits - len(plan.commits)} more")
    for warning in plan.warnings():
        print(f"  warning: {warning}")
    if not verify:
        print("  pre-push check: SKIPPED (--no-verify)")


class _Printer:
    """The session's events as plain lines: the check's tiers as `mlci check` prints them, and push progress
    one line per git step (and its end), not one per object."""

    def __init__(self) -> None:
        from mlci.engine.cli.printer import HumanPrinter

        self._tiers = HumanPrinter()
        self._last_op = ""

    def __call__(self, event: Event) -> None:
        from mlci.engine.events import PushProgress

        if not isinstance(event, PushProgress):
            self._tiers(event)
            return
        if event.stage == "push" and event.percent is not None:
            op = event.message.split(" ")[0]
            if op == self._last_op and event.percent < 100.0:
                return
            self._last_op = op
        if event.stage == "done" and not event.ok:
            return  # the failure is printed once, by the CLI, from the MlciError
        print(f"{event.stage}: {event.message}", flush=True)


def run(args: argparse.Namespace) -> int:
    from mlci.engine.config.loader import load_config
    from mlci.engine.loop.session import Session
    from mlci.engine.run.interrupts import exit_on_signals, shielded

    root = Path(args.path).resolve()
    config = load_config(root)
    session = Session(config, emit=_Printer(), watch=False)
    plan = session.plan_push(args.remote)
    if plan.up_to_date:
        print(plan.summary())
        return 0
    print_plan(plan, verify=not args.no_verify)
    session.start()
    try:
        with exit_on_signals():  # a SIGTERM mid-check still stops the check's runs
            outcome = session.run_push(plan, verify=not args.no_verify, interactive=sys.stdin.isatty())
    finally:
        with shielded():
            session.stop()
    if outcome.pushed:
        print(f"follow the remote CI run with: mlci ci status --sha {outcome.plan.head[:12]}")
    return 0
