"""The pre-push check tests exactly what is pushed, changes nothing, and remembers what it proved.

Real git repositories and a real bare remote, real DVC, real pytest runs through `mlci`.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dvc_init import dvc_init
from tests.gitrepos import git, isolated_git, make_repo, refs, tiny_project

pytestmark = pytest.mark.e2e

FIXED_TEST = (
    "def test_addition():\n    assert 1 + 1 == 2\n\n\ndef test_rounding_is_broken():\n    assert round(2.5) == 2\n"
)
"""The red test of `tiny_project(failing=True)`, fixed (Python rounds half to even)."""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolated_git(monkeypatch, tmp_path)


def _mlci(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLCI_CHECKED_HEAD", "MLFLOW_TRACKING_URI")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def tree_digest(root: Path) -> dict[str, str]:
    """Every file of the working tree, ignored ones included, with its bytes' hash; and git's index.

    `.git` (but its index) and mlci's own `.mlci` (the history) are left out: the check may
    add to the history, and git's object store and worktree bookkeeping are not the tree.
    """
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.split("/")[0] in (".git", ".mlci") or path.is_dir():
            continue
        found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    found[".git/index"] = hashlib.sha256((root / ".git" / "index").read_bytes()).hexdigest()
    return found


def _worktrees(root: Path) -> list[str]:
    return [line for line in git(root, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


def test_a_broken_commit_is_refused_even_when_the_fix_sits_uncommitted(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    tiny_project(work, failing=True)  # the last commit breaks a unit test
    (work / "tests" / "unit" / "test_math.py").write_text(FIXED_TEST)  # the fix, not committed
    (work / "data").mkdir()
    (work / "data" / "big.bin").write_bytes(bytes(range(256)) * 64)  # ignored data: must stay as it is
    with (work / ".gitignore").open("a") as ignore:
        ignore.write("data/\n")
    before_tree, before_remote = tree_digest(work), refs(bare)

    done = _mlci(work, "push")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "in a temporary worktree (2 uncommitted files differ from" in done.stdout  # the test and .gitignore
    assert "tests/unit/test_math.py::test_rounding_is_broken" in done.stderr
    assert done.stderr.strip().endswith("nothing was pushed")
    assert refs(bare) == before_remote
    assert tree_digest(work) == before_tree
    assert len(_worktrees(work)) == 1  # the check's worktree is gone, and pruned


def test_a_good_commit_is_pushed_though_the_working_tree_is_broken(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    tiny_project(work, failing=False)
    (work / "tests" / "unit" / "test_math.py").write_text("def test_addition():\n    assert 1 + 1 == 3\n")
    (work / "tests" / "unit" / "test_scratch.py").write_text("def test_untracked():\n    assert False\n")
    before_tree = tree_digest(work)

    done = _mlci(work, "push")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "in a temporary worktree" in done.stdout
    # Nothing runs in that worktree after the check: no affected-tests-first there (every test would
    # count as affected), so no testmon tracing and no fingerprints written into a folder about to go.
    assert "affected" not in done.stdout and "▶ code" in done.stdout
    assert "done: pushed 2 commits to origin/main; main now tracks origin/main" in done.stdout
    assert git(bare, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
    assert git(work, "rev-parse", "--abbrev-ref", "main@{upstream}") == "origin/main"
    assert tree_digest(work) == before_tree
    assert len(_worktrees(work)) == 1


# --- DVC-tracked data: linked into the worktree, part of the content key -------------------------------

DATA_TEST = """
from pathlib import Path


def test_rows_are_complete():
    rows = Path("data/rows.csv").read_text().splitlines()
    assert rows[0] == "id,value"
    assert len(rows) == 4, rows
"""


def dvc_project(work: Path) -> Path:
    """A code and a data tier; the data tier reads `data/rows.csv`, which DVC tracks."""
    (work / "tests" / "unit").mkdir(parents=True)
    (work / "tests" / "unit" / "test_code.py").write_text("def test_code():\n    assert True\n")
    (work / "tests" / "data").mkdir(parents=True)
    (work / "tests" / "data" / "test_rows.py").write_text(DATA_TEST.lstrip())
    (work / "mlci.yaml").write_text("tiers:\n  code:\n    tests: [tests/unit]\n  data:\n    tests: [tests/data]\n")
    (work / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    (work / "data").mkdir()
    (work / "data" / "rows.csv").write_text("id,value\n1,10\n2,20\n3,30\n")
    dvc_init(work)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(
        [sys.executable, "-m", "dvc", "add", "-q", "data/rows.csv"], cwd=work, check=True, env=env, capture_output=True
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "data and its tests")
    return work


LINKED_TEST = """
import subprocess
import sys
from pathlib import Path


def test_dvc_in_the_worktree_reads_the_projects_cache_linked():
    def config(name):
        done = subprocess.run([sys.executable, "-m", "dvc", "config", name], capture_output=True, text=True)
        return done.stdout.strip()

    assert config("cache.type") == "reflink,hardlink,symlink"
    assert Path(config("cache.dir")).resolve() == Path({cache!r}).resolve()
"""


def test_the_commits_dvc_data_is_linked_into_the_worktree(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path, with_remote=False)
    dvc_project(work)
    (work / "tests" / "data" / "test_linked.py").write_text(LINKED_TEST.format(cache=str(work / ".dvc" / "cache")))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "the worktree's DVC settings, as DVC reads them")
    (work / "data" / "rows.csv").write_text("id,value\n")  # broken data, not committed (nor `dvc add`ed)
    (work / "README.md").write_text("# edited\n")
    before = tree_digest(work)

    done = _mlci(work, "check")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "in a temporary worktree" in done.stdout
    assert "✔ all green" in done.stdout
    assert "2 passed" in done.stdout  # the data tier: the rows, and DVC's settings in the worktree
    assert tree_digest(work) == before


def test_a_proven_content_answers_from_history_and_any_data_change_reruns(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path, with_remote=False)
    dvc_project(work)

    first = _mlci(work, "check")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "▶ code" in first.stdout and "▶ data" in first.stdout

    second = _mlci(work, "check")
    assert second.returncode == 0, second.stdout + second.stderr
    assert re.search(r"checked green at \d\d:\d\d on the same content", second.stdout), second.stdout
    assert "▶ code" not in second.stdout and "▶ data" not in second.stdout

    # One byte of the DVC-tracked data, committed: a different content, checked again.
    (work / "data" / "rows.csv").write_text("id,value\n1,10\n2,20\n3,31\n")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "add", "-q", "data/rows.csv"], cwd=work, check=True, env=env)
    git(work, "commit", "-q", "-am", "one byte of data")
    third = _mlci(work, "check")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "checked green at" not in third.stdout
    assert "▶ data" in third.stdout


def test_a_push_of_a_commit_already_checked_green_answers_at_once(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    tiny_project(work, failing=False)
    assert _mlci(work, "check").returncode == 0

    done = _mlci(work, "push")

    assert done.returncode == 0, done.stdout + done.stderr
    remembered = r"check: pre-push check passed \(\w{8} checked green at \d\d:\d\d on the same content"
    assert re.search(remembered, done.stdout), done.stdout
    assert "▶ code" not in done.stdout
    assert git(bare, "rev-parse", "main") == git(work, "rev-parse", "HEAD")
