"""The watcher on real git (and DVC) repositories: one ChangeDetected per burst of real content changes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlci.engine.events import ChangeDetected, Notice
from mlci.engine.loop.watch import Watcher

from tests.dvc_init import dvc_init

TIMEOUT = 30.0
"""Generous: how long to wait for something that must come."""
QUIET = 1.5
"""How long to wait to be sure that something does not come (a negative wait)."""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def dvc(root: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        check=True,
        capture_output=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )


class Recorder:
    """Collects what the watcher reports, from its thread."""

    def __init__(self) -> None:
        self.changes: list[ChangeDetected] = []
        self.notices: list[Notice] = []
        self._cond = threading.Condition()

    def on_change(self, change: ChangeDetected) -> None:
        with self._cond:
            self.changes.append(change)
            self._cond.notify_all()

    def on_notice(self, notice: Notice) -> None:
        self.notices.append(notice)

    def wait_for(self, count: int) -> list[ChangeDetected]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.changes) >= count, TIMEOUT), (
                f"expected {count} change(s), got {self.changes}"
            )
            return list(self.changes)

    def wait_until_path(self, path: str) -> list[ChangeDetected]:
        with self._cond:
            assert self._cond.wait_for(lambda: any(path in c.paths for c in self.changes), TIMEOUT), (
                f"expected a change of {path}, got {self.changes}"
            )
            return list(self.changes)

    def settle(self) -> list[ChangeDetected]:
        """Everything reported, after a quiet wait in which more could have come."""
        with self._cond:
            self._cond.wait_for(lambda: False, QUIET)
            return list(self.changes)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "features.py").write_text("def scale(x):\n    return x * 2\n")
    (root / "README.md").write_text("# project\n")
    (root / ".gitignore").write_text("build/\n")
    git(root.parent, "init", "-q", "-b", "main", str(root))
    git(root, "config", "user.name", "t")
    git(root, "config", "user.email", "t@example.invalid")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    return root


WatchFactory = Callable[..., tuple[Watcher, Recorder]]


@pytest.fixture
def watch() -> Iterator[WatchFactory]:
    started: list[Watcher] = []

    def start(root: Path, **kwargs: object) -> tuple[Watcher, Recorder]:
        recorder = Recorder()
        watcher = Watcher(
            root, on_change=recorder.on_change, on_notice=recorder.on_notice, quiet_period_s=0.3, **kwargs
        )  # type: ignore[arg-type]
        watcher.start()
        started.append(watcher)
        assert watcher.wait_ready(TIMEOUT)
        return watcher, recorder

    yield start
    for watcher in started:
        watcher.stop()


def test_editing_a_tracked_file_is_one_change_with_that_path(repo: Path, watch: WatchFactory) -> None:
    _, seen = watch(repo)
    with (repo / "src" / "features.py").open("a") as f:
        f.write("# tuned\n")
    assert seen.wait_for(1)[0].paths == ("src/features.py",)
    assert len(seen.settle()) == 1
    assert seen.changes[0].head_moved is False


def test_a_touch_or_an_identical_rewrite_is_not_a_change(repo: Path, watch: WatchFactory) -> None:
    _, seen = watch(repo)
    os.utime(repo / "src" / "features.py")
    (repo / "README.md").write_bytes((repo / "README.md").read_bytes())
    assert seen.settle() == []


def test_an_editor_save_dance_is_one_change(repo: Path, watch: WatchFactory) -> None:
    _, seen = watch(repo)
    target = repo / "src" / "features.py"
    backup = repo / "src" / "features.py~"
    swap = repo / "src" / ".features.py.swp"
    swap.write_text("swap")
    backup.write_bytes(target.read_bytes())
    tmp = repo / "src" / ".features.py.tmp"
    tmp.write_text("def scale(x):\n    return x * 3\n")
    os.replace(tmp, target)
    backup.unlink()
    swap.unlink()
    assert seen.wait_for(1)[0].paths == ("src/features.py",)
    assert len(seen.settle()) == 1


def test_creating_and_deleting_files_are_changes(repo: Path, watch: WatchFactory) -> None:
    _, seen = watch(repo)
    (repo / "src" / "model.py").write_text("class Model: ...\n")
    (repo / "README.md").unlink()
    assert seen.wait_for(1)[0].paths == ("README.md", "src/model.py")
    assert len(seen.settle()) == 1


def test_a_checkout_touching_2000_files_is_exactly_one_change(repo: Path, watch: WatchFactory) -> None:
    git(repo, "checkout", "-q", "-b", "many")
    for i in range(2000):
        folder = repo / "data_gen" / f"d{i // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:04d}.txt").write_text(f"row {i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "2000 files")
    git(repo, "checkout", "-q", "main")
    _, seen = watch(repo)

    git(repo, "checkout", "-q", "many")

    (change,) = seen.wait_for(1)
    assert change.head_moved is True
    assert len(change.paths) == 2000
    assert change.paths[0] == "data_gen/d00/f0000.txt"
    assert len(seen.settle()) == 1


def test_a_commit_moves_head_without_changing_content(repo: Path, watch: WatchFactory) -> None:
    (repo / "README.md").write_text("# project, documented\n")
    _, seen = watch(repo)
    git(repo, "commit", "-q", "-am", "docs")
    (change,) = seen.wait_for(1)
    assert change == ChangeDetected((), head_moved=True, at=change.at)
    assert len(seen.settle()) == 1


def test_nothing_is_reported_while_index_lock_exists_then_exactly_once(repo: Path, watch: WatchFactory) -> None:
    _, seen = watch(repo)
    lock = repo / ".git" / "index.lock"
    lock.write_bytes(b"")
    (repo / "src" / "features.py").write_text("def scale(x):\n    return x * 4\n")
    (repo / "README.md").write_text("# changed under the lock\n")
    assert seen.settle() == []
    lock.unlink()
    assert seen.wait_for(1)[0].paths == ("README.md", "src/features.py")
    assert len(seen.settle()) == 1


def test_git_ignored_files_and_what_runs_write_never_count(repo: Path, watch: WatchFactory) -> None:
    _, seen = watch(repo)
    (repo / "build").mkdir()
    (repo / "build" / "wheel.txt").write_text("ignored by .gitignore")
    # Not in this project's .gitignore, and still never a change: stores and caches of the runs.
    (repo / "mlflow.db").write_bytes(b"sqlite")
    (repo / ".mlci").mkdir()
    (repo / ".mlci" / "history.sqlite").write_bytes(b"runs")
    (repo / "src" / "__pycache__").mkdir()
    (repo / "src" / "__pycache__" / "features.cpython-311.pyc").write_bytes(b"\0")
    (repo / "mlruns" / "0").mkdir(parents=True)
    (repo / "mlruns" / "0" / "meta.yaml").write_text("x")
    (repo / ".pytest_cache").mkdir()
    (repo / ".pytest_cache" / "README.md").write_text("x")
    # pytest's first run writes its cache in a temporary folder, then renames it.
    (repo / "pytest-cache-files-k2x9").mkdir()
    (repo / "pytest-cache-files-k2x9" / "README.md").write_text("x")
    assert seen.settle() == []


def test_suppressed_paths_never_trigger_and_their_writes_become_the_baseline(repo: Path, watch: WatchFactory) -> None:
    watcher, seen = watch(repo)
    watcher.suppress(["models/model"])
    (repo / "models" / "model").mkdir(parents=True)
    (repo / "models" / "model" / "weights.bin").write_bytes(b"epoch 1")
    (repo / "models" / "model" / "weights.bin").write_bytes(b"epoch 2")
    assert seen.settle() == []
    watcher.unsuppress(["models/model"])
    os.utime(repo / "models" / "model" / "weights.bin")
    assert seen.settle() == []
    # Watched again: a later edit by the user counts.
    (repo / "models" / "model" / "weights.bin").write_bytes(b"hand-edited")
    assert seen.wait_for(1)[0].paths == ("models/model/weights.bin",)


def test_polling_when_forced_says_so_and_still_sees_changes(repo: Path, watch: WatchFactory) -> None:
    watcher, seen = watch(repo, force_polling=True)
    assert watcher.polling is True
    assert [n.level for n in seen.notices] == ["warning"]
    assert "polling every" in seen.notices[0].text
    os.utime(repo / "README.md", ns=(1, 1))  # only the mtime moves: scanned, hashed, not a change
    (repo / "src" / "features.py").write_text("def scale(x):\n    return x * 5\n")
    assert seen.wait_for(1)[0].paths == ("src/features.py",)
    assert len(seen.settle()) == 1


def test_inotify_is_used_when_it_works(repo: Path, watch: WatchFactory) -> None:
    watcher, seen = watch(repo)
    assert watcher.polling is False
    assert seen.notices == []


def test_stop_is_idempotent_and_a_non_git_directory_is_refused(tmp_path: Path, repo: Path) -> None:
    watcher = Watcher(repo, on_change=lambda c: None)
    watcher.start()
    watcher.stop()
    watcher.stop()
    from mlci.engine.errors import MlciError

    with pytest.raises(MlciError, match="not a git repository"):
        Watcher(tmp_path, on_change=lambda c: None)


@pytest.fixture
def dvc_repo(repo: Path) -> Path:
    """The repo with DVC initialised and a data file tracked by `dvc add` (so git ignores it)."""
    dvc_init(repo)
    (repo / "data").mkdir()
    (repo / "data" / "raw.csv").write_text("a,b\n1,2\n")
    dvc(repo, "add", "-q", "data/raw.csv")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data")
    assert git(repo, "check-ignore", "data/raw.csv").strip() == "data/raw.csv"
    return repo


def test_dvc_tracked_data_is_watched_although_git_ignores_it(dvc_repo: Path, watch: WatchFactory) -> None:
    _, seen = watch(dvc_repo)
    data = dvc_repo / "data" / "raw.csv"
    os.utime(data)
    assert seen.settle() == []
    with data.open("a") as f:
        f.write("3,4\n")
    assert seen.wait_for(1)[0].paths == ("data/raw.csv",)
    assert len(seen.settle()) == 1


def test_a_new_dvc_add_is_watched_from_then_on(dvc_repo: Path, watch: WatchFactory) -> None:
    _, seen = watch(dvc_repo)
    (dvc_repo / "data" / "extra.csv").write_text("x\n1\n")
    dvc(dvc_repo, "add", "-q", "data/extra.csv")
    seen.wait_until_path("data/extra.csv.dvc")
    settled = len(seen.settle())
    with (dvc_repo / "data" / "extra.csv").open("a") as f:
        f.write("2\n")
    assert seen.wait_for(settled + 1)[-1].paths == ("data/extra.csv",)


def test_watching_writes_nothing_to_the_repository(dvc_repo: Path, watch: WatchFactory) -> None:
    status = git(dvc_repo, "status", "--porcelain")  # first: it may refresh the index itself
    index = (dvc_repo / ".git" / "index").read_bytes()
    objects = git(dvc_repo, "count-objects", "-v")
    watcher, seen = watch(dvc_repo)
    with (dvc_repo / "data" / "raw.csv").open("a") as f:
        f.write("5,6\n")
    (dvc_repo / "notes.txt").write_text("new, untracked\n")
    seen.wait_for(1)
    watcher.stop()
    assert (dvc_repo / ".git" / "index").read_bytes() == index
    assert git(dvc_repo, "count-objects", "-v") == objects
    assert git(dvc_repo, "status", "--porcelain") == status + "?? notes.txt\n"
