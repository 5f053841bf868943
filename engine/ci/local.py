"""The `local` CI provider: a bare repository that runs mlci's checks when a commit is pushed to it.

A `post-receive` hook (installed by `mlci demo` in the sandbox's remote, or by
`mlci ci init --provider local` in any bare repository on this machine) starts
`python -m mlci.engine.ci.local_run` for each pushed branch tip. That worker checks the
commit on a fresh clone, in the background, and keeps the run's record in the bare
repository (`mlci-ci/<sha>.json`, its log beside it), where `mlci ci status` and the
dashboard's CI panel read it exactly as they read GitHub's API. Offline, where talks
happen, and for a team whose remote is a bare repository on a shared server.

`mlci-ci/settings.json` says where the worker finds what a clone lacks: the DVC remote
holding the data (paths relative to the bare repository) and the MLflow store holding
the champion the regression gate compares with.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from mlci.engine.errors import MlciError
from mlci.engine.events import CiJob, CiRun

__all__ = [
    "RUNS_DIR",
    "LocalRun",
    "install_hook",
    "local_remote_path",
    "local_runs",
    "read_run",
    "read_settings",
    "write_run",
]

RUNS_DIR = "mlci-ci"
"""The folder, inside the bare repository, that holds the runs and the settings."""
HOOK_MARK = "# mlci: local CI"
"""A line in the hooks mlci writes, so that it replaces its own hook and never a user's."""


@dataclass
class LocalRun:
    """One check of one pushed commit, as the worker records it."""

    sha: str
    ref: str
    status: str = "queued"
    """queued, in_progress or completed: the statuses CiRun uses for every provider."""
    conclusion: str | None = None
    jobs: list[dict[str, str | None]] = field(default_factory=list)
    """One per tier (and the gates): name, status, conclusion, in the order they started."""
    log: str = ""

    def job(self, name: str, status: str, conclusion: str | None = None) -> None:
        for job in self.jobs:
            if job["name"] == name:
                job["status"], job["conclusion"] = status, conclusion
                return
        self.jobs.append({"name": name, "status": status, "conclusion": conclusion})


def local_remote_path(url: str) -> Path | None:
    """The bare repository a remote URL names on this machine (a path or file:// URL), else None."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = Path(parsed.path)
    elif parsed.scheme or ":" in url.split("/", 1)[0]:  # https://..., ssh://..., git@host:...
        return None
    else:
        path = Path(url)
    return path if (path / "HEAD").is_file() and (path / "objects").is_dir() else None


def _runs_dir(bare: Path) -> Path:
    return bare / RUNS_DIR


def write_run(bare: Path, run: LocalRun) -> None:
    """Store the run's record atomically: a follower never reads half of it."""
    folder = _runs_dir(bare)
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{run.sha}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(run), indent=1), encoding="utf-8")
    tmp.replace(folder / f"{run.sha}.json")


def read_run(bare: Path, sha: str) -> LocalRun | None:
    try:
        data = json.loads((_runs_dir(bare) / f"{sha}.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise MlciError(f"unreadable local CI record for {sha[:12]} in {bare}: {exc}") from None
    return LocalRun(**data)


def local_runs(bare: Path, sha: str) -> tuple[CiRun, ...]:
    """The runs of `sha` in the shapes every provider's are followed in (one run: `mlci check`)."""
    run = read_run(bare, sha)
    if run is None:
        return ()
    jobs = tuple(CiJob(str(j["name"]), str(j["status"]), j.get("conclusion")) for j in run.jobs)
    return (
        CiRun(
            provider="local",
            run_id=sha[:12],
            name="mlci check",
            status=run.status,
            conclusion=run.conclusion,
            url=run.log,
            jobs=jobs,
        ),
    )


def read_settings(bare: Path) -> dict[str, str]:
    """The worker's settings, relative paths resolved against the bare repository."""
    try:
        data = json.loads((_runs_dir(bare) / "settings.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise MlciError(f"unreadable {_runs_dir(bare) / 'settings.json'}: {exc}") from None
    return {key: str((bare / value).resolve()) if key.endswith("_path") else str(value) for key, value in data.items()}


def _hook(python: str) -> str:
    return (
        "#!/bin/sh\n"
        f"{HOOK_MARK}: each pushed branch tip is checked on a fresh clone, in the background.\n"
        "while read old new ref; do\n"
        '  case "$new" in 0000000000000000000000000000000000000000) continue ;; esac\n'
        '  case "$ref" in refs/heads/*) ;; *) continue ;; esac\n'
        f'  {shlex.quote(python)} -m mlci.engine.ci.local_run "$PWD" "$new" "$ref"\n'
        "done\n"
    )


def install_hook(bare: Path, *, settings: Mapping[str, str] | None = None, python: str = sys.executable) -> Path:
    """Install the post-receive hook in `bare`; refuse to replace a hook mlci did not write.

    `settings`: `dvc_remote_path` and `mlflow_db_path` (relative to `bare` or absolute),
    `tracking_uri`; whatever the clone needs and lacks.
    """
    hook = bare / "hooks" / "post-receive"
    if hook.exists() and HOOK_MARK not in hook.read_text(encoding="utf-8", errors="replace"):
        raise MlciError(f"{hook} exists and was not written by mlci: add a line that runs the local CI to it yourself")
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(_hook(python), encoding="utf-8")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    folder = _runs_dir(bare)
    folder.mkdir(exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(dict(settings or {}), indent=1) + "\n", encoding="utf-8")
    return hook
