"""The warm runner's server: a long-lived process in the project's interpreter that has imported pytest and the
project's heavy third-party modules, and forks one child per run.

    python -m mlci.engine.run.warm.server FD ROOT IDLE_S MODULE...

It talks to mlci over the socket it inherits as file descriptor FD (JSON lines, and the run's
output pipe passed as a file descriptor with each request):

    server -> {"preloaded": [...], "skipped": [...], "warmup_s": 3.1, "sys_path": [...], "pid": 123}
              or {"violation": [MODULE...], "what": "...", "level": "warning|info"} (and exits): restart without them
    client -> {"argv": [...], "env": {...}, "cwd": ROOT}  + the write end of the output pipe
    client -> {"module": NAME, "stdout": PATH, "argv": [...], "env": {...}, "cwd": ROOT}  + the pipe:
              `python -m NAME ARGV...` rather than pytest (the gates child), its stdout into PATH
    client -> {"prepare": REQUEST}  (no pipe, no answer) the run a spare child is to be prepared for, given
              to a server that replaces another, before its first request
    server -> {"started": PID, "prepared": BOOL}   the child, leader of a process group of its own;
              prepared: the spare child took the run
    server -> {"exited": PID, "returncode": N, "learned": [...]}   negative: killed by that signal

"learned" (when not empty) names the third-party modules the run imported that the server
had not: `torch.use_deterministic_algorithms` imports `torch._dynamo` (1.7 s) inside a test,
which no reading of the project's imports can see. The client starts a replacement server
with them in the background (and keeps the list in the project's `.mlci/warm/`), so that only
the first runs pay for them.

The child runs pytest in-process (`pytest.main`) with the request's arguments, environment
and working directory, its stdout and stderr on the pipe, and ends with `os._exit`: the
heavy interpreter's teardown is the kernel's job. Nothing of the project lives in the
server (the client never names the project's own modules, and a module found under the
root outside an environment is refused here too), so every child reads the project's
files as they are now.

The model tier's server also forks its gates child (`python -m mlci.engine gates`, a "module" request)
when the project's interpreter is mlci's: the child finds what the tier's tests preloaded (MLflow's
pyfunc, the data libraries, the model's framework) already imported, and loads the model fresh. A
module request neither takes nor drops the spare child below, which stays prepared for the tier's
next pytest run, and teaches the server nothing (what the gates import beyond the tests' modules,
DVC among them, would slow every start of the server for one child).

A spare child is ready before each run but the first: once a run ends, the server forks the
next one with the same request, and it builds pytest's config (plugins, options, ini files)
up to the point where pytest loads the project's `conftest.py` files, then waits (`_gate`).
When the next request is the same run (the same arguments, directory and environment, but
for mlci's per-run variables `PER_RUN_ENV`), the spare takes its output pipe and goes on:
a run then starts where a fresh child would be 80 ms later. Nothing of the project is read
before that point but the ini files, whose change restarts the server, so the spare is as
fresh as a child forked at the request. Any other request gets a freshly forked child, and
the spare is dropped.

Fork safety: a module that starts a thread or initialises CUDA while being preloaded is
reported and the server exits, so that the client restarts it without that module. The
server itself starts no thread. It exits when the socket closes (mlci went away), on
SIGTERM, or after IDLE_S seconds without a run, killing a running child's group first.

Only the standard library here: this module is copied into a directory of its own when the
project's interpreter is not mlci's (see `mlci.engine.run.interpreter`).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

__all__ = ["main", "same_run"]

CUDA_HOOK = ("cuda", "is_initialized")
"""A preloaded module whose `cuda.is_initialized()` returns True has initialised CUDA (torch's own API); a fork
would hand the child a broken CUDA context. Any module with that hook is checked, so a test can stand in for torch."""
KILL_GRACE_S = 3.0
PER_RUN_ENV = ("MLCI_REPORT_FILE", "MLCI_RUN_TOKEN")
"""Variables that differ in every run of the same tier (the report file, the run's token: `pytest_plugin.REPORT_ENV`
and `run_token.RUN_TOKEN_ENV`). pytest reads neither before it loads the conftests, so a spare child takes them
with its run."""
SPARE_READY_S = 5.0
"""How long a request waits for a spare child that is still building pytest's config, before it is dropped."""


class _Violation(Exception):
    def __init__(self, modules: list[str], what: str, level: str = "warning") -> None:
        super().__init__(f"{', '.join(modules)} {what}")
        self.modules = modules
        self.what = what
        self.level = level


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _in_environment(path: str) -> bool:
    return any(part in path.split(os.sep) for part in ("site-packages", "dist-packages"))


def _is_projects_own(name: str, root: str) -> bool:
    """Whether `name` would import from the project's tree (outside an installed environment)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return True  # cannot tell: never risk importing the project's code
    if spec is None:
        return True
    places = [spec.origin or "", *(spec.submodule_search_locations or [])]
    return any(_under(os.path.realpath(p), root) and not _in_environment(p) for p in places if p and p != "built-in")


def cuda_initialised() -> str | None:
    """The name of a loaded module that reports an initialised CUDA context, if any."""
    attr, hook = CUDA_HOOK
    for name, module in list(sys.modules.items()):
        if "." in name or module is None:
            continue
        cuda = module.__dict__.get(attr) if hasattr(module, "__dict__") else None
        check = getattr(cuda, hook, None) if cuda is not None else None
        if callable(check):
            with contextlib.suppress(Exception):
                if check():
                    return name
    return None


def _check(name: str) -> None:
    if threading.active_count() > 1:
        raise _Violation([name], "started a thread (not fork-safe)")
    culprit = cuda_initialised()
    if culprit is not None:
        through = "" if culprit == name else f" (through {culprit})"
        raise _Violation([name], f"initialised CUDA{through} (not fork-safe)")


def _simple_rewritable(files: list[str]) -> Iterator[str]:
    """pytest's rule for the modules of a distribution it rewrites (its own, when it has one, is used)."""
    for fn in files:
        if "/" not in fn and fn.endswith(".py"):
            yield fn[:-3]
        elif fn.count("/") == 1 and fn.endswith("__init__.py"):
            yield fn.split("/")[0]


def _dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def plugin_distributions() -> list[Any]:
    """The installed distributions that hold a pytest plugin (entry points `pytest11`), read once for all below."""
    from importlib.metadata import distributions

    with contextlib.suppress(Exception):
        return [dist for dist in distributions() if any(ep.group == "pytest11" for ep in dist.entry_points)]
    return []


def plugin_dependencies(owned: set[str], plugins: list[Any]) -> list[str]:
    """The modules of what the pytest plugins require (coverage for testmon, textual for its snapshot plugin):
    heavy, imported in every run, and safe to preload, being no plugin's own."""
    from importlib.metadata import packages_distributions

    modules_of: dict[str, list[str]] = {}
    for module, dist_names in packages_distributions().items():
        for dist_name in dist_names:
            modules_of.setdefault(_dist_key(dist_name), []).append(module)
    found: list[str] = []
    for dist in plugins:
        for requirement in dist.requires or ():
            if "extra ==" in requirement:
                continue
            name = re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0]
            for module in sorted(modules_of.get(_dist_key(name), ())):
                if module not in owned and not module.startswith("_") and module not in found:
                    found.append(module)
    return found


