"""The `local` CI provider on real repositories: a bare remote's post-receive hook checks each pushed commit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlci.engine.ci.local import install_hook, local_remote_path, local_runs, read_run
from mlci.engine.errors import MlciError

from tests.loop_projects import git, make_project, write

pytestmark = pytest.mark.usefixtures("only_testmon")

MLCI = str(Path(sys.executable).with_name("mlci"))
GREEN = {"tests/test_ok.py": "def test_ok():\n    assert 1 + 1 == 2\n"}


def _with_local_ci(tmp_path: Path) -> tuple[Path, Path]:
    project = make_project(tmp_path / "proj", tests=GREEN)
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    git(project, "remote", "add", "origin", str(bare))
    git(project, "push", "-q", "origin", "main")
    result = subprocess.run(
        [MLCI, "ci", "init", "--provider", "local", str(project)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "installed" in result.stdout
    return project, bare


def _push(project: Path, branch: str, tests: dict[str, str]) -> tuple[str, str]:
    git(project, "checkout", "-q", "-B", branch)
    for name, text in tests.items():
        write(project / name, text)
    git(project, "add", "-A")
    git(project, "commit", "-q", "--allow-empty", "-m", f"on {branch}")
    pushed = subprocess.run(["git", "push", "origin", branch], cwd=project, capture_output=True, text=True, check=True)
    return git(project, "rev-parse", "HEAD").strip(), pushed.stderr


def _status(project: Path, sha: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLCI, "ci", "status", "--sha", sha, "--interval", "0.5", *extra, str(project)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_a_local_path_or_file_url_names_a_local_remote(tmp_path: Path) -> None:
    _project, bare = _with_local_ci(tmp_path)
    assert local_remote_path(str(bare)) == bare
    assert local_remote_path(f"file://{bare}") == bare
    assert local_remote_path(str(tmp_path)) is None  # not a bare repository
    assert local_remote_path("git@github.com:acme/credit.git") is None
    assert local_remote_path("https://gitlab.com/acme/credit.git") is None


def test_a_green_push_is_followed_from_queued_to_green(tmp_path: Path) -> None:
    project, bare = _with_local_ci(tmp_path)
    sha, push_output = _push(project, "feature", {"tests/test_more.py": "def test_more():\n    assert True\n"})
    assert f"local CI queued for {sha[:12]}" in push_output  # git shows the hook's line as "remote: ..."
    result = _status(project, sha)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "following local CI" in result.stdout and "all runs passed" in result.stdout
    (run,) = local_runs(bare, sha)
    assert run.status == "completed" and run.conclusion == "success"
    assert [(j.name, j.conclusion) for j in run.jobs] == [("clone", "success"), ("code", "success")]
    assert "1 passed" in Path(run.url).read_text() or "2 passed" in Path(run.url).read_text()


def test_a_red_push_is_followed_to_red(tmp_path: Path) -> None:
    project, bare = _with_local_ci(tmp_path)
    sha, _ = _push(project, "broken", {"tests/test_ok.py": "def test_ok():\n    assert 1 + 1 == 3\n"})
    result = _status(project, sha, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    statuses = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert statuses[-1]["runs"][0]["conclusion"] == "failure"
    record = read_run(bare, sha)
    assert record is not None and ("code", "failure") in [(j["name"], j["conclusion"]) for j in record.jobs]


def test_a_deleted_branch_starts_no_check(tmp_path: Path) -> None:
    project, bare = _with_local_ci(tmp_path)
    sha, _ = _push(project, "gone", {})
    _status(project, sha)
    git(project, "push", "-q", "origin", "--delete", "gone")
    runs = sorted(p.name for p in (bare / "mlci-ci").glob("*.json"))
    assert runs == sorted([f"{sha}.json", "settings.json"])


def test_a_hook_mlci_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    (bare / "hooks" / "post-receive").write_text("#!/bin/sh\necho the team's own hook\n")
    with pytest.raises(MlciError, match="not written by mlci"):
        install_hook(bare)
    assert "team's own hook" in (bare / "hooks" / "post-receive").read_text()
