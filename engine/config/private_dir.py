"""mlci's own folder in a project, `.mlci/`: run history, affected-test data, what the warm runner learned.

It gets a `.gitignore` of `*` when it is made, so nothing in it ever shows up in `git status`:
mlci's state lives beside the project without touching the user's tree.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PRIVATE_DIR", "private_dir"]

PRIVATE_DIR = Path(".mlci")


def private_dir(root: Path, *parts: str) -> Path:
    """`root/.mlci/<parts>`, made (with `.mlci/.gitignore`) when missing."""
    base = root / PRIVATE_DIR
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# mlci's own files: never committed\n*\n", encoding="utf-8")
    return path