def plugin_owned(plugins: list[Any]) -> set[str]:
    """Top-level modules of the distributions that hold a pytest plugin (entry points `pytest11`), named exactly
    as pytest names them.

    pytest rewrites the asserts of all of them as it loads the plugins; one imported before
    by another loader would make it warn "Module already imported so cannot be rewritten" in
    every run, output a cold run does not have (and an error under `-W error`). The server
    imports them through pytest's own rewriting hook (`_RewritingImports`), so they are
    preloaded exactly as a cold run's pytest would load them.
    """
    rewritable: Any = _simple_rewritable
    with contextlib.suppress(ImportError):
        rewritable = getattr(importlib.import_module("_pytest.config"), "_iter_rewritable_modules", rewritable)

    owned: set[str] = set()
    with contextlib.suppress(Exception):
        for dist in plugins:
            owned.update(rewritable([str(f) for f in dist.files or ()]))
    return owned


def plugin_entry_points(plugins: list[Any]) -> list[str]:
    """The modules pytest loads as plugins from entry points (`pytest11`): imported in every run (testmon with
    coverage, hypothesis, syrupy, ...), a fifth of a second a run on the sample project."""
    found: list[str] = []
    with contextlib.suppress(Exception):
        for ep in (ep for dist in plugins for ep in dist.entry_points if ep.group == "pytest11"):
            module = ep.value.split(":", 1)[0].strip()
            if module and module not in found:
                found.append(module)
    return found


