"""Watch the project: the git working tree plus DVC-tracked data, one `ChangeDetected` per burst.

    filesystem events (watchdog: inotify, or polling as a fallback)
        -> drop what never counts (.git internals, caches, the MLflow store, .mlci/, suppressed outputs)
        -> coalesce: wait for `quiet_period_s` without events, and while .git/index.lock exists
        -> content check against a private git index (fingerprint.py): a touch is not a change
        -> on_change(ChangeDetected(paths, head_moved))

Which files count is git's answer, not ours: tracked files, untracked files that git does
not ignore, and (git-ignored by design) the paths named in `*.dvc`, `dvc.yaml` and
`dvc.lock`. Filesystem events only say where to look; a burst of many events (a branch
switch) is checked against the whole tree in one go, so nothing depends on every single
event arriving.

Threads: the observer's thread(s) only file paths into a pending set; one coalescing
thread ("mlci-watch") does the checking and calls `on_change` and `on_notice`. The only
callback made on the caller's thread is the polling-fallback notice raised inside `start()`.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

from mlci.engine.config.patterns import PatternSet
from mlci.engine.errors import MlciError
from mlci.engine.events import ChangeDetected, Notice
from mlci.engine.git.state import find_git_dir
from mlci.engine.loop.dvc_outs import dvc_tracked_paths, is_dvc_metafile
from mlci.engine.loop.fingerprint import Fingerprints

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers.api import BaseObserver

__all__ = ["ALWAYS_IGNORED", "Watcher", "poll_interval"]

ALWAYS_IGNORED = PatternSet(
    [
        ".dvc/tmp/",
        ".dvc/cache/",
        "mlflow.db*",
        "mlruns/",
        "mlartifacts/",
        ".mlci/",
        "/.sandbox/",
        ".pytest_cache/",
        # pytest (8.1+) writes its cache's first files into this temporary folder and renames it
        # to .pytest_cache/: seen mid-way it is an untracked folder, which must neither plan a
        # run nor make the git header count a phantom uncommitted file.
        "pytest-cache-files-*/",
        "__pycache__/",
        "*.pyc",
        ".testmondata*",
        ".hypothesis/",
        ".mypy_cache/",
        ".ruff_cache/",
        ".coverage",
        ".coverage.*",
    ]
)
"""What runs and tools write for themselves: never a change, even when git does not ignore it."""

QUIET_PERIOD_S = 0.05
"""A burst ends after this long without an event, once every file written in it is closed. An
editor's save (write, or write a copy and rename) arrives within a few milliseconds; a file
still open for writing (a script writing a large CSV, slowed by a busy machine) holds the
burst until it is closed; a git operation is waited for through its index.lock. Every
millisecond here is added to every verdict (it was 0.25 s: 40 % of the first verdict on the
sample project)."""

OPEN_WRITE_HOLD_S = 2.0
"""A file written and not closed holds the burst only while its events keep coming within this:
a file held open for good (a log) must not stop the watching."""

FILES_PER_POLL_SECOND = 10_000
"""Polling stats every file on each scan (about 10 us each, in Python): one second between scans
per this many files keeps the fallback near a tenth of a core whatever the tree's size."""


def poll_interval(files: int) -> float:
    """Seconds between two scans of a tree of `files` files when inotify cannot be used."""
    return float(max(1, round(files / FILES_PER_POLL_SECOND)))


WHOLE_TREE_THRESHOLD = 256
"""A burst touching more paths than this (or moving HEAD) is checked against the whole tree."""

LOCK_RECHECK_S = 0.5
"""While .git/index.lock exists: how often to look again, in case its removal was not reported."""

STALE_LOCK_S = 60.0
"""After this long under .git/index.lock, say that the watcher is waiting (git may have crashed)."""

_GIT_SIGNALS = frozenset({".git/HEAD", ".git/packed-refs", ".git/index.lock"})
"""Inside .git, the files whose changes matter: HEAD moves, and a git operation in progress."""


