"""The project's own DVC repository, for the modules that read DVC's metrics, params and outputs.

DVC's `Repo.open` takes a folder that is in no DVC repository for a git URL: it clones the whole
git repository into a temporary folder (`tmp*dvc-clone`, beside a `tmp*dvc-cache`) that only
DVC's own command line removes. mlci opens the project's repository each time the dashboard
opens and after each model-tier run: on a git project without DVC, each was a clone of the
whole history, left in /tmp. Here such a folder is simply not a DVC repository.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlci.engine.errors import MlciError

__all__ = ["in_dvc_repo", "open_dvc_repo"]


def in_dvc_repo(root: Path) -> bool:
    """Whether `root` lies in a DVC repository: a `.dvc` folder there or in a folder above, as DVC looks for it
    (up to the mount point). Without importing DVC."""
    folder = root.resolve()
    while True:
        if (folder / ".dvc").is_dir():
            return True
        if os.path.ismount(folder) or folder.parent == folder:
            return False
        folder = folder.parent


def open_dvc_repo(root: Path) -> Any:
    """DVC's `Repo` for `root` (a context manager), never a clone of it; MlciError when it is in no DVC repository."""
    if not in_dvc_repo(root):
        raise MlciError(f"{root} is not in a DVC repository")
    from dvc.repo import Repo

    return Repo.open(str(root))
