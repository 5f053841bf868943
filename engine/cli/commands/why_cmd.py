"""`mlci why`: the last plans from the run history, each with why it ran and how its tiers ended."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("-n", type=int, default=10, metavar="N", help="how many plans to show (default 10)")
    parser.add_argument("--json", action="store_true", help="print the plans as JSON")


def run(args: argparse.Namespace) -> int:
    from mlci.engine.config.loader import load_config
    from mlci.engine.errors import MlciError
    from mlci.engine.loop.history import read_last_plans

    if args.n < 1:
        raise MlciError(f"-n must be at least 1, got {args.n}")
    config = load_config(Path(args.path))
    plans = read_last_plans(config.root, args.n)
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in plans], indent=2, default=str))
        return 0
    if not plans:
        print("no runs yet: `mlci watch`, `mlci run` or `mlci-tui` record them in .mlci/history.sqlite")
        return 0
    for plan in plans:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(plan.at))
        print(f"plan #{plan.plan_id}  {when}  {', '.join(plan.tiers) or 'nothing'}")
        for trigger in plan.triggers:
            paths = f": {', '.join(trigger.paths[:5])}" if trigger.paths else ""
            more = f" (+{len(trigger.paths) - 5} more)" if len(trigger.paths) > 5 else ""
            print(f"  why   {trigger.tier.value} <- {trigger.rule}{paths}{more}")
        if plan.stages:
            print(f"  stages {', '.join(plan.stages)}")
        for r in plan.runs:
            verdict = r.verdict or "did not finish"
            took = f" in {r.duration_s:.1f}s" if r.duration_s is not None and r.verdict != "held" else ""
            counts = f" {r.passed} passed, {r.failed} failed" if r.verdict not in (None, "held") else ""
            reason = f"  ({r.reason})" if r.reason else ""
            print(f"  {r.tier:<5} {verdict}{counts}{took}{reason}")
            for nodeid in r.failed_tests:
                print(f"        failed {nodeid}")
    return 0
