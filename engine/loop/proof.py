"""The content key of a check: everything its verdict depends on, so a proven content is not checked twice.

A commit is checked green once; a later check of the same content answers from the history
(`.mlci/history.sqlite`). The key holds:

* the commit's git tree: every tracked file, among them the sources, the tests, `params.yaml`,
  the `.dvc` files and `dvc.lock` (the hashes of the DVC-tracked data: the check sees the
  data exactly as they record it, in place or linked in a worktree), `mlci.yaml` and the gate file;
* those parts again by name (data, params, config): they say which one changed;
* the environment: the tiers' interpreter, its version and its installed distributions with versions;
* with a gate file, the regression gate's baseline: the champion's version, or main's commit when
  there is no champion (its committed metrics are the baseline then);
* mlci's own version, and the mode (quick or full training).

Any difference gives another key, so the check runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlci.engine.config.loader import Config
from mlci.engine.gates.baseline import baseline_identity
from mlci.engine.git.worktree import git_env, tree_of

__all__ = ["ContentKey", "content_key", "installed_packages"]

_CONFIG_FILES = ("mlci.yaml", "pyproject.toml", "model_gates.yaml")
_PARAM_FILES = ("params.yaml", "params.json", "params.toml", "params.py")


@dataclass(frozen=True)
class ContentKey:
    """A digest of what the check's verdict depends on, and its parts for saying what changed."""

    digest: str
    parts: tuple[tuple[str, str], ...]


def _blobs(root: Path, sha: str, gate_file: str | None) -> dict[str, str]:
    """Blob SHAs, at the commit, of the DVC records, the params and the config files, by kind."""
    done = subprocess.run(
        ["git", "ls-tree", "-r", "--full-tree", sha],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env=git_env(),
    )
    data, params, config = [], [], []
    wanted_config = {*_CONFIG_FILES, *((gate_file,) if gate_file else ())}
    for line in done.stdout.splitlines():
        meta, _, path = line.partition("\t")
        blob = meta.split()[-1]
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".dvc") or name == "dvc.lock":
            data.append(f"{path}={blob}")
        elif path in _PARAM_FILES:
            params.append(f"{path}={blob}")
        elif path in wanted_config:
            config.append(f"{path}={blob}")
    return {"data": ";".join(data), "params": ";".join(params), "config": ";".join(config)}


def _distribution_folders(path: list[str]) -> list[str]:
    """The `name-version.dist-info` (and `.egg-info`) folders on an interpreter's path, sorted.

    The names carry name and version; listing them is about a hundred times faster than
    reading every distribution's metadata (`importlib.metadata`), which matters for an answer
    in under a second.
    """
    names: set[str] = set()
    for entry in path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        names.update(n for n in listing if n.endswith((".dist-info", ".egg-info")))
    return sorted(names)


_OTHER_INTERPRETER = (
    "import os, sys\n"
    "names = set()\n"
    "for entry in sys.path:\n"
    "    try:\n"
    "        names.update(n for n in os.listdir(entry or '.') if n.endswith(('.dist-info', '.egg-info')))\n"
    "    except OSError:\n"
    "        pass\n"
    "print(sys.executable, sys.version, *sorted(names), sep='\\n')\n"
)
"""`_distribution_folders` for an interpreter other than mlci's, with what `installed_packages` prints first."""


def installed_packages(python: str | None = None) -> str:
    """The interpreter, its version and its installed distributions (their folder names), one per line."""
    if python is None or Path(python) == Path(sys.executable):
        return "\n".join([sys.executable, sys.version, *_distribution_folders(sys.path)]) + "\n"
    done = subprocess.run([python, "-c", _OTHER_INTERPRETER], capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else f"unreadable: {python}"


def _mlci_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlci-tui")
    except PackageNotFoundError:
        return "unknown"


def content_key(config: Config, sha: str, *, full: bool) -> ContentKey:
    """The key of checking commit `sha` of the project at `config.root` (quick or `full` training)."""
    root = config.root
    gate_file = config.gates_path.relative_to(root).as_posix() if config.gates_path is not None else None
    from mlci.engine.run.interpreter import project_interpreter

    packages = installed_packages(str(project_interpreter(config).path))
    parts = {
        "tree": tree_of(root, sha),
        **_blobs(root, sha, gate_file),
        "environment": hashlib.sha256(packages.encode()).hexdigest(),
        "baseline": baseline_identity(config) if config.gates is not None else "",
        "mlci": _mlci_version(),
        "mode": "full" if full else "quick",
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return ContentKey(digest, tuple(sorted(parts.items())))
