"""Read the git state of a project (branch, upstream, ahead/behind, dirty, operation) via GitPython.

Read-only by construction: nothing here writes to the working tree, the index or refs, and
not even git's own bookkeeping: every git command runs with `GIT_OPTIONAL_LOCKS=0`, so
`git status` does not refresh the index and never takes `.git/index.lock` (which would make
the user's own `git commit` fail while we read). Every way git can fail to read (dubious
ownership, a corrupt repository, git missing) is one `GitReadError` line, with git's own
reason: exit 2 in the CLI, a notice in the dashboard.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.engine.errors import MlciError
from mlci.engine.events import GitState

if TYPE_CHECKING:
    import git

__all__ = [
    "GIT_READ_ENV",
    "OPERATION_MARKERS",
    "Commit",
    "GitReadError",
    "Outgoing",
    "find_git_dir",
    "git_failure",
    "open_repo",
    "operation_in_progress",
    "outgoing_commits",
    "read_git_state",
]

OPERATION_MARKERS: tuple[tuple[str, str], ...] = (
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase"),
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
    ("BISECT_LOG", "bisect"),
)
"""Files git leaves in its directory while an operation is under way, and the operation's name."""

GIT_READ_ENV: Mapping[str, str] = {"GIT_OPTIONAL_LOCKS": "0"}
"""The environment of every git read: no optional locks, so no `index.lock` taken behind the user's back."""

_DIAGNOSE_TIMEOUT_S = 10.0


class GitReadError(MlciError):
    """git could not read the repository (dubious ownership, corruption, git missing). Exit code 2."""

    exit_code = 2


def _git_reason(stderr: str) -> str:
    """git's own reason, on one line: its `fatal:`/`error:` line, with the safe.directory advice when it gives one."""
    stderr = stderr.strip()
    if stderr.startswith("stderr: '"):  # GitCommandError.stderr quotes git's own output
        stderr = stderr.removeprefix("stderr: '").removesuffix("'")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith(("fatal:", "error:"))), lines[0] if lines else "")
    reason = reason.removeprefix("fatal:").removeprefix("error:").strip()
    advice = next((line for line in lines if "safe.directory" in line and line.startswith("git config")), None)
    return f"{reason} (to trust it: {advice})" if advice else reason


def git_failure(root: Path, exc: BaseException | None = None) -> GitReadError:
    """One clear line for a failed git read of `root`: git's own reason, asking git again when `exc` hides it.

    GitPython's failures are many (GitCommandError with git's stderr, but also a BrokenPipeError
    or a ValueError when its long-running `git cat-file` died at once), so a plain
    `git rev-parse` is run to hear what git says about the repository.
    """
    reason = _git_reason(str(getattr(exc, "stderr", "") or ""))
    if not reason:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
                capture_output=True,
                text=True,
                env={**os.environ, **GIT_READ_ENV},
                timeout=_DIAGNOSE_TIMEOUT_S,
                check=False,
            )
            reason = _git_reason(done.stderr)
        except (OSError, subprocess.TimeoutExpired) as diagnose_exc:
            reason = f"cannot run git ({diagnose_exc})"
    if not reason:
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown failure"
    return GitReadError(" ".join(f"git cannot read {Path(root).absolute()}: {reason}".split()))


def open_repo(root: Path, *, search_parent_directories: bool = False) -> git.Repo | None:
    """The repository at `root`, every git command it runs set for reading; None when it is not one.

    Raises:
        GitReadError: git refuses to read it (dubious ownership, a corrupt `.git`).
    """
    import git  # GitPython: imported here so `mlci --help` stays fast

    try:
        repo = git.Repo(root, search_parent_directories=search_parent_directories)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    except (git.GitError, OSError, ValueError) as exc:
        raise git_failure(root, exc) from None
    repo.git.update_environment(**GIT_READ_ENV)
    try:
        # GitPython opens a repository without asking git; git may still refuse it (dubious
        # ownership), and GitPython's later failures would not say why: ask once, here.
        repo.git.rev_parse("--git-dir")
    except (git.GitError, OSError) as exc:
        repo.close()
        raise git_failure(root, exc) from None
    return repo


