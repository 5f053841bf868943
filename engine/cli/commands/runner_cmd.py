"""`mlci runner`: which interpreter runs the tiers, and the warm servers running now (with their memory)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument("--stop", action="store_true", help="stop this project's warm servers")


def run(args: argparse.Namespace) -> int:
    import os
    import signal

    from mlci.engine.cli.commands.config_cmd import runner_lines
    from mlci.engine.config.loader import load_config
    from mlci.engine.run.interpreter import project_interpreter
    from mlci.engine.run.warm.client import server_statuses

    config = load_config(Path(args.path), with_gates=False)
    if args.stop:
        for server in server_statuses(config.root):
            # Its SIGTERM handler kills the running child's group before it exits.
            os.kill(server.pid, signal.SIGTERM)
    if args.json:
        interpreter = project_interpreter(config)
        print(
            json.dumps(
                {
                    "python": str(interpreter.path),
                    "why": interpreter.why,
                    "runner": config.runner,
                    "idle_timeout_s": config.runner_idle_timeout,
                    "servers": [s.__dict__ for s in server_statuses(config.root)],
                },
                indent=2,
            )
        )
        return 0
    for line in runner_lines(config):
        print(line)
    return 0
