"""The paths DVC tracks, which git ignores by design: what the watcher must watch on top of git.

Read from the documented file formats (`*.dvc`, `dvc.yaml`, `dvc.lock`) with a YAML
parser rather than through DVC's Python API: the watcher has to know these paths the
moment it starts, and importing DVC and building its index costs a second or more
(the idle benchmark of `mlci watch` would pay it too). The lock file holds the resolved
paths of templated stages (`foreach`, `${...}`), so nothing is lost by not evaluating
templates here. The planner, which needs DVC's semantics (the stage graph), uses the API.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["DVC_METAFILE_NAMES", "dvc_tracked_paths", "is_dvc_metafile"]

DVC_METAFILE_NAMES = ("dvc.yaml", "dvc.lock")
"""Besides `*.dvc` files, the files that name DVC-tracked paths."""

_PATH_SECTIONS = ("outs", "deps", "metrics", "plots")


def is_dvc_metafile(path: str) -> bool:
    """True for a `.dvc` file, `dvc.yaml` or `dvc.lock` (at any depth): they name what DVC tracks."""
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".dvc") or name in DVC_METAFILE_NAMES


def _metafiles(root: Path) -> list[str]:
    """Every `.dvc`, `dvc.yaml` and `dvc.lock` git would show (tracked, or untracked and not ignored)."""
    proc = subprocess.run(
        [
            "git",
            "ls-files",
            "-z",
            "-co",
            "--exclude-standard",
            "--",
            ":(glob)**/*.dvc",
            ":(glob)**/dvc.yaml",
            ":(glob)**/dvc.lock",
        ],
        cwd=root,
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        return []
    return sorted({p for p in os.fsdecode(proc.stdout).split("\0") if p and is_dvc_metafile(p)})


def _entry_paths(entries: Any) -> Iterator[str]:
    """Paths of a `deps`/`outs` list: plain strings, `{path: {options}}` or lock-style `{path: ...}`."""
    if not isinstance(entries, list):
        return
    for entry in entries:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            if isinstance(entry.get("path"), str):
                yield entry["path"]
            elif len(entry) == 1:
                (key,) = entry
                if isinstance(key, str):
                    yield key


def _stage_paths(stage: Any) -> Iterator[str]:
    if not isinstance(stage, dict):
        return
    for section in _PATH_SECTIONS:
        yield from _entry_paths(stage.get(section))


def _paths_in(data: Any, name: str) -> Iterator[tuple[str, str]]:
    """(working directory relative to the file, path) for every tracked path a DVC file names."""
    if not isinstance(data, dict):
        return
    if name.endswith(".dvc"):
        wdir = data.get("wdir", ".")
        for path in _entry_paths(data.get("outs")):
            yield str(wdir), path
        return
    stages = data.get("stages")
    if not isinstance(stages, dict):
        return
    for stage in stages.values():
        wdir = stage.get("wdir", ".") if isinstance(stage, dict) else "."
        for path in _stage_paths(stage):
            yield str(wdir), path


def _normalise(root: Path, base: PurePosixPath, wdir: str, path: str) -> str | None:
    """The project-relative POSIX path, or None for a templated, remote or outside path."""
    if "${" in path or "${" in wdir or "://" in path:
        return None
    joined = os.path.normpath(os.path.join(str(base), wdir, path))
    if os.path.isabs(path):
        try:
            joined = os.path.relpath(path, root)
        except ValueError:
            return None
    rel = PurePosixPath(joined.replace(os.sep, "/"))
    if rel.is_absolute() or (rel.parts and rel.parts[0] == "..") or str(rel) == ".":
        return None
    return str(rel)


def dvc_tracked_paths(root: Path, metafiles: Iterable[str] | None = None) -> tuple[str, ...]:
    """Project-relative paths (files or directories) that DVC tracks: outs and deps of every stage.

    A file that cannot be read or parsed is skipped: while it is being edited it may well
    be invalid, and the watcher must keep going (it rereads these files when they change).
    """
    import yaml  # a dependency of DVC and of mlci; kept out of module import time

    found: set[str] = set()
    for name in metafiles if metafiles is not None else _metafiles(root):
        try:
            data = yaml.safe_load((root / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        base = PurePosixPath(name).parent
        for wdir, path in _paths_in(data, name):
            rel = _normalise(root, base, wdir, path)
            if rel is not None:
                found.add(rel)
    return tuple(sorted(found))
