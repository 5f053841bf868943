"""Where the pre-push check runs: in place when the working tree is the commit, else in a temporary worktree.

In place only when nothing of the user's could mix in or be written: HEAD is the commit,
git sees no uncommitted or untracked file, DVC sees the tracked data exactly as the
commit's `.dvc` files and `dvc.lock` say (`dvc status`: so no stage is stale and the
model tier's `dvc repro` writes nothing), and nobody edits meanwhile (a watching session
never checks in place). Otherwise a detached worktree at the commit, with the DVC data
linked from the project's own cache (its cache dir, `cache.type` reflink, hardlink or
symlink; never copied), the config read from the commit, and MLflow runs logged to the
project's store. Whatever the model tier writes (dvc.lock, metrics, models) lands in the
worktree, which is removed afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlci.engine.config.loader import Config, load_config
from mlci.engine.errors import MlciError
from mlci.engine.git.worktree import git_env, temporary_worktree, working_tree_differs

__all__ = ["CheckSite", "check_site", "is_git_repository"]

LINK_TYPES = "reflink,hardlink,symlink"
"""How the worktree's DVC data comes from the cache: linked, in DVC's order of preference, never copied."""
DVC_TIMEOUT_S = 600.0
_QUOTED = ",#\"'\n"
"""Characters a value in DVC's config format (configobj) would need quoted: a list separator, a comment, quotes."""


@dataclass(frozen=True)
class CheckSite:
    """Where the check of one commit runs, and why there."""

    config: Config
    """The commit's config; its root is where the tiers run."""
    in_place: bool
    why: str
    """"in place: ..." or "in a temporary worktree: ...", for the person watching."""


def is_git_repository(root: Path) -> bool:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            env=git_env(),
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**git_env(), "DVC_NO_ANALYTICS": "1"}
    try:
        return subprocess.run(
            [sys.executable, "-m", "dvc", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=DVC_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MlciError(f"cannot run dvc {args[0]}: {exc}") from None


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


def _uses_dvc(root: Path) -> bool:
    return (root / ".dvc").is_dir()


def _data_differs(root: Path) -> str:
    """Why DVC's tracked data (or a stage) is not as the commit records it; "" when it is."""
    done = _dvc(root, "status", "--quiet")
    if done.returncode == 0:
        return ""
    return "DVC-tracked data or a stage differs from the commit (dvc status)"


def _in_place_refusal(root: Path, sha: str, allowed: bool) -> str:
    if not allowed:
        return "the dashboard watches the tree: an edit during the check must not mix in"
    differs = working_tree_differs(root, sha)
    if differs:
        return differs
    if _uses_dvc(root):
        return _data_differs(root)
    return ""


def _point_at_cache(worktree: Path, cache: str) -> None:
    """The worktree's DVC reads its data from `cache`, linked: `dvc config --local` for `cache.dir` and `cache.type`.

    A fresh worktree has no `.dvc/config.local` (DVC's own `.gitignore` keeps it out of git), so the file is
    written here, in DVC's format: two interpreters importing DVC less (a second on a busy machine). Should a
    commit carry one after all, or the path hold what DVC's format would have to quote, DVC writes them.
    """
    local = worktree / ".dvc" / "config.local"
    if not local.exists() and cache == cache.strip() and not set(cache) & set(_QUOTED):
        # As `dvc config` writes them: the list of link types quoted, or it would be read as a list.
        local.write_text(f'[cache]\n    dir = {cache}\n    type = "{LINK_TYPES}"\n', encoding="utf-8")
        return
    for args in (("cache", "dir", "--local", cache), ("config", "--local", "cache.type", LINK_TYPES)):
        done = _dvc(worktree, *args)
        if done.returncode != 0:
            raise MlciError(f"could not point the check's worktree at the DVC cache: {_last_line(done)}")


def _link_data(project: Path, worktree: Path) -> None:
    """Check the commit's DVC data out in the worktree, linked from the project's cache."""
    where = _dvc(project, "cache", "dir")
    if where.returncode != 0:
        raise MlciError(f"could not find the project's DVC cache: {_last_line(where)}")
    cache = where.stdout.strip().splitlines()[-1].strip() if where.stdout.strip() else ""
    if not cache:
        raise MlciError("could not find the project's DVC cache: `dvc cache dir` printed nothing")
    _point_at_cache(worktree, cache)
    done = _dvc(worktree, "checkout", "--quiet")
    if done.returncode != 0:
        raise MlciError(
            f"the commit's DVC data is not all in the cache ({_last_line(done)}): `dvc pull` it, then push again"
        )


@contextlib.contextmanager
def check_site(config: Config, sha: str, *, in_place: bool) -> Iterator[CheckSite]:
    """The place to check `sha`: the project itself when allowed and identical, else a worktree (removed on exit).

    Raises MlciError (one line) when the worktree cannot be made or its data linked.
    """
    root = config.root
    refusal = _in_place_refusal(root, sha, in_place)
    if not refusal:
        yield CheckSite(config, True, f"in place: the working tree is exactly {sha[:8]}")
        # An edit (or a test writing into the tree) during the check: its verdict is not the commit's.
        changed = _in_place_refusal(root, sha, True)
        if changed:
            raise MlciError(f"the working tree changed during the check ({changed}): check again")
        return
    with temporary_worktree(root, sha) as path:
        if _uses_dvc(path):
            _link_data(root, path)
        try:
            site_config = load_config(path)
        except MlciError as exc:  # name the file as the project has it, not by the worktree's temporary path
            raise MlciError(f"{sha[:8]}: {str(exc).replace(f'{path}/', '')}") from None
        # Runs go to the project's store (or none, as the project has it), whatever the commit's config says, and
        # the tiers run in the project's interpreter (a `.venv` at the root is not in the worktree).
        from mlci.engine.run.interpreter import project_interpreter

        site_config = dataclasses.replace(
            site_config,
            mlflow=dataclasses.replace(
                site_config.mlflow, tracking_uri=config.mlflow.tracking_uri, used=config.mlflow.used
            ),
            python=str(project_interpreter(config).path),
        )
        yield CheckSite(site_config, False, f"in a temporary worktree ({refusal})")
