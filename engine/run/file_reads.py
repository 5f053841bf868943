"""Which project files each test read, so that a change to a data file selects the tests that read it.

pytest-testmon fingerprints Python code only (its issue #178): a test that reads
`data/train.csv` is not affected, for testmon, when the CSV changes. This module fills the
gap inside the test process. An audit hook (`sys.addaudithook`, event "open") notes every
file opened for reading under the project root that is not Python source (DVC outputs, CSV,
JSON, YAML, fixtures), and attributes it to the test running at that moment, to the test
module being collected (a module-level `pd.read_csv` belongs to every test of the module), or
to the shared fixture being set up (a session fixture that loads the data belongs to every
test that uses it).

The reads are kept beside testmon's data, in one JSON file under `.mlci/`, with a content
fingerprint per file: its size and mtime when it was read, and its hash. On the next run, a
test is data-affected when a file it read is gone or its content hash differs (a touch that
keeps the content is not a change, as in DVC).

Only reads through Python's `open` (builtins, `io`, `os.open`, pathlib) are seen; a C
library opening a file itself (HDF5, some Parquet readers) is not. The test process
imports this module only when mlci asks for affected tests first; stdlib only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["READS_FILE", "FileReads", "readers_of"]

READS_FILE = "file_reads.json"
"""The file, in the affected-tests state directory, that keeps each test's reads."""

_SKIP_PARTS = frozenset(
    {
        ".git",
        ".mlci",
        ".venv",
        "venv",
        "__pycache__",
        ".pytest_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        "node_modules",
    }
)
"""Directories whose files are never test data: tools' own state, environments, caches."""
_SKIP_SUFFIXES = (".py", ".pyc", ".pyi", ".pyd", ".so")
"""Code: testmon fingerprints Python sources itself, and compiled modules are the environment's."""
_HASH_CHUNK = 1 << 20

_ACTIVE: FileReads | None = None
"""The recorder the audit hook feeds; None outside a recording session."""
_HOOKED = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audit event in the process (imports included): leave fast.
    if event != "open" or _ACTIVE is None:
        return
    _ACTIVE.opened(args)


def _reading(mode: object, flags: object) -> bool:
    """Whether an "open" audit event is a read only (a file the test writes is its output, not its input)."""
    if isinstance(mode, str):
        return not any(c in mode for c in "wax+")
    return isinstance(flags, int) and flags & os.O_ACCMODE == os.O_RDONLY


def _fingerprint(path: Path) -> list[Any] | None:
    """[size, mtime_ns, content hash] of a file; None when it cannot be read."""
    try:
        before = path.stat()
        digest = hashlib.blake2b(digest_size=16)
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    except OSError:
        return None
    return [before.st_size, before.st_mtime_ns, digest.hexdigest()]