def pytest_builtin_plugins() -> list[str]:
    """pytest's own plugin modules (`_pytest.junitxml`, ...) and its option completion: every run loads them,
    `import pytest` only some."""
    with contextlib.suppress(Exception):
        config = importlib.import_module("_pytest.config")
        names = [*config.essential_plugins, *config.default_plugins]
        return [*(f"_pytest.{name}" for name in names if "." not in name), "_pytest._argcomplete"]
    return []


class _RewritingImports:
    """pytest's assertion-rewriting import hook, installed in the server while it preloads.

    Marked for the pytest plugins' modules as pytest marks them (`plugin_owned`), it rewrites
    their asserts as a cold run's pytest does, and pytest in the child, seeing them loaded by
    its own hook's class, does not warn that it cannot rewrite them. Test files are never
    rewritten here (no file pattern): the server imports none. Removed before any fork: a
    child's pytest installs its own.
    """

    def __init__(self, owned: set[str]) -> None:
        self.hook: Any = None
        with contextlib.suppress(Exception):
            from types import SimpleNamespace

            rewrite = importlib.import_module("_pytest.assertion.rewrite")
            stash = importlib.import_module("_pytest.stash")

            class _Config:
                """What the hook reads of a pytest config while it imports a plugin's modules."""

                def __init__(self) -> None:
                    self.stash = stash.Stash()
                    self.stash[rewrite.assertstate_key] = SimpleNamespace(trace=lambda *_a: None, hook=None)

                def getini(self, name: str) -> Any:
                    if name == "enable_assertion_pass_hook":
                        return False
                    raise ValueError(name)  # python_files: replaced below

            hook = rewrite.AssertionRewritingHook(_Config())
            hook.fnpats = []
            hook._must_rewrite.update(owned)  # mark_rewrite without its warning machinery: none is imported yet
            sys.meta_path.insert(0, hook)
            self.hook = hook

    def loaded(self, name: str) -> bool:
        """Whether module `name` was loaded through the hook (so pytest will not warn about it)."""
        module = sys.modules.get(name)
        return self.hook is not None and module is not None and getattr(module, "__loader__", None) is self.hook

    def remove(self) -> None:
        if self.hook is not None and self.hook in sys.meta_path:
            sys.meta_path.remove(self.hook)


def _abandoned(sock: socket.socket) -> bool:
    """Whether mlci closed the socket (it quit, or was killed): preloading for nobody is wasted work."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def preload(
    modules: list[str], root: str, sock: socket.socket, owned: set[str], rewriting: _RewritingImports
) -> tuple[list[str], list[str]]:
    """Import pytest and `modules`; the ones imported and the ones skipped (own, missing, broken).

    `owned` are the pytest plugins' modules (`plugin_owned`): imported through pytest's rewriting
    hook, as pytest would, or skipped without it. Between two imports it checks that mlci is
    still there, and exits if not.
    """
    done: list[str] = []
    skipped: list[str] = []
    seen = owned & set(sys.modules)
    pulled: dict[str, list[str]] = {}
    """Preloaded module -> the pytest plugins' modules it imported outside the hook (only without it)."""
    try:
        for name in ["pytest", *modules]:
            if _abandoned(sock):
                os._exit(0)
            if name in done or name in skipped:
                continue
            top = name.split(".", 1)[0]
            if (top in owned and rewriting.hook is None) or _is_projects_own(top, root):
                skipped.append(name)
                continue
            try:
                importlib.import_module(name)
            except Exception:  # a module that does not import here is simply not preloaded
                skipped.append(name)
                _check(name)
                continue
            done.append(name)
            _check(name)
            new = {m for m in (owned & set(sys.modules)) - seen if not rewriting.loaded(m)}
            if new:
                pulled[name] = sorted(new)
                seen |= new
    finally:
        rewriting.remove()
    if pulled:
        # Reported together, so one restart leaves them all out.
        what = "; ".join(f"{m} imports {', '.join(p)}" for m, p in pulled.items())
        raise _Violation(
            list(pulled), f"({what}: modules of a pytest plugin, which pytest warns it cannot rewrite)", "info"
        )
    return done, skipped


