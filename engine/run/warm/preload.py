"""Which modules a tier's warm server imports before it forks: the third-party modules its tests can reach.

Read from the code, not guessed: from the tier's test files and the conftest files pytest loads
for them, every `import x.y` / `from x.y import z` at any depth (a function-level import runs when
a test calls that function), followed through the project's own modules (a module or package at
the root, under `src/`, or beside the files read: test helpers, `conftest`) to the third-party
modules they import in turn. What is the project's own is never preloaded, nor is the standard
library (cheap to import, and nothing to gain). The server refuses a module found inside the
project's tree too.

Per tier, not per project: the data tier's server of a project whose training imports torch and
MLflow preloads neither when its data tests import only pandas (a second less to start, and a
smaller process beside the editor). What a test imports that this misses (a dynamic import, a
library's lazy one) is learned from the runs (`client.py`).
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["conftests", "preload_modules"]

MAX_FILES = 3000
"""Python files listed at most: enough for any project's tests and sources, bounded on a huge tree."""
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


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """The dotted modules the file imports, and the names `from a import b` may also import as a module (`a.b`,
    a submodule or only an attribute: looked for among the project's own files only). A relative import is made
    absolute from the file's package (`pkg.sub` for `from . import sub` in pkg/x.py)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return set(), set()
    modules: set[str] = set()
    submodules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = _package_of(path) if node.level else []
            if node.level > len(package):
                continue  # above the top package: an ImportError at run time, nothing to preload
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if module:
                modules.add(module)
                submodules.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
    return modules, submodules


def _package_of(path: Path) -> list[str]:
    """The dotted package a file lies in, by the `__init__.py` files above it (empty for a loose file)."""
    parts: list[str] = []
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return parts


def _own_names(root: Path, files: Sequence[Path]) -> set[str]:
    """Top-level names the project itself provides: modules and packages beside any of its files, and every
    top-level module or folder of Python files at the root and under `src/`."""
    own: set[str] = set()
    for base in (root, root / "src"):  # a top-level folder with Python files, `__init__.py` or not (namespace)
        own.update(Path(f.relative_to(base).parts[0]).stem for f in files if base in f.parents)
    for place in _places(root, files):
        own.update(p.stem for p in place.glob("*.py"))
        if place != root.parent:
            own.add(place.name)
        own.update(p.parent.name for p in place.glob("*/__init__.py"))
    return own


def _places(root: Path, files: Sequence[Path]) -> set[Path]:
    """Where the project's own modules are imported from: the root, `src/`, and the folder of every file."""
    return {root, root / "src", *(f.parent for f in files)}


def _own_files(name: str, places: set[Path]) -> list[Path]:
    """The project's files that importing `name` may run: each package's `__init__.py` on the way, and the
    module, in every place it resolves in (which one wins depends on `sys.path`: reading them all may preload
    more, never less)."""
    parts = name.split(".")
    found: list[Path] = []
    for place in places:
        for depth in range(1, len(parts) + 1):
            stem = place.joinpath(*parts[:depth])
            if (stem / "__init__.py").is_file():
                found.append(stem / "__init__.py")
            elif stem.with_suffix(".py").is_file():
                found.append(stem.with_suffix(".py"))
                break
            elif not stem.is_dir():  # a folder without `__init__.py` is a namespace package: look inside
                break
    return found


def conftests(root: Path, tests: Sequence[str]) -> list[Path]:
    """Every conftest.py pytest may load for these test paths (a path, a folder, or a node id's file): in their
    directories, above them up to the root, and below them; present or not (the warm server's freshness counts a
    new one)."""
    found = {root / "conftest.py"}
    for test in tests:
        path = (root / test.split("::", 1)[0]).resolve()
        folder = path.parent if path.suffix == ".py" else path  # a test file's conftests start beside it
        for parent in (folder, *folder.parents):
            if parent == root or root not in parent.parents:
                break
            found.add(parent / "conftest.py")
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
                if "conftest.py" in filenames:
                    found.add(Path(dirpath) / "conftest.py")
    return sorted(found)


def _test_files(root: Path, tests: Sequence[str], files: Sequence[Path]) -> list[Path]:
    """The tier's test files and the conftest.py files pytest loads for them."""
    starts = {path for path in conftests(root, tests) if path.is_file()}
    for test in tests:
        path = (root / test.split("::", 1)[0]).resolve()
        starts.update(f for f in files if f == path or path in f.parents)
    return sorted(starts)


def preload_modules(root: Path, tests: Sequence[str]) -> tuple[str, ...]:
    """The third-party modules (dotted: `sklearn.ensemble` is the heavy part of sklearn) a tier's tests reach,
    sorted: from `tests` (its pytest paths) and their conftests, through the project's own modules."""
    root = root.resolve()
    files = list(_python_files(root))
    own = _own_names(root, files)
    places = _places(root, files)
    todo = _test_files(root, tests, files)
    read: set[Path] = set()
    imported: set[str] = set()
    while todo:
        path = todo.pop()
        if path in read:
            continue
        read.add(path)
        modules, submodules = _imports(path)
        for name in modules | submodules:
            if name.split(".", 1)[0] in own:
                todo.extend(f for f in _own_files(name, places) if f not in read)
            elif name in modules:
                imported.add(name)
    stdlib = set(sys.stdlib_module_names)
    return tuple(
        sorted(
            name
            for name in imported
            if (top := name.split(".", 1)[0]) not in own and top not in stdlib and top != "__future__"
        )
    )
