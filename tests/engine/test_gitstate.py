"""The git state the header shows, read from real repositories."""

from __future__ import annotations

from pathlib import Path

import git as gitpython
import pytest
from mlci.engine.git.state import outgoing_commits, read_git_state

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