def _warm_caches() -> None:
    """Fill, once, the interpreter's caches keyed by the loaded modules, which every child would fill anew.

    `inspect`'s map from file to module costs a `realpath` per loaded module on its first use:
    0.1 s with torch loaded. Coverage (testmon) uses it each time it starts (`inspect.stack()`,
    three times a run), pytest as it shows a failure. Called from `main`, so that the frames
    below it are the ones below every child.
    """
    with contextlib.suppress(Exception):
        import inspect

        inspect.getmodule(None, "<mlci warm server>")
        # The frames under every child (runpy's `-m` start, `<frozen runpy>`) name no file of a module, so
        # each `inspect.stack()` walked every loaded module for each of them, three times a run: tell
        # inspect which module they are.
        frame: Any = sys._getframe()
        while frame is not None:
            name = frame.f_globals.get("__name__")
            if isinstance(name, str) and name in sys.modules:
                inspect.modulesbyfile.setdefault(frame.f_code.co_filename, name)
            frame = frame.f_back


class _Spare:
    """A child forked ahead of the next request, building pytest's config for `request` (see `_gate`)."""

    def __init__(self, pid: int, pidfd: int | None, link: socket.socket, request: dict[str, Any]) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.link = link
        self.request = request
        self.ready = False
        """It said it waits at the gate: pytest's config built without error."""
        self.ended = False
        """It ended before its gate (an error in pytest's config)."""

    def hear(self, timeout: float) -> bool:
        """Whether it waits at the gate, reading its word if it has none yet (for up to `timeout`)."""
        if not self.ready and not self.ended:
            readable, _, _ = select.select([self.link], [], [], timeout)
            if readable:
                try:
                    word = self.link.recv(64)
                except OSError:
                    word = b""
                self.ready = word.startswith(b"ready")
                self.ended = not self.ready
        return self.ready