class _Stat(NamedTuple):
    """The stat fields watchdog's polling snapshots compare, and no more: a third of the memory of a
    full `os.stat_result`, which counts when a snapshot holds one per file of the tree, twice."""

    st_mode: int
    st_ino: int
    st_dev: int
    st_size: int
    st_mtime: float


def _compact_stat(path: str) -> _Stat:
    # lstat: a symlink is content of its own (git tracks the link), and a link to a parent
    # directory must not send the scan round in circles.
    st = os.lstat(path)
    return _Stat(st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime)


def _event_types() -> list[type[FileSystemEvent]]:
    """Events that can mean new content. Opens, reads and attribute changes (touch) are not asked for."""
    from watchdog.events import (
        DirCreatedEvent,
        DirDeletedEvent,
        DirMovedEvent,
        FileClosedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
    )

    return [
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
        FileClosedEvent,
        DirCreatedEvent,
        DirDeletedEvent,
        DirMovedEvent,
    ]


def _inotify_room(path: Path) -> str | None:
    """None when inotify can add one more watch now; otherwise why not.

    watchdog skips, silently, the directories it cannot watch once the per-user watch
    limit is exhausted; a fresh watch failing with ENOSPC is how that shows.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        return os.strerror(ctypes.get_errno())
    try:
        if libc.inotify_add_watch(fd, os.fsencode(path), 0x100) < 0:  # IN_CREATE
            err = ctypes.get_errno()
            return _limit_reason(err) if err == errno.ENOSPC else os.strerror(err)
    finally:
        os.close(fd)
    return None


def _limit_reason(err: int) -> str:
    if err == errno.ENOSPC:
        try:
            limit = Path("/proc/sys/fs/inotify/max_user_watches").read_text(encoding="ascii").strip()
        except OSError:
            return "watch limit reached"
        return f"watch limit of {limit} reached, see fs.inotify.max_user_watches"
    if err == errno.EMFILE:
        return "too many inotify instances, see fs.inotify.max_user_instances"
    return os.strerror(err)


def _handler(sink: Callable[[FileSystemEvent], None]) -> FileSystemEventHandler:
    """A watchdog handler that hands every event to `sink`, on the observer's thread."""
    from watchdog.events import FileSystemEventHandler

    class _Handler(FileSystemEventHandler):
        def dispatch(self, event: FileSystemEvent) -> None:
            sink(event)

    return _Handler()


