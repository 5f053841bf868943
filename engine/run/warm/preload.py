"""Which modules the warm server imports before it forks: the third-party modules the tests and sources import.

Read from the code, not guessed: every `import x.y` / `from x.y import z` at any depth of the
project's Python files (its tests and its sources). What is the
project's own (a module or package at the root, under `src/`, or anywhere beside the files
read: test helpers, `conftest`) is left out, and so is the standard library (cheap to import,
and nothing to gain). The server refuses a module found inside the project's tree too.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["preload_modules"]

MAX_FILES = 3000
"""Python files read at most: enough for any project's tests and sources, bounded on a huge tree."""
_SKIP_DIRS = {"node_modules", "__pycache__", "build", "dist", "site-packages"}


def _is_environment(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file() or (path / "conda-meta").is_dir()


def _python_files(root: Path) -> Iterator[Path]:
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS and not _is_environment(here / d)
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                count += 1
                if count > MAX_FILES:
                    return
                yield here / name


def _imports(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _own_names(root: Path, files: Sequence[Path]) -> set[str]:
    """Top-level names the project itself provides: modules and packages beside any of its files, at the root,
    and under `src/`."""
    own: set[str] = set()
    places = {root, root / "src", *(f.parent for f in files)}
    for place in places:
        own.update(p.stem for p in place.glob("*.py"))
        if place != root.parent:
            own.add(place.name)
        own.update(p.parent.name for p in place.glob("*/__init__.py"))
    return own


def preload_modules(root: Path) -> tuple[str, ...]:
    """The third-party modules (dotted: `sklearn.ensemble` is the heavy part of sklearn) the project's Python
    files import, sorted."""
    files = list(_python_files(root))
    imported: set[str] = set()
    for path in files:
        imported |= _imports(path)
    own = _own_names(root, files)
    stdlib = set(sys.stdlib_module_names)
    return tuple(
        sorted(
            name
            for name in imported
            if (top := name.split(".", 1)[0]) not in own and top not in stdlib and top != "__future__"
        )
    )
