"""`mlci hooks install`: a real `git push` to a real bare remote runs `mlci check` first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlci.engine.git.hooks import HOOK_MARKER

from tests.gitrepos import git, isolated_git, make_repo, refs, tiny_project

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolated_git(monkeypatch, tmp_path)


def _mlci(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _push(work: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLCI_CHECKED_HEAD"}
    return subprocess.run(
        ["git", "push", "origin", "main"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )


def test_the_hook_blocks_a_red_push_and_lets_a_green_one_through(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    tiny_project(work, failing=True)
    installed = _mlci(work, "hooks", "install")
    assert installed.returncode == 0, installed.stderr
    assert "installed the pre-push hook" in installed.stdout

    blocked = _push(work)
    assert blocked.returncode != 0
    assert "test_rounding_is_broken" in blocked.stdout + blocked.stderr
    assert refs(bare) == ""

    tiny_project(work, failing=False)  # fix the test: rewrite the file without the red one, commit
    done = _push(work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(bare, "rev-parse", "main") == git(work, "rev-parse", "HEAD")


def test_reinstall_is_quiet_and_a_foreign_hook_needs_force(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path)
    hook = work / ".git" / "hooks" / "pre-push"
    hook.write_text("#!/bin/sh\necho their hook\n")
    refused = _mlci(work, "hooks", "install")
    assert refused.returncode == 1
    assert "is not mlci's: pass --force to replace it" in refused.stderr
    assert hook.read_text() == "#!/bin/sh\necho their hook\n"

    forced = _mlci(work, "hooks", "install", "--force")
    assert forced.returncode == 0 and "pre-push.orig" in forced.stdout
    assert HOOK_MARKER in hook.read_text() and os.access(hook, os.X_OK)
    assert (hook.parent / "pre-push.orig").read_text() == "#!/bin/sh\necho their hook\n"

    again = _mlci(work, "hooks", "install")
    assert again.returncode == 0 and "updated the mlci pre-push hook" in again.stdout


def test_core_hooks_path_is_respected(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path)
    git(work, "config", "core.hooksPath", ".githooks")
    assert _mlci(work, "hooks", "install").returncode == 0
    assert HOOK_MARKER in (work / ".githooks" / "pre-push").read_text()
    assert not (work / ".git" / "hooks" / "pre-push").exists()


def test_pre_commit_users_get_the_same_check_at_pre_push() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "mlci-check" and hook["entry"] == "mlci check"
    assert hook["stages"] == ["pre-push"]
    assert hook["language"] == "python" and hook["pass_filenames"] is False and hook["always_run"] is True


def test_mlci_push_does_not_run_the_check_twice(tmp_path: Path) -> None:
    """After `mlci push`'s own check passed, the installed hook trusts it for that very commit."""
    from dataclasses import dataclass

    from mlci.engine.git.push import push_branch

    @dataclass(frozen=True)
    class Green:
        ok: bool = True
        failures: tuple[str, ...] = ()

    work, bare = make_repo(tmp_path)
    tiny_project(work, failing=True)  # the hook's own check would be red, and block the push
    assert _mlci(work, "hooks", "install").returncode == 0
    outcome = push_branch(work, check=Green, progress=lambda e: None)
    assert outcome.pushed
    assert git(bare, "rev-parse", "main") == git(work, "rev-parse", "HEAD")


def test_the_hook_runs_the_check_for_any_other_commit(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path)
    tiny_project(work, failing=True)
    assert _mlci(work, "hooks", "install").returncode == 0
    hook = work / ".git" / "hooks" / "pre-push"
    head = git(work, "rev-parse", "HEAD")
    env = dict(os.environ, MLCI_CHECKED_HEAD="1" * 40)
    done = subprocess.run(
        [str(hook), "origin", "x"],
        cwd=work,
        env=env,
        input=f"refs/heads/main {head} refs/heads/main {'0' * 40}\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 1
    assert "test_rounding_is_broken" in done.stdout + done.stderr
    assert f"refs/heads/main ({head[:8]}) is red" in done.stderr


def _branch_with_a_red_commit(work: Path) -> None:
    """main green and on the remote; `broken` one commit ahead whose unit test fails."""
    tiny_project(work, failing=False)
    git(work, "push", "-q", "--no-verify", "-u", "origin", "main")
    git(work, "checkout", "-q", "-b", "broken")
    tiny_project(work, failing=True)
    git(work, "checkout", "-q", "main")


def test_the_hook_checks_the_pushed_branch_not_the_checked_out_one(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    _branch_with_a_red_commit(work)
    assert _mlci(work, "hooks", "install").returncode == 0
    before = refs(bare)
    env = {k: v for k, v in os.environ.items() if k != "MLCI_CHECKED_HEAD"}

    done = subprocess.run(
        ["git", "push", "origin", "broken"], cwd=work, capture_output=True, text=True, env=env, timeout=300
    )

    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "refs/heads/broken" in said and "is red" in said and "test_rounding_is_broken" in said
    assert refs(bare) == before
    assert git(work, "rev-parse", "--abbrev-ref", "HEAD") == "main"  # the user's checkout is untouched


def test_deleting_a_remote_branch_needs_no_check(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    _branch_with_a_red_commit(work)
    git(work, "push", "-q", "--no-verify", "origin", "broken")
    assert _mlci(work, "hooks", "install").returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "MLCI_CHECKED_HEAD"}

    done = subprocess.run(
        ["git", "push", "origin", "--delete", "broken"], cwd=work, capture_output=True, text=True, env=env, timeout=300
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "refs/heads/broken is deleted: nothing to check" in done.stdout + done.stderr
    assert "refs/heads/broken" not in refs(bare)


def test_malformed_hook_input_is_one_line() -> None:
    from mlci.engine.errors import MlciError
    from mlci.engine.git.hooks import parse_pushed_refs

    with pytest.raises(MlciError, match=r"^<stdin>:2: expected"):
        parse_pushed_refs(f"refs/heads/a {'1' * 40} refs/heads/a {'0' * 40}\nnonsense\n")