class _Server:
    def __init__(self, sock: socket.socket, root: str, idle_s: float, owned: set[str], learned_dir: str) -> None:
        self.sock = sock
        self.root = root
        self.idle_s = idle_s
        self.owned = owned
        """Modules a child must not report as learned: the pytest plugins' ones when pytest's hook is missing."""
        self.learned_dir = learned_dir
        """Private (0700, made by the client, which removes it): where each child leaves the modules it
        learned (see `learned_modules`)."""
        self.buffer = b""
        self.fds: list[int] = []
        """Output pipes received with a request whose line has not fully arrived yet."""
        self.child: int | None = None
        self.child_fd: int | None = None
        """A pidfd of the child (readable once it exits), where the kernel has them."""
        self.last: dict[str, Any] | None = None
        """The last request: the run a spare child is prepared for."""
        self.spare: _Spare | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def serve(self) -> None:
        last = time.monotonic()
        while True:
            watched: list[Any] = [self.sock]
            if self.spare is not None and not self.spare.ready:
                watched.append(self.spare.link)  # its word: ready, or its end
            if self.child is None:
                timeout: float | None = max(0.0, last + self.idle_s - time.monotonic())
            elif self.child_fd is not None:
                watched.append(self.child_fd)
                timeout = None
            else:
                timeout = 0.05  # no pidfd: poll for the child's exit
            readable, _, _ = select.select(watched, [], [], timeout)
            if self.spare is not None and self.spare.link in readable:
                self.spare_news()
            if self.child is not None:
                self.reap()
                last = time.monotonic()
            elif not readable:
                return  # idle for idle_s
            if self.sock in readable and not self.receive():
                return

    def receive(self) -> bool:
        """Handle what arrived on the socket; False when mlci closed it."""
        data, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 20, 4)
        self.fds.extend(fds)
        if not data:
            return False
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = json.loads(line)
            if "prepare" in message:
                self.prepare_for(message["prepare"])
            else:
                self.start(message, self.fds.pop(0) if self.fds else None)
        return True

    def start(self, request: dict[str, Any], out_fd: int | None) -> None:
        if out_fd is None:
            self.send({"error": "no output pipe came with the request"})
            return
        if self.child is not None:
            os.close(out_fd)
            self.send({"error": "a run is still in progress"})
            return
        if threading.active_count() > 1:
            os.close(out_fd)
            names = ", ".join(t.name for t in threading.enumerate() if t is not threading.main_thread())
            self.send({"error": f"a thread runs in the server ({names}): forking is not safe"})
            return
        # A module run (the gates child) leaves the spare, prepared for the tier's pytest run, as it is.
        spare = None
        if not request.get("module"):
            self.last = request
            spare = self.take_spare(request, out_fd)
        if spare is not None:
            self.child, self.child_fd = spare.pid, spare.pidfd
        else:
            self.child, self.child_fd = self.fork(
                lambda: _child(request, self.sock, self.owned, self.learned_dir, out_fd=out_fd)
            )
        os.close(out_fd)
        self.send({"started": self.child, "prepared": spare is not None})

    def fork(self, child: Callable[[], None]) -> tuple[int, int | None]:
        """Fork a child that runs `child` (which never returns) in a process group of its own; its pid and pidfd."""
        pid = os.fork()
        if pid == 0:
            child()
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also done by the child: whichever runs first, the group exists before a kill
        pidfd: int | None = None
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            with contextlib.suppress(OSError):
                pidfd = pidfd_open(pid)
        return pid, pidfd

    # -- the spare child ------------------------------------------------------------------------

    def prepare_spare(self) -> None:
        """Fork the spare child for the next run, taken to be the same as the last one."""
        request = self.last
        if request is None or self.spare is not None or threading.active_count() > 1:
            return
        link, child_end = socket.socketpair()
        try:
            pid, pidfd = self.fork(
                lambda: _child(request, self.sock, self.owned, self.learned_dir, link=child_end, close=link)
            )
        finally:
            child_end.close()
        self.spare = _Spare(pid, pidfd, link, request)

    def prepare_for(self, request: dict[str, Any]) -> None:
        """Prepare the spare child for `request` (the run the server this one replaces served last)."""
        if self.child is None and self.last is None:
            self.last = request
            self.prepare_spare()

    def spare_news(self) -> None:
        """The spare child said it is ready, or it ended before (an error in pytest's config): then it is dropped,
        and the next request, forked afresh, shows that error."""
        spare = self.spare
        if spare is not None and not spare.hear(0.0) and spare.ended:
            self.spare = None
            self.drop(spare)

    def take_spare(self, request: dict[str, Any], out_fd: int) -> _Spare | None:
        """The spare child, given `request`'s run, when it was prepared for that run and is ready (waiting briefly
        for it to be); else None, and the spare is dropped."""
        spare, self.spare = self.spare, None
        if spare is None:
            return None
        if same_run(spare.request, request) and spare.hear(SPARE_READY_S):
            late = {name: request["env"].get(name) for name in PER_RUN_ENV}
            with contextlib.suppress(OSError):
                socket.send_fds(spare.link, [json.dumps({"env": late}).encode() + b"\n"], [out_fd])
                spare.link.close()
                return spare
        self.drop(spare)
        return None

    def drop(self, spare: _Spare) -> None:
        """Kill a spare child that is not needed (it has run nothing of the project) and reap it."""
        spare.link.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(spare.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(spare.pid, 0)
        if spare.pidfd is not None:
            os.close(spare.pidfd)
        _read_learned(self.learned_dir, spare.pid)

    def reap(self) -> None:
        if self.child is None:
            return
        pid, status = os.waitpid(self.child, os.WNOHANG)
        if pid == 0:
            return
        if self.child_fd is not None:
            os.close(self.child_fd)
            self.child_fd = None
        self.child = None
        message: dict[str, Any] = {"exited": pid, "returncode": os.waitstatus_to_exitcode(status)}
        learned = _read_learned(self.learned_dir, pid)
        if learned:
            message["learned"] = learned
        self.send(message)
        self.prepare_spare()

    def stop_child(self) -> None:
        """Kill the running child's whole group (SIGTERM, then SIGKILL) and reap it; drop the spare."""
        if self.spare is not None:
            spare, self.spare = self.spare, None
            self.drop(spare)
        if self.child is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < deadline and os.waitpid(self.child, os.WNOHANG)[0] == 0:
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.child, 0)
        _read_learned(self.learned_dir, self.child)  # a killed run's is not worth a restart; the file goes
        self.child = None


