"""A subprocess in its own process group: its output streamed in batches, and the whole group killed on demand.

Every tier command (pytest, `dvc repro`, the gates child) runs through `GroupProcess`. The group
matters because the command's children (a DVC stage's python, a DataLoader worker, a test's own
subprocess) must die with it: a cancel, a timeout or quitting the app kill the group, never just
its leader. Descendants that left the group (`setsid`, a double fork) are found by the run token
in their environment (see `run_token`) and killed with it.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mlci.engine.run.interrupts import shielded
from mlci.engine.run.run_token import marked_processes, new_token, with_token

__all__ = ["Ending", "GroupProcess", "Outcome", "StreamedOutput", "group_alive", "kill_group", "kill_marked"]

BATCH_S = 0.075
"""How often buffered output is handed on: consumers see a few batches a second, never one call per line."""
KILL_GRACE_S = 3.0
"""How long a group gets to exit after SIGTERM before it is sent SIGKILL."""
LINE_MAX = 2000
"""Characters kept of one output line (a progress bar without newlines must not grow without bound)."""
TAIL_LINES = 40
"""Output lines kept for explaining a failure in words."""
SWEEP_S = 0.05
"""How often, during the grace period, /proc is scanned again for the run's marked processes."""
MAX_SWEEPS = 50
"""SIGKILL rounds at most: each catches what forked while the previous round was scanning."""


class Ending(enum.Enum):
    """Why `GroupProcess.wait` returned."""

    EXITED = "exited"
    """The command exited by itself."""
    TIMED_OUT = "timed_out"
    """The deadline passed; the group was killed."""
    STOPPED = "stopped"
    """The stop event was set (cancel, quit); the group was killed."""


@dataclass(frozen=True)
class Outcome:
    ending: Ending
    returncode: int | None
    """The leader's exit status (negative: killed by that signal); None if it never exited."""


def group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` still exists (zombies waiting for their parent count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(pgid: int | None, token: str | None, sig: signal.Signals) -> bool:
    """Send `sig` to the group and to every process marked with `token`; whether any of them exists."""
    exists = pgid is not None
    try:
        if pgid is not None:
            os.killpg(pgid, sig)
    except ProcessLookupError:
        exists = False
    except PermissionError:
        pass
    for pid in marked_processes(token) if token else ():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            exists = True
    return exists


def kill_marked(token: str, *, grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM every process marked with `token` (see `run_token`), then SIGKILL whatever is left after `grace_s`.

    For commands that are not a `GroupProcess` (a run forked by a warm server): their own kill
    covers their group, this covers what left it.
    """
    kill_group(None, grace_s=grace_s, token=token)


def kill_group(
    pgid: int | None,
    *,
    grace_s: float = KILL_GRACE_S,
    leader: subprocess.Popen[bytes] | None = None,
    token: str | None = None,
) -> None:
    """SIGTERM the whole group (and the processes marked with `token`), then SIGKILL whatever is left after `grace_s`.

    The leader (when given) is reaped as it dies, so that its zombie does not keep the group
    looking alive for the whole grace period.
    """
    if not _signal(pgid, token, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        if not (pgid is not None and group_alive(pgid)) and not (token and marked_processes(token)):
            return
        time.sleep(SWEEP_S if token else 0.02)
    for _ in range(MAX_SWEEPS):
        _signal(pgid, token, signal.SIGKILL)
        if leader is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored: this is brief
                leader.wait(timeout=grace_s)
        if not (token and marked_processes(token)):
            return
        time.sleep(0.01)


class StreamedOutput:
    """A command's output read line by line on a reader thread, handed on in batches of whole lines.

    Shared by `GroupProcess` and the warm runner's `WarmProcess`: `_read` runs on the reader
    thread, `_flush` on the thread that waits, which calls `on_lines`.
    """

    def __init__(self, on_lines: Callable[[tuple[str, ...]], None], *, end_line: str | None = None) -> None:
        self._on_lines = on_lines
        self._lock = threading.Lock()
        self._buffer: list[str] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        """The last output lines, for a failure's reason."""
        self._end_line = end_line
        self._ended = threading.Event()
        """Set when the command printed `end_line` (never handed on): everything before it has been read."""

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            # A progress bar redraws itself with carriage returns: keep what the terminal would show.
            line = text.rsplit("\r", 1)[-1][:LINE_MAX]
            if self._end_line is not None and line == self._end_line:
                self._ended.set()
                continue
            with self._lock:
                self._buffer.append(line)
        stream.close()

    def flush_through_end(self, timeout: float) -> bool:
        """Hand on every line up to the command's `end_line`, waiting for it at most `timeout`; whether it came.

        For a verdict given before the command exits (pytest's interpreter teardown can take seconds):
        no line it printed before the verdict may come after it. Call from the thread that waits.
        """
        ended = self._ended.wait(timeout)
        self._flush()
        return ended

    def _flush(self) -> None:
        with self._lock:
            lines, self._buffer = self._buffer, []
        if lines:
            self.tail.extend(lines)
            self._on_lines(tuple(lines))


class GroupProcess(StreamedOutput):
    """One command, started in a new session (so a new process group), stdout and stderr merged.

    `on_lines` receives the output in batches of whole lines, from the thread that calls `wait`.
    With `stdout` (a file), only stderr is streamed as lines: for a command whose standard
    output is a document (`mlci gates --json`) and whose standard error tells the progress.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        on_lines: Callable[[tuple[str, ...]], None],
        stdout: IO[bytes] | None = None,
        end_line: str | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self._cwd = cwd
        self.token = new_token()
        """Marks every process this command starts, in or out of its group (see `run_token`)."""
        self._env = with_token(env, self.token)
        super().__init__(on_lines, end_line=end_line)
        self._stdout = stdout
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pgid(self) -> int | None:
        """The process group id (the leader's pid), once started."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the command; raises OSError when it cannot be started."""
        separate = self._stdout is not None
        self._proc = subprocess.Popen(
            self.argv,
            cwd=self._cwd,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout if separate else subprocess.PIPE,
            stderr=subprocess.PIPE if separate else subprocess.STDOUT,
            start_new_session=True,
        )
        stream = self._proc.stderr if separate else self._proc.stdout
        assert stream is not None
        self._reader = threading.Thread(
            target=self._read, args=(stream,), name=f"mlci-output-{self._proc.pid}", daemon=True
        )
        self._reader.start()

    def wait(self, *, deadline: float | None, stop: threading.Event, tick: Callable[[], None] | None = None) -> Outcome:
        """Stream output until the command exits, `deadline` (monotonic) passes, or `stop` is set.

        `tick` is called once per batch (the runner tails pytest's report file there). On a
        timeout or a stop the whole group is killed before this returns; on a normal exit,
        anything the command left running in its group is killed too.
        """
        proc = self._proc
        assert proc is not None, "start() first"
        ending = Ending.EXITED
        try:
            while proc.poll() is None:
                if stop.wait(BATCH_S):
                    ending = Ending.STOPPED
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    ending = Ending.TIMED_OUT
                    break
                self._flush()
                if tick is not None:
                    tick()
        finally:
            # Also when the waiting thread is interrupted (Ctrl-C, SIGTERM as `Stopped`): the
            # command dies with the process that started it.
            with shielded():  # a second Ctrl-C must not cut the kill short
                kill_group(proc.pid, leader=proc, token=self.token)
        if self._reader is not None:
            self._reader.join(timeout=KILL_GRACE_S)
        self._flush()
        if tick is not None:
            tick()
        return Outcome(ending, proc.returncode)
