"""Drive a real terminal program through tmux: start it, type into it, read its screen."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Tmux", "tmux_available"]


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


class Tmux:
    """One detached tmux session running one command, on its own tmux server socket."""

    def __init__(self, *, width: int = 160, height: int = 48) -> None:
        self.name = f"mlci-test-{uuid.uuid4().hex[:8]}"
        self.socket = f"mlci-{self.name}"
        self.width = width
        self.height = height
        self.started = False

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check)

    def start(self, argv: list[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        # pytest exports COLUMNS and LINES, and Textual trusts them over the pane's real size.
        command = f"env -u COLUMNS -u LINES {exports} {shlex.join(argv)}"
        # Keep the pane after the program exits, so a crash's last screen can still be read.
        self._tmux(
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            *(["-c", str(cwd)] if cwd else []),
            command,
        )
        self._tmux("set-option", "-t", self.name, "remain-on-exit", "on")
        self.started = True

    def send_keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def capture(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name).stdout

    def pane_pid(self) -> int:
        return int(self._tmux("display-message", "-p", "-t", self.name, "#{pane_pid}").stdout.strip())

    def pane_dead(self) -> bool:
        return self._tmux("display-message", "-p", "-t", self.name, "#{pane_dead}", check=False).stdout.strip() == "1"

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """Wait until `text` is on screen and return the screen; fail with the screen otherwise.

        The capture can catch a frame half-written (tmux takes the program's output as it comes,
        top to bottom): to assert on several lines of one frame, wait for the lowest of them.
        """
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} did not appear on screen within {timeout:.0f}s; screen was:\n{screen}")

    def wait_until_dead(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pane_dead():
                return
            time.sleep(0.2)
        raise AssertionError(f"the program did not exit within {timeout:.0f}s; screen was:\n{self.capture()}")

    def close_terminal(self) -> int:
        """Close the session's terminal, as closing a terminal window does (the program gets SIGHUP).

        Returns the program's pid: the pane is gone at once, the program may still be cleaning up.
        """
        pid = self.pane_pid()
        self._tmux("kill-session", "-t", self.name)
        return pid

    def kill(self) -> None:
        if self.started:
            self._tmux("kill-server", check=False)
            self.started = False
