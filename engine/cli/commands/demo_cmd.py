"""`mlci demo [DIR]`: build the demo sandbox; with --open, start the dashboard on it; with --scenario, play the story.

`--scenario` opens the dashboard on a fresh sandbox and plays the talk (see
`demo.scenario`); `--scenario --headless` plays it without the dashboard, one line per
step, and exits 0 when every step went as told (for rehearsal, and for tests).
`--on DIR` plays it on a sandbox that exists already.
"""

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
    parser.add_argument(
        "--scenario", action="store_true", help="open the dashboard and play the demo's story (space pauses, n steps)"
    )
    parser.add_argument("--headless", action="store_true", help="with --scenario: play it without the dashboard")
    parser.add_argument("--on", metavar="SANDBOX", help="with --scenario: an existing demo sandbox, not a new one")


def _headless(root: Path) -> int:
    """The story on a session of its own, captions and verdicts as plain lines."""
    from mlci.engine.cli.printer import HumanPrinter
    from mlci.engine.config.loader import load_config
    from mlci.engine.demo.scenario import ScenarioPlayer
    from mlci.engine.events import Event, ScenarioCaption
    from mlci.engine.loop.session import Session
    from mlci.engine.run.interrupts import exit_on_signals, shielded

    printer = HumanPrinter()
    player: ScenarioPlayer | None = None

    def emit(event: Event) -> None:
        if player is not None:
            player.observe(event)
        if isinstance(event, ScenarioCaption):
            mark = "" if not event.answer else ("  ✓ " if event.ok else "  ✗ ") + event.answer
            head = "the end" if event.finished else f"[{event.step}/{event.total}] {event.text}"
            print(f"{head}{mark}", flush=True)
        else:
            printer(event)

    # The dashboard's session, less the screen: the same warm runner, so a rehearsal runs as the talk will.
    session = Session(load_config(root), emit=emit, warm_runner=True)
    player = ScenarioPlayer(session, emit)
    with exit_on_signals():
        session.start()
        try:
            player.start()
            player.wait()
        finally:
            player.stop()
            with shielded():
                session.stop()
    return 0 if player.ok else 1


def run(args: argparse.Namespace) -> int:
    from mlci.engine.demo.sandbox import build_sandbox
    from mlci.engine.errors import MlciError

    if (args.headless or args.on) and not args.scenario:
        raise MlciError("--headless and --on go with --scenario")
    if args.on:
        root = Path(args.on).resolve()
    else:
        target = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="mlci-demo-"))
        print(f"building the demo sandbox in {target.resolve()}", flush=True)
        root = build_sandbox(target, progress=lambda step: print(f"  {step}", flush=True))
        print(f"\nsandbox ready: {root}\n  open it with: mlci-tui {root}", flush=True)
    if args.scenario and args.headless:
        return _headless(root)
    if args.open or args.scenario:
        tui = shutil.which("mlci-tui", path=str(Path(sys.executable).parent)) or "mlci-tui"
        os.execv(tui, [tui, str(root), *(["--scenario"] if args.scenario else [])])
    return 0
