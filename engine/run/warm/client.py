"""Start, reach and restart the warm servers; run one pytest (or the gates child) in a forked child of one of them.

One server per (project, tier, interpreter) at most, owned by this mlci process: it exits
when mlci does (its socket closes), when it has run nothing for the idle timeout, or when
`stop_servers` is called. `lease` is the runner's one entry point:

* no server yet (or it exited idle): start one and wait for it to preload (the first run
  pays the warm-up once, then runs warm);
* what it preloaded may have changed since it started (installed packages, lock and
  requirements files, pytest's config, a `conftest.py`, the tier's environment): restart it
  in the background, and this run is cold;
* it is still preloading after such a restart: this run is cold;
* a preloaded module is not fork-safe (it started a thread, or initialised CUDA): the
  server reports it and exits, and is started again without that module;
* a run imported third-party modules the server had not (a test that calls
  `torch.use_deterministic_algorithms` imports `torch._dynamo`, 1.7 s): a replacement
  server that preloads them too starts in the background as soon as that run ends, while
  the old one keeps serving (it is still right, only slower); the first run that finds the
  replacement ready switches to it. What was learned is kept (`warm.learned`: in the project's
  `.mlci/warm/`, and in the user's cache for the project's copies), so the next mlci session's
  first server preloads it from the start, as does the first server of a fresh clone or worktree;
* anything else that goes wrong: this run is cold, with a notice that says why.

A `WarmProcess` has the interface of `GroupProcess` (start, wait, pgid, tail), so the tier's
verdict, timeout and cancel work the same on both.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.engine.run.file_bell import FileBell
from mlci.engine.run.process_group import BATCH_S, KILL_GRACE_S, Ending, Outcome, StreamedOutput, kill_group
from mlci.engine.run.run_token import new_token, with_token
from mlci.engine.run.warm.learned import load_learned, save_learned
from mlci.engine.run.warm.preload import conftests

__all__ = [
    "Lease",
    "ServerStatus",
    "WarmProcess",
    "WarmServer",
    "WarmUnavailable",
    "lease",
    "release",
    "server_statuses",
    "stop_servers",
    "wait_for_replacements",
]

SERVER_MODULE = "mlci.engine.run.warm.server"
MAX_VIOLATIONS = 5
"""Restarts without a module that is not fork-safe, before the warm runner gives up for this session."""
START_REPLY_S = 10.0
"""How long the server may take to say it forked a run."""
ROOT_FILES = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "pytest.ini",
    "tox.ini",
    "Pipfile",
    "environment.yml",
    "environment.yaml",
    "poetry.lock",
    "Pipfile.lock",
    "uv.lock",
    "pdm.lock",
    "pixi.lock",
    "conda-lock.yml",
)
ROOT_GLOBS = ("requirements*.txt", "requirements/*.txt", "constraints*.txt")
"""What a project's installed environment is declared in: when one changes, the server may hold stale modules.
The lock files by name, not `*.lock`: DVC's `dvc.lock` changes with every training and says nothing of
the installed packages (it restarted every tier's server after each retrain)."""


class WarmUnavailable(Exception):
    """The warm runner cannot serve this run; the message says why (the run goes cold)."""


@dataclass(frozen=True)
class ServerStatus:
    """A running warm server, as `mlci runner` and `mlci config` show it."""

    pid: int
    root: str
    tier: str
    interpreter: str
    warmup_s: float
    preloaded: tuple[str, ...]
    rss_bytes: int | None
    """Its resident memory now (None when /proc cannot tell)."""


def _runtime_dir() -> Path:
    path = Path(tempfile.gettempdir()) / f"mlci-{os.getuid()}" / "warm"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _stat(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "absent"
    return f"{st.st_mtime_ns}:{st.st_size}"


def site_state(site_dirs: Sequence[str]) -> dict[str, str]:
    """The installed packages, cheaply: installing or removing one changes its site-packages directory's mtime."""
    return {f"the installed packages ({site})": _stat(Path(site)) for site in site_dirs}


def freshness(root: Path, tests: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """What a server's preloaded state depends on besides the installed packages, one entry per thing that can
    change (compared entry by entry).

    The environment counts without mlci's own per-run variables (`MLCI_*`).
    """
    key = {k: v for k, v in sorted(env.items()) if not k.startswith("MLCI_")}
    out = {"the tier's environment variables": hashlib.sha256(json.dumps(key).encode()).hexdigest()}
    files = [root / name for name in ROOT_FILES]
    for pattern in ROOT_GLOBS:
        files.extend(root.glob(pattern))
    files.extend(conftests(root, tests))
    for path in files:
        out[path.relative_to(root).as_posix()] = _stat(path)
    return out


def _changed(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


class _Server:
    """One server process, as its client sees it."""

    def __init__(
        self,
        *,
        interpreter: str,
        root: Path,
        tier: str,
        env: Mapping[str, str],
        modules: Sequence[str],
        idle_s: float,
        fresh: dict[str, str],
    ) -> None:
        self.root = root
        self.tier = tier
        self.interpreter = interpreter
        self.fresh = fresh
        self.modules = tuple(modules)
        self.ready: dict[str, Any] | None = None
        self.violation: tuple[tuple[str, ...], str, str] | None = None
        """(modules, what they did, notice level): the server exited, to be restarted without them."""
        self.busy = False
        self.started = time.monotonic()
        self.learned: set[str] = set()
        """Modules its runs imported that it had not preloaded (the "learned" of the exit messages)."""
        self.last_request: dict[str, Any] | None = None
        """The last run it was asked for: its replacement prepares its spare child for the same."""
        self._buffer = b""
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # One per server: a replacement runs beside the server it replaces.
        fd, log_name = tempfile.mkstemp(prefix=f"{_key_name(root, tier)}-", suffix=".log", dir=_runtime_dir())
        os.close(fd)
        self._log = Path(log_name)
        self.state_file = _runtime_dir() / f"{_key_name(root, tier)}.json"
        # Where the server's children leave what they learned. Made and removed here, not by the
        # server: a server killed with SIGKILL (mlci killed, a hung stop) cannot clean up after itself.
        self._learned_dir = Path(tempfile.mkdtemp(prefix=f"{_key_name(root, tier)}-learned-", dir=_runtime_dir()))
        server_env = {k: v for k, v in env.items() if not k.startswith("MLCI_")}
        try:
            with self._log.open("wb") as log:
                self.proc = subprocess.Popen(
                    [
                        interpreter,
                        "-m",
                        SERVER_MODULE,
                        str(theirs.fileno()),
                        str(root),
                        f"{idle_s:g}",
                        str(self._learned_dir),
                        *modules,
                    ],
                    cwd=root,
                    env=server_env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    pass_fds=(theirs.fileno(),),
                    # Its own session: a Ctrl-C meant for mlci's terminal must not reach it; mlci stops it.
                    start_new_session=True,
                )
        finally:
            theirs.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = [line for line in self._log.read_text(errors="replace").splitlines() if line.strip()]
            if lines:
                return lines[-1].strip()
        return ""

    def read_message(self, timeout: float, wake: int | None = None) -> dict[str, Any] | None:
        """The next JSON line from the server, or None when none came within `timeout` (or `wake`, a file
        descriptor, became readable first); raises EOFError when the socket closed."""
        end = time.monotonic() + timeout
        watched: list[socket.socket | int] = [self.sock] if wake is None else [self.sock, wake]
        while b"\n" not in self._buffer:
            left = end - time.monotonic()
            readable, _, _ = select.select(watched, [], [], max(0.0, left))
            if not readable or self.sock not in readable:
                return None
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def poll_ready(self, timeout: float) -> bool:
        """Whether the server has preloaded (waiting up to `timeout`); raises WarmUnavailable if it failed."""
        if self.ready is not None:
            return True
        try:
            message = self.read_message(timeout)
        except (EOFError, OSError, ValueError):
            message = None
            self.proc.wait(timeout=KILL_GRACE_S)
        if message is None:
            if self.alive:
                return False
            tail = self.log_tail()
            raise WarmUnavailable(f"the warm server exited while preloading{': ' + tail if tail else ''}")
        if "violation" in message:
            self.violation = (
                tuple(str(m) for m in message["violation"]),
                str(message["what"]),
                str(message.get("level", "warning")),
            )
            self.stop()
            return False
        self.ready = message
        self.fresh.update(site_state(self.site_dirs))
        self._write_state()
        return True

    def _write_state(self) -> None:
        assert self.ready is not None
        state = {
            "pid": self.pid,
            "owner": os.getpid(),
            "root": str(self.root),
            "tier": self.tier,
            "interpreter": self.interpreter,
            "warmup_s": self.ready.get("warmup_s", 0.0),
            "preloaded": self.ready.get("preloaded", []),
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(self.state_file)

    @property
    def site_dirs(self) -> list[str]:
        paths = self.ready.get("sys_path", []) if self.ready else []
        return [p for p in paths if isinstance(p, str) and ("site-packages" in p or "dist-packages" in p)]

    def prepare(self, request: dict[str, Any] | None) -> None:
        """Have it prepare a spare child for `request` as soon as it has preloaded (see `warm.server`)."""
        if request is not None:
            with contextlib.suppress(OSError):
                self.sock.sendall(json.dumps({"prepare": request}).encode() + b"\n")

    def stop(self) -> None:
        """Close its socket (it kills its running child's group and exits) and make sure it is gone."""
        with contextlib.suppress(OSError):
            self.sock.close()
        try:
            self.proc.wait(timeout=KILL_GRACE_S + 1)
        except subprocess.TimeoutExpired:
            kill_group(self.proc.pid, leader=self.proc)
        shutil.rmtree(self._learned_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._log.unlink()  # read (log_tail) before a failed server is stopped; one per project otherwise stays
        with contextlib.suppress(OSError):
            state = json.loads(self.state_file.read_text())
            if state.get("pid") == self.pid:
                self.state_file.unlink()


def _key_name(root: Path, tier: str) -> str:
    return f"{hashlib.sha256(str(root).encode()).hexdigest()[:12]}-{tier}"


@dataclass(frozen=True)
class Lease:
    """What `lease` decided: a server to run on (or None: run cold), and what to tell the user."""

    server: _Server | None
    notices: tuple[tuple[str, str], ...] = ()
    """(level, text) pairs."""


@dataclass(frozen=True)
class _Start:
    """What starting a server for one (project, tier) takes."""

    root: Path
    tier: str
    tests: Sequence[str]
    env: Mapping[str, str]
    idle_s: float
    modules: Callable[[], Sequence[str]]


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[tuple[str, str, str], _Server] = {}
        self._excluded: dict[tuple[str, str, str], set[str]] = {}
        self._violations: dict[tuple[str, str, str], int] = {}
        self._starts: dict[tuple[str, str, str], _Start] = {}
        """How the key's server was last started: a replacement starts the same way."""
        self._replacements: dict[tuple[str, str, str], _Server] = {}
        """Servers preloading in the background what the runs learned, to take over once ready."""
        self._reached: dict[tuple[str, str, str], tuple[str, ...]] = {}
        """What the key's tests reach (`preload`), as its last server read it: it names the learned lists' copies."""

    def lease(
        self,
        *,
        interpreter: str,
        root: Path,
        tier: str,
        tests: Sequence[str],
        env: Mapping[str, str],
        idle_s: float,
        deadline: float,
        stop: threading.Event,
        modules: Callable[[], Sequence[str]],
    ) -> Lease:
        key = (interpreter, str(root), tier)
        with self._lock:
            notices: list[tuple[str, str]] = []
            server = self._servers.get(key)
            if server is not None and server.busy:
                return Lease(None, (("info", "warm runner: the server is busy with another run; this run is cold"),))
            if server is not None and not server.alive and server.ready is not None:
                server.stop()  # exited idle (or was killed): start a fresh one below
                del self._servers[key]
                server = None
            blocking = server is None
            start = self._starts[key] = _Start(root, tier, tests, env, idle_s, modules)
            if server is None:
                self._drop_replacement(key)
                server = self._start(key, start)
                notices.append(("info", f"warm runner: starting the {tier} tier's server (preloading)"))
            else:
                # A server still preloading is checked too (its packages' state is taken once it is ready).
                current = freshness(root, tests, env)
                if server.ready is not None:
                    current.update(site_state(server.site_dirs))
                changed = _changed(server.fresh, current)
                if changed:
                    self._drop_replacement(key)
                    server.stop()
                    self._servers.pop(key)
                    self._start(key, start).prepare(server.last_request)
                    what = ", ".join(changed[:3]) + (" and more" if len(changed) > 3 else "")
                    notices.append(("info", f"warm runner: {what} changed: restarting its server; this run is cold"))
                    return Lease(None, tuple(notices))
                server = self._take_replacement(key, server, notices)
            return self._await(key, server, blocking, deadline, stop, notices, start)

    def _await(
        self,
        key: tuple[str, str, str],
        server: _Server,
        blocking: bool,
        deadline: float,
        stop: threading.Event,
        notices: list[tuple[str, str]],
        start: _Start,
    ) -> Lease:
        while True:
            if stop.is_set():
                return Lease(None, tuple(notices))  # cancelled while warming up: the run ends at once
            try:
                ready = server.poll_ready(min(0.1, max(0.0, deadline - time.monotonic())) if blocking else 0.0)
            except WarmUnavailable as exc:
                server.stop()
                self._servers.pop(key, None)
                notices.append(("warning", f"warm runner unavailable ({exc}); this run is cold"))
                return Lease(None, tuple(notices))
            if ready:
                if blocking:
                    preloaded = server.ready.get("preloaded", []) if server.ready else []
                    warmup = float(server.ready.get("warmup_s", 0.0)) if server.ready else 0.0
                    notices.append(("info", f"warm runner ready in {warmup:.1f}s ({len(preloaded)} modules preloaded)"))
                server.busy = True
                return Lease(server, tuple(notices))
            if server.violation is not None:
                modules, what, level = server.violation
                named = ", ".join(modules)
                self._servers.pop(key, None)
                count = self._violations[key] = self._violations.get(key, 0) + 1
                self._exclude(key, modules)
                if count > MAX_VIOLATIONS:
                    notices.append(("warning", f"warm runner off: preloading {named} {what}; this run is cold"))
                    return Lease(None, tuple(notices))
                notices.append((level, f"warm runner: preloading {named} {what}: restarting without it"))
                server = self._start(key, start)
                if not blocking:
                    notices.append(("info", "warm runner: this run is cold"))
                    return Lease(None, tuple(notices))
                continue
            if not blocking or (time.monotonic() >= deadline and server.ready is None):
                notices.append(("info", "warm runner: the server is still preloading; this run is cold"))
                return Lease(None, tuple(notices))

    def _start(self, key: tuple[str, str, str], start: _Start, *, replacement: bool = False) -> _Server:
        excluded = self._excluded.get(key, set())
        reached = self._reached[key] = tuple(start.modules())
        wanted = [*reached, *sorted(load_learned(key, reached))]
        chosen = list(dict.fromkeys(m for m in wanted if m not in excluded and m.split(".", 1)[0] not in excluded))
        server = _Server(
            interpreter=key[0],
            root=start.root,
            tier=start.tier,
            env=start.env,
            modules=chosen,
            idle_s=start.idle_s,
            fresh=freshness(start.root, start.tests, start.env),
        )
        if replacement:
            self._replacements[key] = server
        else:
            self._servers[key] = server
        return server

    def release(self, server: _Server, *, broken: bool = False) -> None:
        with self._lock:
            server.busy = False
            key = next((k for k, known in self._servers.items() if known is server), None)
            if broken:
                server.stop()
                if key is not None:
                    del self._servers[key]
            elif key is not None:
                self._relearn(key, server)

    def _relearn(self, key: tuple[str, str, str], server: _Server) -> None:
        """Start a replacement that also preloads what the runs imported beyond the server's modules, in the
        background: the server keeps serving until it is ready (`_take_replacement`).

        Once per module: what is learned is kept (`save_learned`), and one the replacement refused
        (not fork-safe) or could not import is not tried again.
        """
        start = self._starts.get(key)
        beyond = server.learned - set(server.modules)
        if not beyond or start is None:
            return  # most runs: nothing to read or write
        reached = self._reached.get(key, ())
        known = load_learned(key, reached)
        if not beyond - known:
            return
        save_learned(key, reached, known | beyond)
        self._drop_replacement(key)
        self._start(key, start, replacement=True).prepare(server.last_request)

    def _take_replacement(self, key: tuple[str, str, str], server: _Server, notices: list[tuple[str, str]]) -> _Server:
        """The replacement if it is ready (the old server stops), else the server; a failed replacement is
        dropped, and one that refused modules (not fork-safe) has them excluded."""
        replacement = self._replacements.get(key)
        if replacement is None:
            return server
        try:
            ready = replacement.poll_ready(0.0)
        except WarmUnavailable:
            self._drop_replacement(key)
            return server
        if replacement.violation is not None:
            modules, what, level = replacement.violation
            self._exclude(key, modules)
            notices.append((level, f"warm runner: preloading {', '.join(modules)} {what}: leaving it out"))
            self._drop_replacement(key)
            return server
        if not ready:
            return server  # still preloading: the old server is right, only slower
        del self._replacements[key]
        server.stop()
        self._servers[key] = replacement
        added = sorted(set(replacement.modules) - set(server.modules))
        named = ", ".join(added[:3]) + (f" and {len(added) - 3} more" if len(added) > 3 else "")
        notices.append(("info", f"warm runner: now preloading {named}, which earlier runs imported"))
        return replacement

    def _exclude(self, key: tuple[str, str, str], modules: Sequence[str]) -> None:
        """Never preload `modules` again for this key (not fork-safe), nor keep them as learned."""
        self._excluded.setdefault(key, set()).update(modules)
        reached = self._reached.get(key, ())
        known = load_learned(key, reached)
        kept = {m for m in known if m not in modules and m.split(".", 1)[0] not in modules}
        if kept != known:
            save_learned(key, reached, kept)

    def _drop_replacement(self, key: tuple[str, str, str]) -> None:
        replacement = self._replacements.pop(key, None)
        if replacement is not None:
            replacement.stop()

    def wait_for_replacements(self, root: Path, timeout: float) -> bool:
        """Wait until every replacement of `root`'s servers has preloaded (or failed); whether none is left
        preloading."""
        end = time.monotonic() + timeout
        with self._lock:
            pending = [s for k, s in self._replacements.items() if k[1] == str(root)]
        for server in pending:
            with contextlib.suppress(WarmUnavailable):  # its one message: ready, or a violation
                server.poll_ready(max(0.0, end - time.monotonic()))
        return all(s.ready is not None or s.violation is not None or not s.alive for s in pending)

    def stop(self, root: Path | None = None) -> None:
        with self._lock:
            chosen = [k for k in self._servers if root is None or k[1] == str(root)]
            servers = [self._servers.pop(k) for k in chosen]
            chosen = [k for k in self._replacements if root is None or k[1] == str(root)]
            servers += [self._replacements.pop(k) for k in chosen]
        for server in servers:
            server.stop()


WarmServer = _Server
"""A leased server, as `Lease.server` gives it: what a run forks from, and what `release` takes back."""

_POOL = _Pool()
atexit.register(_POOL.stop)


def lease(
    *,
    interpreter: str,
    root: Path,
    tier: str,
    tests: Sequence[str],
    env: Mapping[str, str],
    idle_s: float,
    deadline: float,
    stop: threading.Event,
    modules: Callable[[], Sequence[str]],
) -> Lease:
    """A warm server for this run (see the module's docstring), or None with the reason in the notices.

    `modules` lists what to preload; it is called only when a server starts.
    """
    return _POOL.lease(
        interpreter=interpreter,
        root=root,
        tier=tier,
        tests=tests,
        env=env,
        idle_s=idle_s,
        deadline=deadline,
        stop=stop,
        modules=modules,
    )


def release(server: _Server, *, broken: bool = False) -> None:
    """The run on `server` is over; `broken`: the server failed during it and is stopped (the next run starts a
    fresh one)."""
    _POOL.release(server, broken=broken)


def wait_for_replacements(root: Path, timeout: float) -> bool:
    """Wait until the servers preloading in the background to replace `root`'s (`_Pool._relearn`) are ready;
    whether none is left preloading. Nothing else waits for them: a run uses whichever server is ready."""
    return _POOL.wait_for_replacements(root, timeout)


def stop_servers(root: Path | None = None) -> None:
    """Stop this process's warm servers (of one project, or all): each kills its running child's group first."""
    _POOL.stop(root)


def server_statuses(root: Path | None = None) -> list[ServerStatus]:
    """The warm servers running now on this machine (any mlci process of this user), of one project or all."""
    out = []
    for path in sorted(_runtime_dir().glob("*.json")):
        try:
            state = json.loads(path.read_text())
            pid = int(state["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if root is not None and state.get("root") != str(root):
            continue
        if not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        out.append(
            ServerStatus(
                pid=pid,
                root=str(state.get("root", "")),
                tier=str(state.get("tier", "")),
                interpreter=str(state.get("interpreter", "")),
                warmup_s=float(state.get("warmup_s", 0.0)),
                preloaded=tuple(state.get("preloaded", [])),
                rss_bytes=_rss(pid),
            )
        )
    return out


class WarmProcess(StreamedOutput):
    """One pytest run forked by a warm server: the interface of `GroupProcess`.

    `argv` are pytest's arguments (no interpreter, no `-m pytest`); given `module`, the arguments of
    `python -m module` instead, its stdout written into the file `stdout` (and stderr streamed).
    """

    def __init__(
        self,
        server: _Server,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        on_lines: Callable[[tuple[str, ...]], None],
        wake_on: Path | None = None,
        end_line: str | None = None,
        module: str | None = None,
        stdout: Path | None = None,
    ) -> None:
        self.server = server
        self.module = module
        """The module the child runs as `python -m` (None: pytest)."""
        self._stdout = stdout
        self._wake_on = wake_on
        """A file (the test report) whose every write wakes the wait to call `tick`, not at its next interval."""
        self._bell: FileBell | None = None
        self.argv = tuple(argv)
        self._cwd = cwd
        self.token = new_token()
        """Marks what the run starts, in or out of its group (see `run_token`): a test's `setsid` daemon dies too.
        (The forked child itself shows the server's environment in /proc; its group is killed.)"""
        self._env = with_token(env, self.token)
        super().__init__(on_lines, end_line=end_line)
        self._pid: int | None = None
        self._reader: threading.Thread | None = None
        self.broken = False
        """The server failed during the run: it must not serve again."""
        self.prepared = False
        """The server's spare child took the run, its pytest config already built (see `warm.server`)."""

    @property
    def pgid(self) -> int | None:
        return self._pid

    def start(self) -> None:
        """Have the server fork the run; raises WarmUnavailable when it cannot (the caller runs it cold)."""
        request: dict[str, Any] = {"argv": list(self.argv), "env": self._env, "cwd": str(self._cwd)}
        if self.module is not None:
            request.update(module=self.module, stdout=str(self._stdout) if self._stdout is not None else "")
        else:  # the run a replacement server's spare child is prepared for: the tier's pytest run
            self.server.last_request = request
        try:  # no pipe (out of descriptors) is one more way the server cannot serve: the caller runs it cold
            read_fd, write_fd = os.pipe()
        except OSError as exc:
            raise WarmUnavailable(f"the warm server could not be given the run's output ({exc.strerror})") from exc
        try:
            try:
                socket.send_fds(self.server.sock, [json.dumps(request).encode() + b"\n"], [write_fd])
            finally:
                os.close(write_fd)
            reply = self.server.read_message(START_REPLY_S)
        except (OSError, EOFError, ValueError) as exc:
            os.close(read_fd)
            self.broken = True
            raise WarmUnavailable(f"the warm server did not answer ({type(exc).__name__})") from exc
        if reply is None or "started" not in reply:
            os.close(read_fd)
            self.broken = True
            why = reply.get("error") if reply else "no answer"
            raise WarmUnavailable(f"the warm server could not fork the run: {why}")
        self._pid = int(reply["started"])
        self.prepared = bool(reply.get("prepared"))
        if self._wake_on is not None:
            self._bell = FileBell(self._wake_on)  # before pytest can have started: no write is missed
        stream = os.fdopen(read_fd, "rb")
        self._reader = threading.Thread(target=self._read, args=(stream,), name=f"mlci-warm-{self._pid}", daemon=True)
        self._reader.start()

    def _exit_status(self, timeout: float, wake: int | None = None) -> tuple[bool, int | None]:
        """(whether the child's exit was reported, its returncode); waits at most `timeout`, less if `wake` rings."""
        try:
            message = self.server.read_message(timeout, wake)
        except (OSError, EOFError, ValueError):
            self.broken = True
            return True, None
        if message is None:
            return False, None
        if "exited" in message:
            self.server.learned.update(str(m) for m in message.get("learned", ()))
            return True, int(message["returncode"])
        return False, None

    def wait(self, *, deadline: float | None, stop: threading.Event, tick: Callable[[], None] | None = None) -> Outcome:
        """As `GroupProcess.wait`: stream output until the child exits, the deadline, or `stop`; kill its group."""
        assert self._pid is not None, "start() first"
        ending = Ending.EXITED
        done, returncode = False, None
        flushed = time.monotonic()
        wake = self._bell.fd if self._bell is not None else None
        while not done:
            done, returncode = self._exit_status(BATCH_S, wake)
            if done:
                break
            if stop.is_set():
                ending = Ending.STOPPED
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                ending = Ending.TIMED_OUT
                break
            if now - flushed >= BATCH_S:  # output in batches, however often the report wakes us
                self._flush()
                flushed = now
            if self._bell is not None:
                self._bell.clear()  # before the tick reads: a line written after this rings again
            if tick is not None:
                tick()
        kill_group(self._pid, token=self.token)
        if not done:
            done, returncode = self._exit_status(KILL_GRACE_S + 2)
            if not done:
                self.broken = True
        if self._reader is not None:
            self._reader.join(timeout=KILL_GRACE_S)
        if self._bell is not None:
            self._bell.close()
        self._flush()
        if tick is not None:
            tick()
        return Outcome(ending, returncode)
