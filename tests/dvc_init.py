"""`dvc init` for the tests' projects: what DVC itself writes, made once per worker and copied.

A `python -m dvc init` costs 0.4 CPU-s (DVC's imports), and the suite's projects ran it at
least 36 times. What it leaves does not depend on the project: `.dvc/` (an empty
config, a `.gitignore`, `tmp/btime`) and `.dvcignore`, the first three staged in git. So the
first call in a worker runs the real command in a scratch repository, and every call copies
what it wrote and stages the same files, as `dvc init` does.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["dvc_init"]

STAGED = (".dvc/.gitignore", ".dvc/config", ".dvcignore")
"""What `dvc init` adds to git's index."""


@functools.cache
def _template() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="tests-dvc-init-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=scratch, check=True, env=env, capture_output=True)
    return scratch


def dvc_init(root: Path, *, config: str = "") -> None:
    """What `dvc init` does in the git repository `root`; `config` replaces the empty `.dvc/config` it writes."""
    template = _template()
    # Without the template's times: DVC keys a repository's site cache on `.dvc/tmp/btime`'s mtime
    # (with its path), so that a new repository where a deleted one was gets a cache of its own.
    shutil.copytree(template / ".dvc", root / ".dvc", copy_function=shutil.copy)
    shutil.copy(template / ".dvcignore", root / ".dvcignore")
    subprocess.run(["git", "add", *STAGED], cwd=root, check=True, capture_output=True)
    if config:  # as `dvc config` would write it after `dvc init`: not staged
        (root / ".dvc" / "config").write_text(config, encoding="utf-8")