def _reseed() -> None:
    """Give the child fresh random state, as a new interpreter has: a fork copies the server's."""
    with contextlib.suppress(Exception):
        import random

        random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        with contextlib.suppress(Exception):
            numpy.random.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            torch.seed()


def _learned_path(directory: str, child: int) -> str:
    """Where a child leaves the modules it learned, for its server to read once it has reaped it."""
    return os.path.join(directory, f"{child}.json")


def learned_modules(before: set[str], owned: set[str]) -> list[str]:
    """The modules imported since `before` that the server could preload: installed third-party ones, each
    the first of its tree (`torch._dynamo`, not the hundreds it imports along), none of `owned`."""
    found = []
    for name, module in list(sys.modules.items()):
        if name in before or module is None:
            continue
        parent = name.rpartition(".")[0]
        if (parent and parent not in before) or name.partition(".")[0] in owned:
            continue
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and _in_environment(path):
            found.append(name)
    return sorted(found)


def _write_learned(directory: str, before: set[str], owned: set[str]) -> None:
    with contextlib.suppress(Exception):
        learned = learned_modules(before, owned)
        if learned:
            with open(_learned_path(directory, os.getpid()), "w", encoding="utf-8") as fh:
                json.dump(learned, fh)


def _read_learned(directory: str, child: int) -> list[str]:
    path = _learned_path(directory, child)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return []
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return [str(name) for name in data] if isinstance(data, list) else []


def _child(
    request: dict[str, Any],
    sock: socket.socket,
    owned: set[str],
    learned_dir: str,
    *,
    out_fd: int | None = None,
    link: socket.socket | None = None,
    close: socket.socket | None = None,
) -> None:
    """A run: pytest in-process with `request`'s arguments, environment and directory, its output on `out_fd`
    (or, for a "module" request, that module run as `__main__`, its stdout into the request's file).

    A spare child is given `link` instead of `out_fd`: it builds pytest's config with its output
    on /dev/null and waits at the gate (`_gate`) for its run's pipe. `close` is the server's end
    of that link.
    """
    code = 3
    before = set(sys.modules)
    try:
        os.setpgid(0, 0)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        sock.close()
        if close is not None:
            close.close()
        _output_to(out_fd if out_fd is not None else os.open(os.devnull, os.O_WRONLY))
        cwd = str(request["cwd"])
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        argv = [str(a) for a in request["argv"]]
        module = request.get("module")
        sys.argv = [str(module) if module else "pytest", *argv]
        # `python -m pytest` puts the working directory first on sys.path; so does the server's own
        # `-m` start, but say it again in case the request names another directory.
        sys.path[0] = cwd
        _reseed()
        gc.enable()
        if module:
            # `mlci` ends its process itself (`process_exit`), past the `finally` below, so nothing is
            # learned from it: the server keeps preloading what the tier's tests need, not DVC and the
            # hundred modules the gates add to every start for a child that imports them itself.
            _run_module(str(module), request.get("stdout"))
            code = 0
        else:
            import pytest

            code = int(pytest.main(argv, plugins=[_gate(pytest, link)] if link is not None else None))
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 3
    finally:
        _at_exit()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        _write_learned(learned_dir, before, owned)
        os._exit(code)


def _at_exit() -> None:
    """What Python's shutdown does before it tears the modules down, as a cold run does (`pytest_main`): wait for
    the run's non-daemon threads, run the atexit handlers (a test's at-exit work happens warm too)."""
    with contextlib.suppress(BaseException):
        wait_for_threads = getattr(threading, "_shutdown", None)
        if wait_for_threads is not None:
            wait_for_threads()
        atexit._run_exitfuncs()