class FileReads:
    """The reads of one test session, and those stored from earlier sessions.

    `start(key)`/`stop()` frame a test (its node id) or a module's collection (its path);
    `changed()` says which stored keys read a file whose content has changed since; `save()`
    replaces the stored reads of every key framed this session and writes the file atomically.
    """

    def __init__(self, root: Path, store: Path) -> None:
        self.root = root
        self.store = store
        self._prefixes = tuple({str(root.absolute()) + os.sep, str(root.resolve()) + os.sep})
        self._current: str | None = None
        self._reads: dict[str, set[str]] = {}
        """Files read this session, per key framed this session."""
        self._stats: dict[str, tuple[int, int]] = {}
        """(size, mtime_ns) of each file when it was first read this session."""
        self._in_hook = False
        """Set while mlci itself opens files (the hook's own work, hashing): those reads are not the test's."""
        stored = self._load()
        self._files: dict[str, list[Any]] = stored.get("files", {})
        self._tests: dict[str, list[str]] = stored.get("tests", {})

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.store.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # -- recording ----------------------------------------------------------------------------

    def install(self) -> None:
        """Make this the recorder the audit hook feeds (the hook itself is added once per process)."""
        global _ACTIVE, _HOOKED
        _ACTIVE = self
        if not _HOOKED:
            sys.addaudithook(_audit)
            _HOOKED = True

    def uninstall(self) -> None:
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None

    def start(self, key: str) -> None:
        self._current = key
        self._reads.setdefault(key, set())

    def stop(self) -> None:
        self._current = None

    def frame(self, key: str) -> str | None:
        """Attribute reads to `key` until `unframe` (a shared fixture inside a test); returns what to restore."""
        previous = self._current
        self.start(key)
        return previous

    def unframe(self, previous: str | None) -> None:
        self._current = previous

    def opened(self, args: tuple[Any, ...]) -> None:
        """One "open" audit event: (path, mode, flags)."""
        key = self._current
        if key is None or self._in_hook or len(args) < 3:
            return
        path, mode, flags = args[0], args[1], args[2]
        if isinstance(path, int) or not _reading(mode, flags):
            return
        try:
            text = os.fsdecode(path)
        except TypeError:
            return
        if text.endswith(_SKIP_SUFFIXES):
            return
        self._in_hook = True
        try:
            self._note(key, text)
        finally:
            self._in_hook = False

    def _note(self, key: str, text: str) -> None:
        absolute = os.path.normpath(os.path.join(os.getcwd(), text))
        prefix = next((p for p in self._prefixes if absolute.startswith(p)), None)
        if prefix is None:
            return
        rel = absolute[len(prefix) :].replace(os.sep, "/")
        parts = rel.split("/")
        if _SKIP_PARTS.intersection(parts[:-1]) or parts[:2] in ([".dvc", "cache"], [".dvc", "tmp"]):
            return
        if rel not in self._stats:
            try:
                st = os.stat(absolute)
            except OSError:
                return
            if not os.path.isfile(absolute):
                return
            self._stats[rel] = (st.st_size, st.st_mtime_ns)
        self._reads[key].add(rel)

    # -- selecting ----------------------------------------------------------------------------

    def _file_changed(self, rel: str, cache: dict[str, bool]) -> bool:
        if rel in cache:
            return cache[rel]
        stored = self._files.get(rel)
        path = self.root / rel
        changed = True
        if stored is not None and len(stored) == 3:
            try:
                st = path.stat()
            except OSError:
                st = None
            if st is not None and [st.st_size, st.st_mtime_ns] == stored[:2]:
                changed = False  # same size and mtime: the content was not rewritten
            elif st is not None:
                now = _fingerprint(path)
                changed = now is None or now[2] != stored[2]
        cache[rel] = changed
        return changed

    def changed(self) -> dict[str, tuple[str, ...]]:
        """Stored keys (test node ids, module paths) that read a file whose content changed: key -> those files."""
        cache: dict[str, bool] = {}
        found: dict[str, tuple[str, ...]] = {}
        for key, files in self._tests.items():
            hit = tuple(f for f in files if self._file_changed(f, cache))
            if hit:
                found[key] = hit
        return found

    # -- storing ------------------------------------------------------------------------------

    def save(self) -> None:
        """Store this session's reads (replacing those of the keys framed this session), atomically."""
        self._in_hook = True  # hashing opens the files: those reads are ours, not the running test's
        try:
            self._save()
        finally:
            self._in_hook = False

    def _save(self) -> None:
        for key, read in self._reads.items():
            if read:
                self._tests[key] = sorted(read)
            else:
                self._tests.pop(key, None)
        wanted = {f for names in self._tests.values() for f in names}
        files: dict[str, list[Any]] = {}
        for rel in sorted(wanted):
            seen = self._stats.get(rel)
            if seen is None:  # not read this session: its stored fingerprint stays true
                if rel in self._files:
                    files[rel] = self._files[rel]
                continue
            now = _fingerprint(self.root / rel)
            if now is not None and tuple(now[:2]) == seen:
                files[rel] = now
            # else: rewritten since the test read it; no fingerprint, so it counts as changed next time
        self._files = files
        self._write({"version": 1, "files": files, "tests": self._tests})

    def _write(self, data: dict[str, Any]) -> None:
        self.store.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".file_reads-", dir=self.store.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump(data, stream, separators=(",", ":"))
            os.replace(tmp, self.store)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def readers_of(store: Path, paths: Iterable[str]) -> tuple[str, ...]:
    """The tests (node ids) and test modules whose last run read any of `paths` (project-relative POSIX)."""
    try:
        data = json.loads(store.read_text(encoding="utf-8"))
        tests: dict[str, list[str]] = data["tests"]
    except (OSError, ValueError, KeyError, TypeError):
        return ()
    wanted = set(paths)
    return tuple(key for key, files in tests.items() if wanted.intersection(files))
