"""Read the git state of a project (branch, upstream, ahead/behind, dirty, operation) via GitPython.

Read-only by construction: nothing here writes to the working tree, the index or refs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.engine.events import GitState

if TYPE_CHECKING:
    import git

__all__ = [
    "OPERATION_MARKERS",
    "Commit",
    "Outgoing",
    "find_git_dir",
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
    """The project's git state, or None when it is not a git repository."""
    import git  # GitPython: imported here so `mlci --help` stays fast

    try:
        repo = git.Repo(root, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    with repo:
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
        dirty = tuple(
            line[3:] for line in repo.git.status("--porcelain", "--untracked-files=normal").splitlines() if line
        )
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