class Watcher:
    """Watches a git project and its DVC-tracked data; reports each burst of content changes once.

    Args:
        root: the project root (a git working tree).
        on_change: called on the watcher thread with one ChangeDetected per burst.
        on_notice: called with warnings (polling fallback, a stale index.lock) and errors.
        quiet_period_s: a burst ends when no event came for this long (None: `QUIET_PERIOD_S`).
        force_polling: poll even where inotify works.
    """

    def __init__(
        self,
        root: Path,
        *,
        on_change: Callable[[ChangeDetected], None],
        on_notice: Callable[[Notice], None] = lambda n: None,
        quiet_period_s: float | None = None,
        force_polling: bool = False,
    ) -> None:
        self.root = Path(root).resolve()
        git_dir = find_git_dir(self.root)
        if git_dir is None:
            raise MlciError(f"{self.root} is not a git repository: mlci watches a git working tree")
        self.git_dir = git_dir.resolve()
        self.on_change = on_change
        self.on_notice = on_notice
        self.quiet_period_s = QUIET_PERIOD_S if quiet_period_s is None else quiet_period_s
        self.force_polling = force_polling

        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._git_touched = False
        self._last_event = 0.0
        self._writing: set[str] = set()
        """Files written in this burst and not closed yet (inotify reports the close; polling cannot)."""
        self._refresh: list[str] = []
        self._suppressed: collections.Counter[str] = collections.Counter()
        self._stopping = False
        self._ready = threading.Event()

        self._observer: BaseObserver | None = None
        self._polling = False
        self._poll_interval = 0.0
        self._thread: threading.Thread | None = None
        self._fingerprints: Fingerprints | None = None
        self._roots: tuple[str, ...] = ()
        self._head = ("", "")
        self._root_prefix = str(self.root) + os.sep
        self._git_prefix = str(self.git_dir) + os.sep

    # -- public API -------------------------------------------------------------------------

    @property
    def polling(self) -> bool:
        """True when the tree is polled rather than watched through inotify."""
        return self._polling

    def start(self) -> None:
        """Start the observer and the watcher thread; the baseline is taken on that thread."""
        if self._thread is not None:
            return
        self._fingerprints = Fingerprints(self.root, self.git_dir)
        if self.force_polling:
            self._start_polling("polling forced")
        else:
            try:
                self._observer = self._start_observer(polling=False)
            except OSError as exc:
                self._start_polling(_limit_reason(exc.errno) if exc.errno else str(exc))
            else:
                reason = _inotify_room(self.root)
                if reason is not None:
                    self._stop_observer()
                    self._start_polling(reason)
        self._thread = threading.Thread(target=self._run, name="mlci-watch", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the baseline is taken (changes from then on are reported); False on timeout."""
        return self._ready.wait(timeout)

    def stop(self) -> None:
        """Stop watching and join every thread; safe to call twice, or from `on_change`."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        self._stop_observer()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._stop_observer()  # again: the thread may have swapped in a polling observer meanwhile
        if self._fingerprints is not None:
            self._fingerprints.close()

    def suppress(self, paths: Iterable[str]) -> None:
        """Ignore events under these project-relative paths (a running stage's outputs) until unsuppressed.

        Calls nest: a path stays suppressed until each `suppress` had its `unsuppress`.
        """
        with self._cond:
            self._suppressed.update(self._normalise(p) for p in paths)

    def unsuppress(self, paths: Iterable[str]) -> None:
        """Watch these paths again, taking what the run wrote there as the new baseline, silently."""
        with self._cond:
            for path in map(self._normalise, paths):
                if path not in self._suppressed:
                    continue
                self._suppressed[path] -= 1
                if self._suppressed[path] <= 0:
                    del self._suppressed[path]
                    self._refresh.append(path)
            self._cond.notify_all()

    # -- observer ---------------------------------------------------------------------------

    def _start_observer(self, *, polling: bool) -> BaseObserver:
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserverVFS

        observer: BaseObserver
        if polling:
            listdir, files = self._polling_listdir()
            self._poll_interval = poll_interval(files)
            stat = cast("Callable[[str], os.stat_result]", _compact_stat)  # duck-typed: see _Stat
            observer = PollingObserverVFS(stat, listdir, polling_interval=self._poll_interval)
        else:
            # watchdog 7 warns on stderr when a directory made during its recursive walk is watched twice
            # ("Callback with id ... already exists"): the watch is reused, nothing is lost, and the
            # line would land in the middle of `mlci watch`'s output or the dashboard.
            warnings.filterwarnings("ignore", r"Callback with id .* already exists", RuntimeWarning, "watchdog")
            observer = Observer()
        handler = _handler(self._on_fs_event)
        types = _event_types()
        observer.schedule(handler, str(self.root), recursive=True, event_filter=types)
        if not self.git_dir.is_relative_to(self.root):  # a linked worktree keeps HEAD elsewhere
            observer.schedule(handler, str(self.git_dir), recursive=True, event_filter=types)
        observer.daemon = True
        observer.start()
        return observer

    def _start_polling(self, reason: str) -> None:
        self._observer = self._start_observer(polling=True)
        self._polling = True
        self.on_notice(
            Notice("warning", f"inotify unavailable ({reason}): polling every {self._poll_interval:g} s", "watch")
        )

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer is not threading.current_thread():
                observer.join()

    def _git_paths(self, *args: str) -> list[str]:
        proc = subprocess.run(
            ["git", "ls-files", "-z", *args], cwd=self.root, capture_output=True, check=False, stdin=subprocess.DEVNULL
        )
        return [p for p in os.fsdecode(proc.stdout).split("\0") if p]

    def _polling_listdir(self) -> tuple[Callable[[str | None], Iterator[os.DirEntry[str]]], int]:
        """A scandir that skips what polling need not stat, and how many files git sees in the tree.

        Skipped: .git internals, caches, and git-ignored directories unless DVC tracks
        something in them.
        """
        roots = dvc_tracked_paths(self.root)
        skip = {
            str(self.root / d.rstrip("/"))
            for d in self._git_paths("-o", "-i", "--exclude-standard", "--directory")
            if d.endswith("/") and not any(r == d.rstrip("/") or r.startswith(d) for r in roots)
        }
        files = len(self._git_paths("-co", "--exclude-standard"))
        git_dir = str(self.git_dir)
        keep_in_git = {"HEAD", "packed-refs", "index.lock", "refs"}

        def listdir(path: str | None) -> Iterator[os.DirEntry[str]]:
            assert path is not None
            for entry in os.scandir(path):
                full = entry.path
                if full in skip:
                    continue
                if path == git_dir and entry.name not in keep_in_git:
                    continue
                if full.startswith(self._root_prefix) and entry.is_dir(follow_symlinks=False):
                    rel = full[len(self._root_prefix) :]
                    if rel != ".git" and ALWAYS_IGNORED.matches(rel + "/"):
                        continue
                yield entry

        return listdir, files

    # -- events (observer threads) ----------------------------------------------------------

    def _relative(self, raw: str) -> str | None:
        if raw.startswith(self._git_prefix):
            return ".git/" + raw[len(self._git_prefix) :].replace(os.sep, "/")
        if raw.startswith(self._root_prefix):
            return raw[len(self._root_prefix) :].replace(os.sep, "/")
        return None

    def _normalise(self, path: str) -> str:
        rel = self._relative(path) if os.path.isabs(path) else None
        return (rel if rel is not None else path).replace(os.sep, "/").strip("/")

    def _is_suppressed(self, rel: str) -> bool:
        return any(rel == s or rel.startswith(s + "/") for s in self._suppressed)

    def _on_fs_event(self, event: FileSystemEvent) -> None:
        raws = [event.src_path, getattr(event, "dest_path", "")]
        found: list[str] = []
        git = False
        for raw in raws:
            rel = self._relative(os.fsdecode(raw)) if raw else None
            if not rel:
                continue
            if rel == ".git" or rel.startswith(".git/"):
                git = git or rel in _GIT_SIGNALS or rel.startswith(".git/refs/heads/")
            elif not ALWAYS_IGNORED.matches(rel + "/" if event.is_directory else rel):
                found.append(rel)
        if not found and not git:
            return
        with self._cond:
            found = [rel for rel in found if not self._is_suppressed(rel)]
            if not found and not git:
                return
            if not event.is_directory and not self._polling:
                if event.event_type in ("created", "modified"):
                    self._writing.update(found)
                else:  # closed, deleted, or moved: the content is whole, or gone
                    self._writing.difference_update(found)
            self._pending.update(found)
            self._git_touched = self._git_touched or git
            self._last_event = time.monotonic()
            self._cond.notify_all()

    # -- the watcher thread -----------------------------------------------------------------

    @property
    def _fp(self) -> Fingerprints:
        assert self._fingerprints is not None, "start() creates the baseline"
        return self._fingerprints

    def _run(self) -> None:
        try:
            self._roots = dvc_tracked_paths(self.root)
            self._head = self._read_head()
            self._fp.build(self._roots)
        except (OSError, MlciError) as exc:
            self.on_notice(Notice("error", f"watch: cannot take the baseline of the tree: {exc}", "watch"))
        self._ready.set()
        while True:
            job = self._next_job()
            if job is None:
                return
            kind, paths, git = job
            try:
                if kind == "refresh":
                    self._refresh_baseline(paths)
                else:
                    self._process(paths, git)
            except (OSError, MlciError) as exc:
                self.on_notice(Notice("error", f"watch: {exc}", "watch"))
            except Exception as exc:  # a bug must not end the watching silently: say it, keep watching
                self.on_notice(Notice("error", f"watch: internal error: {type(exc).__name__}: {exc}", "watch"))

    def _next_job(self) -> tuple[str, set[str], bool] | None:
        """Wait for the next thing to do: a baseline refresh, or a burst that has gone quiet."""
        lock_file = self.git_dir / "index.lock"
        locked_since: float | None = None
        with self._cond:
            while not self._stopping:
                if self._refresh:
                    paths, self._refresh = set(self._refresh), []
                    return "refresh", paths, False
                if not self._pending and not self._git_touched:
                    self._cond.wait()
                    continue
                remaining = self._last_event + self.quiet_period_s - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                held = self._last_event + OPEN_WRITE_HOLD_S - time.monotonic()
                if self._writing and held > 0:
                    self._cond.wait(held)  # a close event (or the hold running out) wakes this
                    continue
                if lock_file.exists():
                    now = time.monotonic()
                    if locked_since is None:
                        locked_since = now
                    elif locked_since > 0 and now - locked_since > STALE_LOCK_S:
                        locked_since = -1.0  # said once per wait
                        self.on_notice(
                            Notice(
                                "warning",
                                f"waiting for {lock_file} to go (a git operation is running, or crashed)",
                                "watch",
                            )
                        )
                    self._cond.wait(LOCK_RECHECK_S)
                    continue
                paths, self._pending = self._pending, set()
                self._writing.clear()
                git, self._git_touched = self._git_touched, False
                return "burst", paths, git
        return None

    def _read_head(self) -> tuple[str, str]:
        """(what HEAD points at, the commit it resolves to): either moving is a HEAD change."""
        try:
            ref = (self.git_dir / "HEAD").read_text(encoding="utf-8").strip()
        except OSError:
            ref = ""
        proc = subprocess.run(
            ["git", "rev-parse", "-q", "--verify", "HEAD^{commit}"],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return ref, proc.stdout.strip()

    def _counts(self, rel: str) -> bool:
        return not ALWAYS_IGNORED.matches(rel) and not self._is_suppressed(rel)

    def _process(self, pending: set[str], git: bool) -> None:
        moved = False
        if git:
            head = self._read_head()
            moved, self._head = head != self._head, head
        whole = moved or len(pending) > WHOLE_TREE_THRESHOLD
        changed = self._fp.changed(None if whole else pending, self._roots)
        with self._cond:
            changed = {p for p in changed if self._counts(p)}
        self._fp.record(changed)
        if any(is_dvc_metafile(p) for p in changed):
            self._reload_roots()
        if not self._polling and not self._stopping:
            reason = _inotify_room(self.root)
            if reason is not None:
                self._stop_observer()
                self._start_polling(reason)
        if changed or moved:
            try:
                self.on_change(ChangeDetected(tuple(sorted(changed)), head_moved=moved))
            except Exception as exc:  # the watcher outlives a broken consumer, and says so
                self.on_notice(Notice("error", f"watch: the change handler failed: {exc!r}", "watch"))

    def _reload_roots(self) -> None:
        """The DVC files changed: watch what they name now; new paths join the baseline silently."""
        old, self._roots = set(self._roots), dvc_tracked_paths(self.root)
        new = [r for r in self._roots if r not in old]
        if new:
            self._fp.record(self._fp.changed(new, new))

    def _refresh_baseline(self, paths: set[str]) -> None:
        changed = self._fp.changed(paths, self._roots)
        with self._cond:
            changed = {p for p in changed if self._counts(p)}
        self._fp.record(changed)
