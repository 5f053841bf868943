"""The git state the header shows, read from real repositories."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import git as gitpython
import pytest
from mlci.engine.git.state import GitReadError, outgoing_commits, read_git_state

from tests.gitrepos import commit, git, isolated_git, make_clone, make_repo


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolated_git(monkeypatch, tmp_path)


def test_branch_upstream_ahead_behind_and_dirty(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path, push_first=True)
    other = make_clone(bare, tmp_path / "other")
    commit(other, "theirs.py", "T = 1\n", "theirs")
    git(other, "push", "-q", "origin", "main")
    git(work, "fetch", "-q", "origin")
    commit(work, "mine.py", "M = 1\n", "mine 1")
    commit(work, "mine2.py", "M = 2\n", "mine 2")
    (work / "README.md").write_text("changed\n")
    (work / "new.txt").write_text("untracked\n")

    state = read_git_state(work)

    assert state is not None
    assert state.branch == "main" and not state.detached
    assert state.upstream == "origin/main"
    assert (state.ahead, state.behind) == (2, 1)
    assert sorted(state.dirty) == ["README.md", "new.txt"]
    assert state.head == git(work, "rev-parse", "HEAD")[:8]
    assert state.operation is None


def test_new_branch_has_no_upstream(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path)
    state = read_git_state(work)
    assert state is not None and state.upstream is None and state.dirty == ()


def test_detached_head_and_rebase_in_progress(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path)
    git(work, "checkout", "-q", "-b", "feature")
    commit(work, "README.md", "# feature\n", "feature")
    git(work, "checkout", "-q", "main")
    commit(work, "README.md", "# main\n", "main")
    git(work, "checkout", "-q", "feature")
    git(work, "rebase", "main", check=False)  # conflicts: the rebase stops half-way

    state = read_git_state(work)

    assert state is not None
    assert state.detached and state.branch is None
    assert state.operation == "rebase"


def test_not_a_repository(tmp_path: Path) -> None:
    assert read_git_state(tmp_path) is None


def test_outgoing_commits_for_a_new_branch_exclude_what_the_remote_has(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path, push_first=True)
    git(work, "checkout", "-q", "-b", "feature")
    commit(work, "f.py", "F = 1\n", "feature work")
    with gitpython.Repo(work) as repo:
        out = outgoing_commits(repo, "origin", "feature")
    assert out.new_branch and out.total == 1
    assert [(c.subject, c.author) for c in out.commits] == [("feature work", "Ada Tester")]


# -- git, politely -----------------------------------------------------------------------------


def _stale_index(tmp_path: Path) -> tuple[Path, Path]:
    """A dirty repository whose index holds stale stat data: `git status` wants to rewrite the index."""
    work, _ = make_repo(tmp_path)
    for name in ("a.py", "b.py", "c.py"):
        commit(work, name, f"{name} = 1\n", f"add {name}")
    later = time.time() + 10
    for name in ("a.py", "b.py", "c.py"):
        os.utime(work / name, (later, later))  # same content, new mtime: only the index's stat cache is stale
    (work / "README.md").write_text("changed\n")
    return work, work / ".git" / "index"


def _identity_of(index: Path) -> tuple[int, int]:
    info = index.stat()
    return info.st_ino, info.st_mtime_ns


def test_reading_the_state_never_takes_the_index_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git writes a refreshed index as index.lock, then renames it over the index: a new inode is the trace."""
    monkeypatch.delenv("GIT_OPTIONAL_LOCKS", raising=False)
    work, index = _stale_index(tmp_path)
    before = _identity_of(index)

    state = read_git_state(work)

    assert state is not None and state.dirty == ("README.md",)
    assert _identity_of(index) == before
    assert not (work / ".git" / "index.lock").exists()

    # The control: a plain `git status` does take the lock and rewrite the index, so the check above can see it.
    env = {k: v for k, v in os.environ.items() if k != "GIT_OPTIONAL_LOCKS"}
    subprocess.run(["git", "status", "--porcelain"], cwd=work, env=env, capture_output=True, check=True)
    assert _identity_of(index) != before


def test_reading_the_state_works_while_the_user_holds_the_index_lock(tmp_path: Path) -> None:
    """A `git commit` in progress holds index.lock: the read neither fails nor disturbs it."""
    work, index = _stale_index(tmp_path)
    lock = work / ".git" / "index.lock"
    lock.write_bytes(index.read_bytes())
    state = read_git_state(work)
    assert state is not None and "README.md" in state.dirty
    assert lock.read_bytes() == index.read_bytes()


def _dubious(tmp_path: Path) -> Path:
    """A repository owned by another user: git refuses it ("dubious ownership") unless safe.directory says so."""
    if os.geteuid() != 0:
        pytest.skip("making a repository owned by another user needs root")
    work, _ = make_repo(tmp_path)
    for path in [work, *work.rglob("*")]:
        os.lchown(path, 4242, 4242)
    return work


def test_a_repository_of_dubious_ownership_is_one_clear_error(tmp_path: Path) -> None:
    work = _dubious(tmp_path)
    with pytest.raises(GitReadError) as caught:
        read_git_state(work)
    message = str(caught.value)
    assert message == " ".join(message.split())
    assert f"git cannot read {work}: detected dubious ownership in repository at '{work}'" in message
    assert f"git config --global --add safe.directory {work}" in message
    assert caught.value.exit_code == 2


def test_a_corrupt_index_is_one_clear_error(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path)
    (work / ".git" / "index").write_bytes(b"DIRC garbage")
    with pytest.raises(GitReadError, match=r"git cannot read .*: index file smaller than expected"):
        read_git_state(work)


def _mlci(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("command", [("ci", "status", "--once"), ("hooks", "install"), ("push",)])
def test_the_cli_on_a_repository_git_refuses_exits_2_with_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    work = _dubious(tmp_path)
    done = _mlci(work, *command)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "detected dubious ownership" in lines[0] and "safe.directory" in lines[0]
