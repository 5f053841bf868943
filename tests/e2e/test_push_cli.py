"""`mlci push` end to end: the real pre-push check (`mlci check`) on a tiny project, a real bare remote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitrepos import commit, git, isolated_git, make_clone, make_repo, refs, tiny_project

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolated_git(monkeypatch, tmp_path)


def _push(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", "push", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_a_failing_unit_test_blocks_the_push(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    tiny_project(work, failing=True)
    before_remote, before_local = refs(bare), refs(work)

    done = _push(work)

    assert done.returncode == 1
    assert "push main → origin" in done.stdout and "2 commits:" in done.stdout  # what would have gone
    assert done.stderr.startswith("mlci push: pre-push check failed (code tier: 1 failed: ")
    assert "tests/unit/test_math.py::test_rounding_is_broken" in done.stderr
    assert done.stderr.strip().endswith("nothing was pushed")
    assert refs(bare) == before_remote
    assert refs(work) == before_local


def test_a_green_branch_arrives_with_its_upstream(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    tiny_project(work, failing=False)

    done = _push(work)

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "push main → origin" in out and "new branch on origin: main will track origin/main" in out
    assert "unit tests" in out and "first commit" in out  # the commits, by subject
    assert "check: running the pre-push check" in out and "code  passed" in out
    assert "push: Writing objects" in out
    assert "done: pushed 2 commits to origin/main; main now tracks origin/main" in out
    assert git(bare, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
    assert git(work, "rev-parse", "--abbrev-ref", "main@{upstream}") == "origin/main"


def test_no_verify_pushes_without_the_check_and_says_so(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    tiny_project(work, failing=True)
    done = _push(work, "--no-verify")
    assert done.returncode == 0, done.stderr
    assert "pre-push check: SKIPPED (--no-verify)" in done.stdout
    assert "(pre-push check skipped: --no-verify)" in done.stdout
    assert "test_rounding_is_broken" not in done.stdout
    assert git(bare, "rev-parse", "main") == git(work, "rev-parse", "HEAD")


def test_non_fast_forward_and_missing_remote_are_one_line_each(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path, push_first=True)
    tiny_project(work, failing=False)
    other = make_clone(bare, tmp_path / "other")
    commit(other, "theirs.txt", "theirs\n", "their change")
    git(other, "push", "-q", "origin", "main")
    before = refs(work), git(work, "status", "--porcelain"), refs(bare)

    rejected = _push(work)
    assert rejected.returncode == 1
    assert rejected.stderr.count("\n") == 1 and "non-fast-forward" in rejected.stderr
    assert (refs(work), git(work, "status", "--porcelain"), refs(bare)) == before

    missing = _push(work, "--remote", "backup")
    assert missing.returncode == 1
    assert missing.stderr == (
        "mlci push: no remote named 'backup': the remotes are: origin (add one with `git remote add`)\n"
    )
    assert (refs(work), git(work, "status", "--porcelain"), refs(bare)) == before
