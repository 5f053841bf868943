"""`push_branch` and `plan_push` against real repositories and a real bare remote.

The pre-push check is injected here (a green or red result) so these tests are about the
push; `tests/e2e/test_push_cli.py` runs `mlci push` with the real check.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlci.engine.errors import MlciError
from mlci.engine.events import PushProgress
from mlci.engine.git.push import plan_push, push_branch, scrub_url

from tests.gitrepos import commit, git, isolated_git, make_clone, make_repo, refs


@dataclass(frozen=True)
class FakeResult:
    ok: bool
    failures: tuple[str, ...] = ()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolated_git(monkeypatch, tmp_path)


def _collect() -> tuple[list[PushProgress], Callable[[PushProgress], None]]:
    events: list[PushProgress] = []
    return events, events.append


def test_green_push_arrives_with_upstream_set(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    commit(work, "src/model.py", "LR = 0.1\n", "tune the learning rate")
    head = git(work, "rev-parse", "HEAD")
    calls: list[str] = []
    events, emit = _collect()

    def check() -> FakeResult:
        calls.append("check")
        return FakeResult(ok=True)

    plan = plan_push(work)
    assert plan.new_branch and plan.total_commits == 2
    assert [c.subject for c in plan.commits] == ["tune the learning rate", "first commit"]
    outcome = push_branch(work, check=check, progress=emit)

    assert calls == ["check"]
    assert outcome.pushed and outcome.verified
    assert git(bare, "rev-parse", "refs/heads/main") == head
    assert git(work, "rev-parse", "--abbrev-ref", "main@{upstream}") == "origin/main"
    stages = [e.stage for e in events]
    assert stages[0] == "check" and stages[-1] == "done" and "push" in stages
    assert events[-1].ok is True
    assert any(e.stage == "push" and e.percent is not None and e.percent > 0 for e in events), events
    # Once pushed, there is nothing left to push, and the plan says so without running the check again.
    again = push_branch(work, check=check, progress=lambda e: None)
    assert not again.pushed and "nothing to push" in again.message and calls == ["check"]


def test_second_push_lists_only_the_new_commits(tmp_path: Path) -> None:
    work, _bare = make_repo(tmp_path, push_first=True)
    commit(work, "a.py", "A = 1\n", "add a")
    commit(work, "b.py", "B = 2\n", "add b")
    plan = plan_push(work)
    assert not plan.new_branch and plan.upstream == "origin/main"
    assert [c.subject for c in plan.commits] == ["add b", "add a"]
    assert plan.summary() == "push 2 commits of main to origin/main"


def test_red_check_refuses_and_the_remote_is_unchanged(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path, push_first=True)
    commit(work, "src/features.py", "X = 1\n", "new feature")
    before_remote, before_local = refs(bare), refs(work)
    events, emit = _collect()

    red = FakeResult(ok=False, failures=("code tier: tests/unit/test_features.py::test_scaling failed",))
    with pytest.raises(MlciError) as info:
        push_branch(work, check=lambda: red, progress=emit)

    message = str(info.value)
    assert "pre-push check failed" in message and "test_scaling" in message and "nothing was pushed" in message
    assert refs(bare) == before_remote
    assert refs(work) == before_local
    assert events[-1].stage == "done" and events[-1].ok is False


def test_non_fast_forward_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path, push_first=True)
    other = make_clone(bare, tmp_path / "colleague")
    commit(other, "their.py", "THEIRS = 1\n", "their change")
    git(other, "push", "-q", "origin", "main")
    commit(work, "mine.py", "MINE = 1\n", "my change")
    (work / "notes.txt").write_text("work in progress\n")  # an untracked file must survive too
    before_remote, before_local = refs(bare), refs(work)
    before_status = git(work, "status", "--porcelain")

    with pytest.raises(MlciError) as info:
        push_branch(work, check=lambda: FakeResult(ok=True), progress=lambda e: None)

    message = str(info.value)
    assert "non-fast-forward" in message and "pull or rebase" in message and "never forces" in message
    assert "\n" not in message
    assert refs(bare) == before_remote
    assert refs(work) == before_local
    assert git(work, "status", "--porcelain") == before_status
    assert (work / "notes.txt").read_text() == "work in progress\n"


def test_a_remote_that_refuses_says_why(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected: open a pull request'\nexit 1\n")
    hook.chmod(0o755)
    before = refs(work)
    with pytest.raises(MlciError) as info:
        push_branch(work, check=None, progress=lambda e: None)
    message = str(info.value)
    assert message.startswith("the remote refused the push of main (remote rejected")
    assert message.endswith("main is protected: open a pull request") and "\n" not in message
    assert refs(bare) == "" and refs(work) == before


def test_a_failing_pre_push_hook_of_the_users_own_is_named(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    hook = work / ".git" / "hooks" / "pre-push"
    hook.write_text("#!/bin/sh\necho 'lint: trailing whitespace in model.py' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(MlciError, match=r"^a pre-push hook refused the push: lint: trailing whitespace in model.py"):
        push_branch(work, check=lambda: FakeResult(ok=True), progress=lambda e: None)
    assert refs(bare) == ""


def test_missing_remote_lists_the_remotes_and_changes_nothing(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    git(work, "remote", "rename", "origin", "upstream")
    before = refs(work), git(work, "status", "--porcelain")
    with pytest.raises(MlciError, match=r"no remote named 'origin': the remotes are: upstream"):
        push_branch(work, check=lambda: FakeResult(ok=True), progress=lambda e: None)
    assert (refs(work), git(work, "status", "--porcelain")) == before
    assert refs(bare) == ""


def test_no_remote_at_all(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path, with_remote=False)
    with pytest.raises(MlciError, match="this repository has no remote"):
        plan_push(work)


def test_detached_head_is_refused(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path)
    git(work, "checkout", "-q", "--detach")
    with pytest.raises(MlciError, match=r"HEAD is detached at [0-9a-f]{8}: check out a branch"):
        plan_push(work)


def test_merge_in_progress_is_refused(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    git(work, "checkout", "-q", "-b", "feature")
    commit(work, "README.md", "# feature\n", "feature readme")
    git(work, "checkout", "-q", "main")
    commit(work, "README.md", "# main\n", "main readme")
    git(work, "merge", "feature", check=False)  # conflicts: the merge stays in progress
    assert (work / ".git" / "MERGE_HEAD").exists()
    with pytest.raises(MlciError, match="a merge is in progress: finish or abort it"):
        push_branch(work, check=lambda: FakeResult(ok=True), progress=lambda e: None)
    assert refs(bare) == ""


def test_uncommitted_changes_are_a_warning_and_stay_local(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    (work / "README.md").write_text("# edited, not committed\n")
    (work / "scratch.py").write_text("print('hi')\n")
    plan = plan_push(work)
    assert plan.warnings() == ("2 uncommitted changes will not be pushed (only commits are)",)
    outcome = push_branch(work, check=lambda: FakeResult(ok=True), progress=lambda e: None)
    assert outcome.pushed and outcome.warnings == plan.warnings()
    assert git(bare, "show", "main:README.md") == "# project"
    assert (work / "README.md").read_text() == "# edited, not committed\n"


def test_no_verify_skips_the_check_and_says_so(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    events, emit = _collect()
    outcome = push_branch(work, check=None, progress=emit)
    assert outcome.pushed and not outcome.verified
    assert events[0].message == "pre-push check SKIPPED (--no-verify)"
    assert "--no-verify" in outcome.message
    assert git(bare, "rev-parse", "main") == git(work, "rev-parse", "HEAD")


def test_a_branch_that_moved_after_confirmation_is_not_pushed(tmp_path: Path) -> None:
    work, bare = make_repo(tmp_path)
    confirmed = plan_push(work)
    commit(work, "late.py", "LATE = 1\n", "committed after the confirmation")
    with pytest.raises(MlciError, match="moved since the push was confirmed"):
        push_branch(work, check=None, progress=lambda e: None, plan=confirmed)
    assert refs(bare) == ""


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def auth_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("credentials", ["", "ada:s3cr3t-t0ken@"])
def test_authentication_failure_is_one_clear_line_without_secrets(
    tmp_path: Path, auth_server: str, credentials: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    work, _ = make_repo(tmp_path, with_remote=False)
    git(work, "remote", "add", "origin", f"http://{credentials}{auth_server}/project.git")
    before = refs(work)
    with pytest.raises(MlciError) as info:
        push_branch(work, check=None, progress=lambda e: None)
    message = str(info.value)
    assert message.startswith("authentication to origin")
    assert "nothing was pushed" in message and "\n" not in message
    assert "s3cr3t" not in message
    assert refs(work) == before
    assert git(work, "config", "--get", "branch.main.remote", check=False) == ""


def test_unreachable_remote_is_one_clear_line(tmp_path: Path) -> None:
    work, _ = make_repo(tmp_path, with_remote=False)
    git(work, "remote", "add", "origin", str(tmp_path / "does-not-exist.git"))
    with pytest.raises(MlciError) as info:
        push_branch(work, check=None, progress=lambda e: None)
    message = str(info.value)
    assert message.startswith("could not push to origin") and "\n" not in message


def test_scrub_url_hides_credentials() -> None:
    assert scrub_url("fatal: https://ada:tok@host/x.git and ssh://git@h/y") == (
        "fatal: https://***@host/x.git and ssh://***@h/y"
    )
