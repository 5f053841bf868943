"""`mlci demo [DIR]`: build the demo sandbox, and with --open, start the dashboard on it."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", help="where to build it (new or empty; default: a fresh temporary directory)")
    parser.add_argument("--open", action="store_true", help="open mlci-tui on the sandbox once it is built")


def run(args: argparse.Namespace) -> int:
    from mlci.engine.demo.sandbox import build_sandbox

    target = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="mlci-demo-"))
    print(f"building the demo sandbox in {target.resolve()}", flush=True)
    root = build_sandbox(target, progress=lambda step: print(f"  {step}", flush=True))
    print(f"\nsandbox ready: {root}\n  open it with: mlci-tui {root}", flush=True)
    if args.open:
        tui = shutil.which("mlci-tui", path=str(Path(sys.executable).parent)) or "mlci-tui"
        os.execv(tui, [tui, str(root)])
    return 0
