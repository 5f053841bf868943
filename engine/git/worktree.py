"""A commit, apart from the user's working tree: a temporary `git worktree`, and whether the tree already equals it.

The pre-push check must test exactly what is pushed. When the working tree is that commit
(HEAD there, nothing staged, modified or untracked) it can run in place; otherwise it runs
in a detached worktree at the commit, in a temporary directory, removed (and pruned from
`.git/worktrees`) afterwards. Neither touches the user's index, refs or files. Reads run
with `GIT_OPTIONAL_LOCKS=0`, so `git status` never takes `.git/index.lock` from under the
user's own git commands.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mlci.engine.errors import MlciError

__all__ = ["git_env", "resolve_commit", "temporary_worktree", "tree_of", "working_tree_differs"]

_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX")
"""Set by git for a hook: they would point a command run in the worktree back at the user's repository."""


def git_env() -> dict[str, str]:
    """The environment for git (and for what runs in a worktree): no repository overrides, no optional locks."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    return env


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False, env=git_env(), timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MlciError(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        said = next((line for line in done.stderr.splitlines() if line.strip()), "").strip()
        raise MlciError(f"git {args[0]} failed in {root}: {said or f'exit status {done.returncode}'}")
    return done.stdout


def resolve_commit(root: Path, rev: str) -> str:
    """The full SHA of `rev` (a branch, HEAD, a SHA); one line when it names no commit."""
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except MlciError:
        raise MlciError(f"{rev!r} names no commit in {root}") from None


def tree_of(root: Path, sha: str) -> str:
    """The SHA of the commit's tree: its whole tracked content (sources, .dvc files, dvc.lock, params)."""
    return _git(root, "rev-parse", f"{sha}^{{tree}}").strip()


def working_tree_differs(root: Path, sha: str) -> str:
    """Why the working tree is not exactly `sha` ("" when it is): HEAD elsewhere, or uncommitted files.

    Untracked files count (an untracked test would be collected); ignored files do not (DVC
    data is git-ignored: the caller compares it against the commit's `.dvc` files and `dvc.lock`).
    """
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").strip()
    if head != sha:
        return f"HEAD is {head[:8]}, not {sha[:8]}"
    status = _git(root, "status", "--porcelain", "--untracked-files=normal", "--ignore-submodules=none")
    dirty = [line for line in status.splitlines() if line.strip()]
    if dirty:
        noun = "file differs" if len(dirty) == 1 else "files differ"
        return f"{len(dirty)} uncommitted {noun} from {sha[:8]}"
    return ""


@contextlib.contextmanager
def temporary_worktree(root: Path, sha: str) -> Iterator[Path]:
    """A detached worktree of `sha` in a temporary directory; removed, and pruned, on exit."""
    base = Path(tempfile.mkdtemp(prefix="mlci-check-"))
    path = base / root.name  # the project's own folder name: some tools derive names from it
    try:
        _git(root, "worktree", "add", "--detach", "--quiet", str(path), sha)
        yield path
    finally:
        with contextlib.suppress(MlciError):
            _git(root, "worktree", "remove", "--force", "--force", str(path))
        shutil.rmtree(base, ignore_errors=True)
        with contextlib.suppress(MlciError):
            _git(root, "worktree", "prune")