def find_git_dir(root: Path) -> Path | None:
    """The .git directory of the repository at `root` (following a worktree's `.git` file)."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():
        text = dot_git.read_text(encoding="utf-8").strip()
        if text.startswith("gitdir:"):
            target = Path(text.split(":", 1)[1].strip())
            return target if target.is_absolute() else (root / target).resolve()
    return None


def operation_in_progress(git_dir: Path) -> str | None:
    for marker, name in OPERATION_MARKERS:
        if (git_dir / marker).exists():
            return name
    return None


def read_git_state(root: Path) -> GitState | None:
    """The project's git state, or None when it is not a git repository.

    Raises:
        GitReadError: git cannot read it (dubious ownership, corruption, git missing).
    """
    import git

    repo = open_repo(root)
    if repo is None:
        return None
    try:
        with repo:
            return _read_state(repo)
    except (git.GitError, OSError, ValueError) as exc:
        raise git_failure(root, exc) from None


def _read_state(repo: git.Repo) -> GitState:
    try:
        head = repo.head.commit.hexsha[:8]
    except ValueError:  # a repository with no commit yet
        head = ""
    branch: str | None
    try:
        branch = repo.active_branch.name
    except TypeError:  # detached HEAD
        branch = None
    upstream = None
    ahead = behind = 0
    if branch is not None and head:
        tracking = repo.active_branch.tracking_branch()
        if tracking is not None and tracking.is_valid():
            upstream = tracking.name
            counts = repo.git.rev_list("--left-right", "--count", f"{tracking.name}...HEAD")
            behind_s, ahead_s = counts.split()
            ahead, behind = int(ahead_s), int(behind_s)
        elif tracking is not None:
            upstream = tracking.name
    dirty = tuple(line[3:] for line in repo.git.status("--porcelain", "--untracked-files=normal").splitlines() if line)
    operation = operation_in_progress(Path(repo.git_dir))
    return GitState(
        branch=branch, head=head, upstream=upstream, ahead=ahead, behind=behind, dirty=dirty, operation=operation
    )


@dataclass(frozen=True)
class Commit:
    """One commit as the push confirmation lists it."""

    sha: str
    """Short SHA."""
    subject: str
    author: str


@dataclass(frozen=True)
class Outgoing:
    """The commits a push of `branch` to `remote` would send, judged from the local remote-tracking refs."""

    remote_ref: str
    """The remote-tracking ref compared against (`origin/main`); empty for a new branch."""
    commits: tuple[Commit, ...]
    """Newest first, at most `limit` of them."""
    total: int
    """How many commits would be sent in all (may exceed len(commits))."""

    @property
    def new_branch(self) -> bool:
        return not self.remote_ref


def outgoing_commits(repo: git.Repo, remote: str, branch: str, *, limit: int = 50) -> Outgoing:
    """The commits on `branch` that `remote` does not have yet, as far as the last fetch knows.

    For a branch the remote already has, that is `<remote>/<branch>..<branch>`; for a new
    branch, every commit not on any of the remote's refs (what `git push` would upload).
    """
    tracking = f"refs/remotes/{remote}/{branch}"
    exists = bool(repo.git.for_each_ref(tracking, format="%(refname)"))
    if exists:
        selector = [f"{remote}/{branch}..refs/heads/{branch}"]
        remote_ref = f"{remote}/{branch}"
    else:
        selector = [f"refs/heads/{branch}", "--not", f"--remotes={remote}"]
        remote_ref = ""
    total = int(repo.git.rev_list("--count", *selector))
    log = repo.git.log(f"--max-count={limit}", "--format=%h%x00%s%x00%an", *selector)
    commits = tuple(Commit(*line.split("\x00", 2)) for line in log.splitlines() if line)
    return Outgoing(remote_ref=remote_ref, commits=commits, total=total)
