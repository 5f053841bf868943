"""The git pre-push hook (`mlci hooks install`), and what git tells it is pushed.

The hook hands git's standard input to `mlci hooks pre-push`: one line per ref pushed,
`<local ref> <local sha> <remote ref> <remote sha>`. Each pushed tip is checked (the commit
itself, not the working tree); a deletion (an all-zero local SHA) needs no check.

The hook is a small POSIX shell script marked as mlci's, so reinstalling replaces it
quietly while a hook that someone else wrote is left alone unless `force` is given
(and then kept beside it as `pre-push.orig`). The hooks directory is git's own answer
(`git rev-parse --git-path hooks`), which honours `core.hooksPath`.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlci.engine.errors import MlciError
from mlci.engine.git.state import git_failure

__all__ = [
    "HOOK_MARKER",
    "HookInstall",
    "PushedRef",
    "hook_script",
    "hooks_dir",
    "install_pre_push_hook",
    "parse_pushed_refs",
]

HOOK_MARKER = "# mlci-managed-hook: pre-push"
"""The line that identifies a hook as mlci's own."""


@dataclass(frozen=True)
class PushedRef:
    """One line of what git gives a pre-push hook on its standard input."""

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @property
    def deletion(self) -> bool:
        """The push deletes `remote_ref`: nothing is sent, so nothing needs checking."""
        return set(self.local_sha) == {"0"}


def parse_pushed_refs(text: str) -> tuple[PushedRef, ...]:
    """git's pre-push lines; MlciError naming the line when one is not four fields."""
    refs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 4:
            expected = "'<local ref> <local sha> <remote ref> <remote sha>'"
            raise MlciError(f"<stdin>:{number}: expected {expected}, got {line!r}")
        refs.append(PushedRef(*fields))
    return tuple(refs)


@dataclass(frozen=True)
class HookInstall:
    path: Path
    replaced: str
    """"" for a new hook, "mlci" when an older mlci hook was updated, "foreign" when --force replaced one."""
    backup: Path | None = None


def hooks_dir(root: Path) -> Path:
    """Where git looks for hooks in this repository (core.hooksPath respected)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-path", "hooks"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise MlciError(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        if "not a git repository" in done.stderr:
            raise MlciError(f"not a git repository: {root}")
        raise git_failure(root)  # git refuses it (dubious ownership, a corrupt .git): say git's reason, exit 2
    return Path(done.stdout.strip())


def hook_script(python: str | None = None) -> str:
    """The pre-push hook: `mlci hooks pre-push` with the interpreter that installed it, else `mlci` on PATH."""
    interpreter = shlex.quote(python or sys.executable)
    return f"""#!/bin/sh
{HOOK_MARKER}
# Written by `mlci hooks install`: checks every commit this push sends (every tier in order,
# the quick model tier, the gates), each as committed, and blocks the push when one is red.
# git's lines on standard input say what is pushed; they go on to mlci as they are.
# Skip it once with `git push --no-verify`; a commit `mlci push` has just checked is not
# checked again.
MLCI_PYTHON={interpreter}
if [ -x "$MLCI_PYTHON" ]; then
    exec "$MLCI_PYTHON" -m mlci.engine hooks pre-push "$@"
fi
if command -v mlci >/dev/null 2>&1; then
    exec mlci hooks pre-push "$@"
fi
echo "mlci pre-push hook: mlci is not installed here ($MLCI_PYTHON is gone and mlci is not on PATH)" >&2
echo "reinstall it, run 'mlci hooks install', or push with --no-verify" >&2
exit 1
"""


def install_pre_push_hook(root: Path, *, force: bool = False, python: str | None = None) -> HookInstall:
    """Write the pre-push hook; refuse to replace a foreign hook unless `force`."""
    directory = hooks_dir(root)
    path = directory / "pre-push"
    replaced = ""
    backup = None
    if path.exists() or path.is_symlink():
        try:
            existing = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            existing = ""
        if HOOK_MARKER in existing:
            replaced = "mlci"
        elif not force:
            raise MlciError(
                f"{path} exists and is not mlci's: pass --force to replace it (it is kept as pre-push.orig)"
            )
        else:
            replaced = "foreign"
            backup = path.with_name("pre-push.orig")
            os.replace(path, backup)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("pre-push.mlci-tmp")
    tmp.write_text(hook_script(python), encoding="utf-8")
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, path)
    return HookInstall(path=path, replaced=replaced, backup=backup)
