"""Errors the engine reports to people, each pointing at the file and line to fix."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "MlciError"]


class MlciError(Exception):
    """An error with a message meant for the user; the CLI prints it without a traceback."""

    exit_code = 1


class ConfigError(MlciError):
    """A malformed config or gate file. Exit code 2, and nothing is run."""

    exit_code = 2

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")
