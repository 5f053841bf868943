"""Tiny real projects for the loop's tests (git, optionally DVC), and a way to find the processes a run left.

Kept small on purpose: a code tier of one or two test files runs in about a second, so the
loop's policies (cancel, restart, stale, hold) can be exercised many times per test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from mlci.engine.events import Event, TestOutcome, TestResult, Tier, TierFinished, TierStarted, Verdict

from tests.dvc_init import dvc_init

__all__ = [
    "MARKER_ENV",
    "EventLog",
    "git",
    "is_finished",
    "living_processes",
    "make_dvc_project",
    "make_project",
    "processes_with_env",
    "wait_until",
    "write",
]

MARKER_ENV = "MLCI_TEST_MARKER"
"""Set on a process under test: every descendant inherits it, so leftovers can be found by it."""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def _git_init(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "config", "commit.gpgsign", "false")


def make_project(
    root: Path, *, tests: dict[str, str], config: str = "", sources: dict[str, str] | None = None, commit: bool = True
) -> Path:
    """A git project with a code tier of `tests` (path -> source), `mlci.yaml` from `config`."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in {**(sources or {}), **tests}.items():
        write(root / name, text)
    write(root / "mlci.yaml", config or "tiers:\n  code:\n    tests: [tests]\n    triggers: ['**/*.py']\n")
    write(root / ".gitignore", "__pycache__/\n")
    _git_init(root)
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "start")
    return root


def make_dvc_project(
    root: Path,
    *,
    stage_cmd: str,
    outs: Iterable[str],
    deps: Iterable[str],
    config: str,
    files: dict[str, str] | None = None,
) -> Path:
    """A git + DVC project with one pipeline stage `work` (no `dvc repro` run yet)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        write(root / name, text)
    stage = {"stages": {"work": {"cmd": stage_cmd, "deps": list(deps), "outs": list(outs)}}}
    (root / "dvc.yaml").write_text(json.dumps(stage, indent=2), encoding="utf-8")  # JSON is YAML
    write(root / "mlci.yaml", config)
    write(root / ".gitignore", ".mlci/\n__pycache__/\nmlflow.db\nmlruns/\n")
    _git_init(root)
    # What `dvc config core.autostage false` writes into the empty config `dvc init` leaves,
    # without a second interpreter importing DVC.
    dvc_init(root, config="[core]\n    autostage = false\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def _state(pid: str) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def living_processes(pids: Iterable[int]) -> list[int]:
    """Those of `pids` that still run (a zombie has exited: it only waits to be reaped)."""
    return [pid for pid in pids if _state(str(pid)) not in (None, "Z")]


def processes_in(project: Path) -> list[str]:
    """Processes whose working directory is the project: what a run would leave behind."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == str(project):
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def temporary_files(temp: Path) -> list[str]:
    """The files under TMPDIR, less the tests' own pytest folders and what the warm runner keeps by design (the
    modules it learned to preload, `mlci-<uid>/warm/<key>.json`)."""
    return sorted(
        name
        for name in (str(p.relative_to(temp)) for p in temp.rglob("*") if p.is_file())
        if not name.startswith("pytest-of-") and not re.fullmatch(r"mlci-\d+/warm/[0-9a-f]+-\w+\.json", name)
    )


def processes_with_env(name: str, value: str) -> list[int]:
    """Living processes whose environment has `name=value`: a command and everything it started."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and _state(entry) not in (None, "Z"):
            found.append(int(entry))
    return found


def _brief(event: Event) -> str:
    """An event's kind, with its tier, verdict or text where it has one: enough to read a failed wait."""
    detail = [str(getattr(event, name)) for name in ("tier", "verdict", "text") if getattr(event, name, None)]
    return f"{type(event).__name__}({', '.join(detail)})" if detail else type(event).__name__


class EventLog:
    """Collects events from any thread; tests wait on it for what a user would see."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def snapshot(self) -> list[Event]:
        with self._cond:
            return list(self.events)

    def wait_for(self, predicate: Callable[[Event], bool], *, timeout: float = 120.0, after: int = 0) -> Event:
        """The first event (from index `after`) that matches; fails the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[after:]:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    kinds = [_brief(e) for e in self.events[-30:]]
                    raise AssertionError(
                        f"no matching event within {timeout}s ({len(self.events) - after} since the wait began);"
                        f" last events: {kinds}"
                    )
                self._cond.wait(remaining)

    def finished(self, tier: Tier) -> list[TierFinished]:
        return [e for e in self.snapshot() if isinstance(e, TierFinished) and e.tier is tier]

    def started(self, tier: Tier) -> list[TierStarted]:
        return [e for e in self.snapshot() if isinstance(e, TierStarted) and e.tier is tier]

    def results(self, run_id: int) -> list[TestResult]:
        return [e for e in self.snapshot() if isinstance(e, TestResult) and e.run_id == run_id]

    def failed_tests(self, run_id: int) -> list[str]:
        return [r.nodeid for r in self.results(run_id) if r.outcome in (TestOutcome.FAILED, TestOutcome.ERROR)]


def is_finished(tier: Tier, verdict: Verdict | None = None) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, TierFinished) and e.tier is tier and (verdict is None or e.verdict is verdict)


def wait_until(condition: Callable[[], bool], *, timeout: float = 120.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)


def written(*paths: Path, what: str, timeout: float = 120.0) -> list[str]:
    """What another process writes to `paths` (a pid, a small JSON), once each file holds something.

    `write_text` creates the file before it writes to it: a reader that waits only for the file
    to exist can read it empty, and a process killed right after (a cancelled run) leaves it so.
    """
    wait_until(lambda: all(p.exists() and p.stat().st_size > 0 for p in paths), what=what, timeout=timeout)
    return [p.read_text() for p in paths]
