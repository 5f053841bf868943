"""What every watched file contained when the watcher last looked, so a touch is not a change.

The baseline is a private git index (a copy of the project's own, in a temporary
directory) driven with git's plumbing under `GIT_INDEX_FILE`. Git already does exactly
what a content check needs, in C: it keeps size and mtime per path and hashes a file
only when those moved, and it honours `.gitignore`, clean filters and LFS pointers.
Starting from a copy of the real index means the clean tracked files are never read
at start, so the baseline of a 50,000-file tree costs one `lstat` sweep, and the
watcher process holds no per-file state at all.

Nothing here writes to the project: objects are hashed with `--info-only` (never
stored), and the index written is the private copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from mlci.engine.errors import MlciError

__all__ = ["Fingerprints"]

_GIT_CONFIG = (
    # The private index must stay a plain, self-contained file: no daemon's view of the
    # tree, no untracked cache and no shared index written into the project's .git.
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.untrackedCache=false",
    "-c",
    "core.splitIndex=false",
)


def _split(output: bytes) -> list[str]:
    return [p for p in os.fsdecode(output).split("\0") if p]


class Fingerprints:
    """The content baseline of the watched files, as a private git index.

    Not thread-safe: one thread (the watcher's) owns it.
    """

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root
        self.git_dir = git_dir
        self._tmp = Path(tempfile.mkdtemp(prefix="mlci-watch-"))
        self._index = self._tmp / "index"
        self._env = {
            **os.environ,
            "GIT_DIR": str(git_dir),
            "GIT_WORK_TREE": str(root),
            "GIT_INDEX_FILE": str(self._index),
            "GIT_LITERAL_PATHSPECS": "1",
        }

    def _git(self, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
        proc = subprocess.run(
            ["git", *_GIT_CONFIG, *args],
            cwd=self.root,
            env=self._env,
            input=stdin,
            capture_output=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise MlciError(f"git {args[0]} failed: {os.fsdecode(proc.stderr).strip()}")
        return proc.stdout

    def build(self, tracked_roots: Sequence[str]) -> None:
        """Take the baseline: the project's index, plus what the working tree holds on top of it.

        `tracked_roots` are the DVC-tracked paths (files or directories), watched although
        git ignores them.
        """
        real_index = self.git_dir / "index"
        if real_index.is_file():
            shutil.copyfile(real_index, self._index)
        self.record(self.changed(None, tracked_roots))

    def changed(self, candidates: Collection[str] | None, tracked_roots: Sequence[str]) -> set[str]:
        """Paths whose content differs from the baseline: modified, deleted, or new.

        `candidates` limits the check to these paths (files or directories); None checks
        the whole tree. A new file counts when git does not ignore it, or when it lies
        under one of `tracked_roots`.
        """
        spec = ["--", *sorted(candidates)] if candidates is not None else ["--"]
        if candidates is not None and not candidates:
            return set()
        # Refresh first: it rehashes the files whose size or mtime moved and keeps those whose
        # content did not, so diff-files (which trusts the stat data) then lists real changes only.
        self._git("update-index", "-q", "--ignore-missing", "--unmerged", "--refresh", check=False)
        found = set(_split(self._git("diff-files", "--name-only", "-z", *spec)))
        found.update(_split(self._git("ls-files", "-z", "-o", "--exclude-standard", *spec)))
        roots = _under(candidates, tracked_roots) if candidates is not None else list(tracked_roots)
        if roots:
            found.update(_split(self._git("ls-files", "-z", "-o", "--", *roots)))
        return found

    def record(self, paths: Iterable[str]) -> None:
        """Make the current content of `paths` the baseline; a path that is gone leaves it."""
        entries = [p for p in paths if not _is_real_dir(self.root / p)]
        if not entries:
            return
        payload = b"".join(os.fsencode(p) + b"\0" for p in entries)
        args = ("update-index", "--add", "--remove", "--info-only", "-z", "--stdin")
        try:
            self._git(*args, stdin=payload)
        except MlciError:
            # One odd path (replaced by a directory mid-burst, unreadable) must not keep the
            # rest out of the baseline: record them one by one, skipping the odd ones.
            for entry in entries:
                self._git(*args, stdin=os.fsencode(entry) + b"\0", check=False)

    def digest(self) -> str:
        """A digest of the baseline's content: every path with its mode and blob hash (`git ls-files -s`)."""
        return hashlib.sha256(self._git("ls-files", "-s", "-z")).hexdigest()

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _under(candidates: Collection[str], roots: Sequence[str]) -> list[str]:
    """The candidates that lie in a tracked root, and the roots that lie in a candidate directory."""
    out: set[str] = set()
    for path in candidates:
        for root in roots:
            if path == root or path.startswith(root + "/"):
                out.add(path)
            elif root.startswith(path + "/"):
                out.add(root)
    return sorted(out)
