"""What a tier's runs imported beyond its server's preloads: kept, so that the next server preloads it too.

A test that calls `torch.use_deterministic_algorithms` imports `torch._dynamo` (1.7 s) on its
first call; no reading of the project's imports finds that. The warm runner learns it from the
runs and keeps it in two places:

* the project's own `.mlci/warm/`, per (tier, interpreter): what this project's runs imported;
* the user's cache (`private_dir.user_cache_dir`), per (interpreter, the modules the tier's
  tests reach, as `preload` reads them): so that a copy of the project that has learned nothing
  yet (a fresh clone, a worktree, each new demo sandbox) starts its first server with them,
  instead of learning them in its first run and preloading everything again in a replacement.

The project's own list, once there is one, is the one read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from mlci.engine.config.private_dir import PRIVATE_DIR, private_dir, user_cache_dir

__all__ = ["LEARNED_DIR", "MAX_LEARNED", "load_learned", "save_learned"]

MAX_LEARNED = 5000
"""Learned modules kept per list at most: a bound on what a server is asked to import."""

LEARNED_DIR = "warm"
"""The folder, in the project's `.mlci/` and in the user's cache."""

Key = tuple[str, str, str]
"""(interpreter, project root, tier): one server's."""


def _project_file(key: Key) -> Path:
    interpreter, root, tier = key
    # Twelve hex digits: the name earlier mlci versions gave it, whose lists are read as they are.
    return Path(root) / PRIVATE_DIR / LEARNED_DIR / f"{tier}-{_digest(interpreter)[:12]}.learned.json"


def _shared_name(key: Key, reached: Sequence[str]) -> str:
    return f"{_digest(key[0] + chr(0) + chr(0).join(sorted(reached)))}.learned.json"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read(path: Path) -> set[str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {str(m) for m in data} if isinstance(data, list) else None


def _write(path: Path, modules: set[str]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(sorted(modules)[:MAX_LEARNED]), encoding="utf-8")
    tmp.replace(path)


def load_learned(key: Key, reached: Sequence[str]) -> set[str]:
    """What earlier runs imported beyond the preloads: this project's list, else what a copy of it learned.

    `reached` is what the tier's tests reach (`preload.preload_modules`), which names the copies.
    """
    own = _read(_project_file(key))
    if own is not None:
        return own
    with contextlib.suppress(OSError):
        return _read(user_cache_dir(LEARNED_DIR) / _shared_name(key, reached)) or set()
    return set()


def save_learned(key: Key, reached: Sequence[str], modules: set[str]) -> None:
    """Keep `modules` as this project's list and as the one its copies start from."""
    with contextlib.suppress(OSError):
        _write(private_dir(Path(key[1]), LEARNED_DIR) / _project_file(key).name, modules)
    with contextlib.suppress(OSError):
        _write(user_cache_dir(LEARNED_DIR) / _shared_name(key, reached), modules)
