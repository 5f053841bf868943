"""mlci's own folders: `.mlci/` in a project, and the user's cache for what belongs to no one project.

`.mlci/` holds the run history, affected-test data, what the warm runner learned. It gets a
`.gitignore` of `*` when it is made, so nothing in it ever shows up in `git status`: mlci's
state lives beside the project without touching the user's tree.

The user's cache (`$MLCI_CACHE_DIR`, else `$XDG_CACHE_HOME/mlci`, else `~/.cache/mlci`) holds
what any copy of a project may start from: a fresh clone, a worktree, a demo sandbox.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "PRIVATE_DIR", "private_dir", "user_cache_dir"]

PRIVATE_DIR = Path(".mlci")
CACHE_ENV = "MLCI_CACHE_DIR"


def private_dir(root: Path, *parts: str) -> Path:
    """`root/.mlci/<parts>`, made (with `.mlci/.gitignore`) when missing."""
    base = root / PRIVATE_DIR
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    ignore = base / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# mlci's own files: never committed\n*\n", encoding="utf-8")
    return path


def user_cache_dir(*parts: str) -> Path:
    """`<the user's mlci cache>/<parts>`, made when missing (raises OSError when it cannot be)."""
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "mlci"
    )
    path = Path(base).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
