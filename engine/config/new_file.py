"""Write a file mlci generates for the user (`mlci init`, `mlci gates init`): never over theirs unless told to.

The text lands atomically (a temporary sibling, then a rename), so an interrupted write never
leaves half a config behind.
"""

from __future__ import annotations

from pathlib import Path

from mlci.engine.errors import MlciError

__all__ = ["write_new_file"]


def write_new_file(path: Path, text: str, *, force: bool, shown_as: str) -> None:
    """Write `text` to `path`; refuse (MlciError, nothing written) when it exists and `force` is not set."""
    if path.exists() and not force:
        raise MlciError(f"{shown_as} already exists: pass --force to overwrite it")
    tmp = path.with_name(path.name + ".mlci-tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
