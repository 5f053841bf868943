"""Find every process a tier command started, even those that left its process group, by a token in their environment.

A test may start a daemon with `setsid` or a double fork: it then has a process group (and a
session) of its own, and killing the command's group misses it. Each command therefore runs
with `MLCI_RUN_TOKEN` set to a token of its own, appended to any token it inherited (an mlci
run inside an mlci tier stays findable by the outer run). Every descendant inherits it through
fork and exec, whatever its group or session. `/proc/<pid>/environ` shows the environment a
process was started with, so unsetting the variable later does not hide it either; a child
started with an emptied environment (`env -i`) is still found while its parent chain leads to
a marked process (the `PPid` of `/proc/<pid>/status`).

Why a token and not `prctl(PR_SET_CHILD_SUBREAPER)`: the subreaper flag is per process, and the
dashboard runs several tiers at once in threads of one long-lived process. Orphans it inherits
carry no mark of the run they came from, so cancelling one tier could not tell its orphans from
another tier's; reaping them needs `waitpid(-1)`, which steals the exit status from every other
thread's `subprocess` (git reads would see status 0 for a failed command); and not reaping them
piles zombies up for the life of the dashboard. The token attributes each process to exactly
one run and needs no reaping. Without `/proc` (macOS), only the process group is killed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["RUN_TOKEN_ENV", "marked_processes", "new_token", "with_token"]

RUN_TOKEN_ENV = "MLCI_RUN_TOKEN"
"""Holds the tokens of the runs a process belongs to, separated by ':' (outermost first)."""
_PROC = Path("/proc")


def new_token() -> str:
    """A token no other run has (64 random bits)."""
    return secrets.token_hex(8)


def with_token(env: Mapping[str, str], token: str) -> dict[str, str]:
    """`env` with `token` appended to the run tokens it already carries."""
    out = dict(env)
    inherited = out.get(RUN_TOKEN_ENV, "")
    out[RUN_TOKEN_ENV] = f"{inherited}:{token}" if inherited else token
    return out


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError:  # gone, or another user's process: not ours to kill either way
        return None


_PREFIX = f"{RUN_TOKEN_ENV}=".encode()


def _tokens(pid: str) -> tuple[str, ...]:
    environ = _read(f"/proc/{pid}/environ")
    if not environ or _PREFIX not in environ:  # most processes: one substring search, no split
        return ()
    for entry in environ.split(b"\0"):
        if entry.startswith(_PREFIX):
            return tuple(entry[len(_PREFIX) :].decode("ascii", errors="replace").split(":"))
    return ()


def _parent_and_state(pid: str) -> tuple[int, str] | None:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # "pid (comm) state ppid ...": the command may hold spaces and parentheses, so split after the last ")".
    fields = stat.rsplit(b")", 1)[-1].split()
    return (int(fields[1]), fields[0].decode()) if len(fields) > 1 else None


def marked_processes(token: str, *, roots: Iterable[int] = ()) -> set[int]:
    """Living processes that carry `token`, or descend from one that does or from one of `roots`.

    Zombies are left out: they have exited and only wait for their parent. This process is
    never included. Empty where there is no /proc.
    """
    if not _PROC.is_dir():
        return set()
    me = os.getpid()
    parents: dict[int, int] = {}
    marked: set[int] = {pid for pid in roots if pid != me}
    for entry in os.listdir(_PROC):
        if not entry.isdigit() or int(entry) == me:
            continue
        found = _parent_and_state(entry)
        if found is None or found[1] in ("Z", "X"):
            continue
        parents[int(entry)] = found[0]
        if token in _tokens(entry):
            marked.add(int(entry))
    # Children started with an emptied environment: marked through their parent chain.
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in marked and pid not in marked:
                marked.add(pid)
                grew = True
    return {pid for pid in marked if pid in parents}
