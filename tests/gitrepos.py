"""Real git repositories for the push, hook and CI tests: a working clone and a bare remote in tmp dirs.

Every repository gets its own identity in its local config, and the tests isolate git from
the machine's global and system config (see `isolated_git`), so a credential helper or a
hooksPath set on the machine cannot change what a test sees.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

__all__ = ["commit", "git", "isolated_git", "make_clone", "make_repo", "refs", "tiny_project"]


def git(cwd: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {done.stderr}")
    return done.stdout.strip()


def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point git at an empty global config and no system config, for this test only."""
    empty = tmp_path / "gitconfig-global"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)


def _identity(repo: Path) -> None:
    git(repo, "config", "user.name", "Ada Tester")
    git(repo, "config", "user.email", "ada@example.com")
    git(repo, "config", "commit.gpgsign", "false")


def commit(repo: Path, path: str, content: str, message: str) -> str:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(base: Path, *, with_remote: bool = True, push_first: bool = False) -> tuple[Path, Path]:
    """A working repository `base/work` on branch main with one commit, and a bare `base/remote.git`.

    With `push_first`, main is already on the remote with its upstream set.
    """
    bare = base / "remote.git"
    work = base / "work"
    if with_remote:
        git(base, "init", "-q", "--bare", "-b", "main", str(bare))
    git(base, "init", "-q", "-b", "main", str(work))
    _identity(work)
    commit(work, "README.md", "# project\n", "first commit")
    if with_remote:
        git(work, "remote", "add", "origin", str(bare))
        if push_first:
            git(work, "push", "-q", "--no-verify", "-u", "origin", "main")
    return work, bare


def make_clone(bare: Path, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", str(bare), str(dest))
    _identity(dest)
    return dest


def refs(repo: Path) -> str:
    """Every ref of a repository with its SHA: compare before and after to prove nothing moved."""
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def tiny_project(work: Path, *, failing: bool) -> None:
    """A code-tier-only project: tests/unit with one passing test, and a failing one when asked."""
    (work / "tests" / "unit").mkdir(parents=True, exist_ok=True)
    (work / "tests" / "unit" / "test_math.py").write_text(
        "def test_addition():\n    assert 1 + 1 == 2\n"
        + ("\n\ndef test_rounding_is_broken():\n    assert round(2.5) == 3\n" if failing else "")
    )
    (work / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n.mlci/\n")
    git(work, "add", "tests", ".gitignore")
    git(work, "commit", "-q", "-m", "unit tests" + (" (one red)" if failing else ""))
