"""`mlci`: the headless entry point. Dispatches to one module per subcommand.

`mlci --help` must answer in well under a second, so this module imports only the
stdlib, and a subcommand's module is imported only when that subcommand is named.
Errors meant for people (`MlciError`) print one line, without a traceback, with the
credentials of any URL in it masked; so does a git failure that reaches this far (GitPython's
errors carry git's own reason, which is what is printed), with exit code 2. Every git command
mlci runs reads with `GIT_OPTIONAL_LOCKS=0`, set here for the whole process, so that mlci
never takes `.git/index.lock` from under the user's own git.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from mlci.engine import __version__

__all__ = ["COMMANDS", "entry", "main"]


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("watch", "watch_cmd", "watch the project and rerun the tiers each change needs"),
    Command("run", "run_cmd", "run the tiers once (all, or --tier) and exit 0 when green"),
    Command("check", "check_cmd", "the pre-push check: every tier in order, the quick model tier, the gates"),
    Command("why", "why_cmd", "show the last plans and why each tier ran"),
    Command("gates", "gates_cmd", "evaluate model_gates.yaml against the candidate model"),
    Command("gates init", "gates_init_cmd", "write a first model_gates.yaml from the project's metrics and model"),
    Command("promote", "promote_cmd", "move the champion alias to the challenger model"),
    Command("report", "report_cmd", "write a Markdown (or JSON) report for a pull request"),
    Command("push", "push_cmd", "run the pre-push check, then push the branch (never forced)"),
    Command("ci", "ci_cmd", "write the remote CI workflow (ci init) or follow its runs (ci status)"),
    Command("hooks", "hooks_cmd", "install the git pre-push hook that runs mlci check"),
    Command("gpu", "gpu_cmd", "print one NVML sample of every GPU"),
    Command("config", "config_cmd", "print the effective config, saying what was written and what inferred"),
    Command("runner", "runner_cmd", "say which interpreter runs the tiers, and show the warm servers and their memory"),
    Command("demo", "demo_cmd", "build a sandboxed copy of the sample project (git, DVC, MLflow, remote)"),
    Command(
        "init", "init_cmd", "write mlci.yaml with the configuration mlci infers, saying where each value came from"
    ),
)
"""Every subcommand, in the order `mlci --help` lists them."""


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="mlci",
        description="Tiered checks for ML projects: code tests, data tests, model training and gates.",
    )
    parser.add_argument("--version", action="version", version=f"mlci {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers = {c.name: sub.add_parser(c.name, help=c.help, description=c.help) for c in COMMANDS}
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("GIT_OPTIONAL_LOCKS", "0")
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, subparsers = _parser()
    # The longest name that the arguments start with: `gates init` is its own command, `gates` another.
    matches = [c for c in COMMANDS if args_list[: len(c.name.split())] == c.name.split()]
    chosen = max(matches, key=lambda c: len(c.name.split()), default=None)
    module = None
    if chosen is not None:
        module = importlib.import_module(f"mlci.engine.cli.commands.{chosen.module}")
        module.add_arguments(subparsers[chosen.name])
    words = len(chosen.name.split()) if chosen is not None else 1
    # A two-word command's own parser reads what follows its words (argparse's would take them as `gates PATH`).
    args = (
        subparsers[chosen.name].parse_args(args_list[words:]) if chosen and words > 1 else parser.parse_args(args_list)
    )
    if module is None:
        parser.print_help()
        return 0 if not args_list else 2

    from mlci.engine.config.redact import mask_credentials
    from mlci.engine.errors import MlciError

    try:
        code = int(module.run(args))
    except MlciError as exc:
        print(mask_credentials(f"mlci {chosen.name if chosen else ''}: {exc}"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if type(exc).__module__.partition(".")[0] != "git":
            raise
        from pathlib import Path

        from mlci.engine.git.state import git_failure

        failure = git_failure(Path(getattr(args, "path", None) or "."), exc)
        print(mask_credentials(f"mlci {chosen.name if chosen else ''}: {failure}"), file=sys.stderr)
        return failure.exit_code
    return code


def entry() -> NoReturn:
    """The `mlci` command: `main`, then the end of the process without the interpreter's teardown (see
    `process_exit`). An exception out of `main` (a bug) takes Python's usual way, traceback and all."""
    from mlci.engine.process_exit import exit_without_teardown

    exit_without_teardown(main())


if __name__ == "__main__":
    entry()