def _run_module(module: str, stdout: str | None) -> None:
    """`python -m module` in this process (its exit status by SystemExit), its stdout into the file `stdout`."""
    import runpy

    if stdout:
        fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.close(fd)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _output_to(fd: int) -> None:
    """Make `fd` the process's stdout and stderr."""
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def same_run(prepared: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether a spare child prepared for `prepared` can serve `request`: all but the per-run variables equal."""

    def env(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r["env"].items() if k not in PER_RUN_ENV}

    return prepared["argv"] == request["argv"] and prepared["cwd"] == request["cwd"] and env(prepared) == env(request)


def _receive_run(link: socket.socket) -> tuple[dict[str, Any], int] | None:
    """The run a spare child is given: its per-run variables and output pipe; None when it is dropped."""
    data = b""
    fds: list[int] = []
    while b"\n" not in data:
        chunk, got, _flags, _addr = socket.recv_fds(link, 1 << 16, 1)
        fds.extend(got)
        if not chunk:
            return None
        data += chunk
    if not fds:
        return None
    return json.loads(data.split(b"\n", 1)[0])["env"], fds[0]


def _gate(pytest: Any, link: socket.socket) -> object:
    """The plugin that holds a spare child where pytest is about to load the project's conftests, until its run
    comes (or exits it, when it is dropped)."""

    # Outermost of the hook's wrappers (tryfirst): pytest's capture, inside it, dups fds 1 and 2 only after the
    # run's pipe is in place.
    outermost: Callable[[Callable[..., Any]], Callable[..., Any]] = pytest.hookimpl(wrapper=True, tryfirst=True)

    class _Gate:
        @outermost
        def pytest_load_initial_conftests(self) -> Generator[None, Any, Any]:
            link.sendall(b"ready\n")
            run = _receive_run(link)
            if run is None:
                os._exit(0)
            env, out_fd = run
            link.close()
            for stream in (sys.stdout, sys.stderr):
                stream.flush()  # what was buffered goes to /dev/null, not into the run's output
            _output_to(out_fd)
            for name, value in env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = str(value)
            return (yield)

    return _Gate()


def main() -> None:
    fd, root, idle_s, learned_dir, *modules = sys.argv[1:]
    sock = socket.socket(fileno=int(fd))
    started = time.monotonic()
    gc.disable()  # the server allocates little once preloaded; its children enable it again
    signal.signal(signal.SIGTERM, lambda _s, _f: sys.exit(0))
    plugins = plugin_distributions()
    owned = plugin_owned(plugins)
    rewriting = _RewritingImports(owned)
    # With pytest's hook, the plugins' modules preload like any other, and a child may learn them too.
    server = _Server(
        sock, os.path.realpath(root), float(idle_s), owned if rewriting.hook is None else set(), learned_dir
    )
    extra: list[str] = []
    with contextlib.suppress(Exception):  # unreadable metadata: pytest's plugins are left to the children
        entry_points = plugin_entry_points(plugins) if rewriting.hook is not None else []
        extra = [*pytest_builtin_plugins(), *plugin_dependencies(owned, plugins), *entry_points]
    try:
        try:
            done, skipped = preload([*extra, *modules], server.root, sock, owned, rewriting)
        except _Violation as violation:
            server.send({"violation": violation.modules, "what": violation.what, "level": violation.level})
            return
        _warm_caches()
        # Everything preloaded moves to gc's permanent generation: a child's collections (pytest
        # runs several at exit) then skip it, instead of walking, and so copying, every page of it.
        gc.freeze()
        server.send(
            {
                "preloaded": done,
                "skipped": skipped,
                "warmup_s": time.monotonic() - started,
                "sys_path": sys.path,
                "pid": os.getpid(),
            }
        )
        server.serve()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        server.stop_child()
        # The client removes it too when it stops the server; this covers a server that outlived its client.
        shutil.rmtree(server.learned_dir, ignore_errors=True)
        # Skip the interpreter's teardown: with torch loaded it takes seconds and does nothing we need.
        os._exit(0)


if __name__ == "__main__":
    main()
