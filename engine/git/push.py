"""Push the checked commit of the current branch to its remote, after the pre-push check, never forced.

Two steps, so that a person can see what will happen before it does:

* `plan_push` looks (read-only) at the repository and says what a push would send, or
  refuses with one clear line: not a repository, a detached HEAD, a git operation in
  progress, no such remote. Uncommitted changes are a warning, not a refusal: they stay
  local, and the plan says so.
* `push_branch` runs the injected pre-push check (of the plan's commit) and, only when it
  is green, pushes that very SHA, `<sha>:refs/heads/<b>`, then sets the upstream. It refuses
  when the branch moved since the plan (a commit made during the check was not checked).
  Every failure (red check, non-fast-forward, refused by the remote, authentication,
  unreachable remote) is an `MlciError` with one line, and a push that git refused changes
  nothing locally.

Nothing here ever forces: no `+` refspec and no `--force` flag are ever built.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlci.engine.config.redact import mask_credentials
from mlci.engine.errors import MlciError
from mlci.engine.events import PushCommit, PushPlan, PushProgress
from mlci.engine.git.state import open_repo, operation_in_progress, outgoing_commits

if TYPE_CHECKING:
    import git

__all__ = [
    "CHECKED_HEAD_ENV",
    "CheckOutcome",
    "PushOutcome",
    "PushPlan",
    "plan_push",
    "push_branch",
    "scrub_url",
]

CHECKED_HEAD_ENV = "MLCI_CHECKED_HEAD"
"""Set for the `git push` that mlci runs: the SHA the check just passed, so that mlci's own
pre-push hook does not check the same commit a second time."""

_AUTH_PATTERN = re.compile(
    r"authentication failed|permission denied|could not read (username|password)|"
    r"terminal prompts disabled|invalid username or password|\b40[13]\b",
    re.IGNORECASE,
)
"""What git's stderr says when the remote did not accept our credentials."""


class CheckOutcome(Protocol):
    """What the pre-push check returns (`mlci.engine.loop.check.CheckResult` has this shape)."""

    @property
    def ok(self) -> bool: ...

    @property
    def failures(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class PushOutcome:
    """How a push ended when it did not fail."""

    plan: PushPlan
    pushed: bool
    """False when there was nothing to push."""
    verified: bool
    """False when the pre-push check was skipped (`--no-verify`)."""
    message: str
    warnings: tuple[str, ...] = ()


def scrub_url(text: str) -> str:
    """Replace the credentials of any URL in `text` (`https://user:token@host`) with `***`."""
    return mask_credentials(text)  # the one masking rule of every output (config/redact.py)


def _open_repo(root: Path) -> git.Repo:
    # open_repo: git's own refusal (dubious ownership, a corrupt .git) is one GitReadError line, exit 2.
    repo = open_repo(root, search_parent_directories=True)
    if repo is None:
        raise MlciError(f"not a git repository: {root}")
    return repo


def plan_push(root: Path, *, remote: str = "origin") -> PushPlan:
    """Look at the repository and say what a push would send; refuse with one line when it cannot.

    Read-only: the commit list comes from the local remote-tracking refs (no network).
    """
    repo = _open_repo(root)
    with repo:
        if not repo.head.is_valid():
            raise MlciError("nothing to push: the repository has no commit yet")
        # An operation first: a rebase detaches HEAD, and "rebase in progress" is the useful news.
        operation = operation_in_progress(Path(repo.git_dir))
        if operation is not None:
            raise MlciError(f"a {operation} is in progress: finish or abort it before pushing")
        if repo.head.is_detached:
            raise MlciError(f"HEAD is detached at {repo.head.commit.hexsha[:8]}: check out a branch to push it")
        branch = repo.active_branch.name
        names = [r.name for r in repo.remotes]
        if remote not in names:
            known = f"the remotes are: {', '.join(names)}" if names else "this repository has no remote"
            raise MlciError(f"no remote named {remote!r}: {known} (add one with `git remote add`)")
        url = scrub_url(repo.git.remote("get-url", remote))
        outgoing = outgoing_commits(repo, remote, branch)
        tracking = repo.active_branch.tracking_branch()
        with repo.git.custom_environment(GIT_OPTIONAL_LOCKS="0"):  # never take the user's index lock
            status = repo.git.status("--porcelain", "--untracked-files=normal")
        dirty = [line for line in status.splitlines() if line]
        return PushPlan(
            root=Path(repo.working_tree_dir or root),
            branch=branch,
            remote=remote,
            remote_url=url,
            head=repo.head.commit.hexsha,
            commits=tuple(PushCommit(c.sha, c.subject, c.author) for c in outgoing.commits),
            total_commits=outgoing.total,
            new_branch=outgoing.new_branch,
            upstream=tracking.name if tracking is not None else None,
            uncommitted=len(dirty),
        )


def _progress_class() -> type[Any]:
    """A GitPython RemoteProgress that turns git's progress lines into PushProgress events.

    Built on demand so that importing this module does not import GitPython.
    """
    import git

    class _Progress(git.RemoteProgress):
        def __init__(self, emit: Callable[[PushProgress], None]) -> None:
            super().__init__()
            self._emit = emit
            self._last: tuple[int, int] | None = None
            self.remote_lines: list[str] = []

        def update(
            self, op_code: int, cur_count: str | float, max_count: str | float | None = None, message: str = ""
        ) -> None:
            stage = op_code & self.OP_MASK
            name = _OP_NAMES.get(stage, "Pushing")
            percent = None
            if max_count:
                percent = min(100.0, 100.0 * float(cur_count) / float(max_count))
            # git reports every object; one event per whole percent (or stage change) is plenty.
            key = (stage, int(percent) if percent is not None else int(float(cur_count)))
            if key == self._last and not (op_code & self.END and message.strip(", ")):
                return
            self._last = key
            counts = f" {int(float(cur_count))}/{int(float(max_count))}" if max_count else ""
            tail = f" {message.strip(', ')}" if message.strip(", ") else ""
            self._emit(PushProgress(stage="push", message=f"{name}{counts}{tail}", percent=percent))

        def line_dropped(self, line: str) -> None:
            # "remote: ..." lines carry what a server-side hook said when it refused the push.
            if line.startswith("remote:"):
                self.remote_lines.append(scrub_url(line))

    return _Progress


_OP_NAMES = {
    4: "Counting objects",
    8: "Compressing objects",
    16: "Writing objects",
    32: "Receiving objects",
    64: "Resolving deltas",
    128: "Finding sources",
    256: "Checking out files",
}
"""GitPython's RemoteProgress op codes, named as git prints them."""


def _git_env(check_passed_for: str | None, interactive: bool) -> dict[str, str]:
    env = {}
    if check_passed_for:
        env[CHECKED_HEAD_ENV] = check_passed_for
    if not interactive:
        # Nobody can answer a password prompt inside the TUI: fail at once and say why.
        env["GIT_TERMINAL_PROMPT"] = "0"
        if "GIT_SSH_COMMAND" not in os.environ:
            env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


@dataclass(frozen=True)
class _RefStatus:
    """One line of `git push --porcelain`: `<flag>\t<src>:<dst>\t<summary>`.

    Parsed here because GitPython's PushInfo only understands a branch name as the source,
    and the source of our push is the checked SHA.
    """

    flag: str
    """`*` new, ` ` fast-forward, `=` up to date, `!` rejected (`+` forced and `-` deleted never happen)."""
    remote_ref: str
    summary: str


def _failure(plan: PushPlan, info: _RefStatus, remote_lines: list[str]) -> str | None:
    """The one-line reason a ref's status reports a failure, or None when it succeeded."""
    if info.flag != "!":
        return None
    target = f"{plan.remote}/{plan.branch}"
    summary = info.summary.strip()
    if summary.startswith("[rejected]"):
        return (
            f"push rejected: {target} has commits that {plan.branch} does not (non-fast-forward); "
            "pull or rebase, then push again (mlci never forces)"
        )
    if summary.startswith(("[remote rejected]", "[remote failure]")):
        said = "; ".join(line.removeprefix("remote:").strip() for line in remote_lines if line.strip())
        why = summary.split("]", 1)[0].strip("[]") or "remote rejected"
        return f"the remote refused the push of {plan.branch} ({why})" + (f": {said}" if said else "")
    return f"push of {plan.branch} to {plan.remote} failed: {summary}"


def _command_error_message(plan: PushPlan, exc: Exception, other_lines: list[str]) -> str:
    # GitPython formats stderr as "\n  stderr: '<text>'"; keep only git's own words.
    stderr = scrub_url(str(getattr(exc, "stderr", "") or "")).strip()
    stderr = stderr.removeprefix("stderr:").strip().strip("'")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if _AUTH_PATTERN.search(stderr):
        return (
            f"authentication to {plan.remote} ({plan.remote_url}) failed: "
            "check your credentials (credential helper, SSH key or token); nothing was pushed"
        )
    said = [scrub_url(line.strip()) for line in other_lines if line.strip() and not line.startswith("remote:")]
    if "failed to push some refs" in stderr and said:
        # git printed no ref status: the refusal came before anything was sent, from a pre-push hook.
        return f"a pre-push hook refused the push: {said[-1]}; nothing was pushed"
    last = next((line for line in reversed(lines) if line.lower().startswith(("fatal:", "error:"))), "")
    last = last.split(":", 1)[1].strip().strip("'\"") if last else (lines[-1] if lines else "git push failed")
    return f"could not push to {plan.remote} ({plan.remote_url}): {last}; nothing was pushed"


def push_branch(
    root: Path,
    *,
    remote: str = "origin",
    check: Callable[[], CheckOutcome] | None,
    progress: Callable[[PushProgress], None],
    plan: PushPlan | None = None,
    interactive: bool = False,
) -> PushOutcome:
    """Run the pre-push check of the plan's commit, then push that commit to the branch, upstream set.

    Args:
        root: The project (any directory inside the repository).
        remote: The remote to push to.
        check: The pre-push check of `plan.head` (the caller binds the commit); None skips it
            (`--no-verify`), and the outcome says so.
        progress: Receives PushProgress events as the check and the push go along.
        plan: The plan the user confirmed; re-planned when None. The branch tip must still
            be the one that was confirmed, before and after the check, or the push is refused.
        interactive: A person at a terminal can answer git's credential prompts.

    Raises:
        MlciError: With one line, for every reason the branch did not arrive on the remote.
    """
    current = plan_push(root, remote=remote)
    if plan is not None and (plan.head, plan.branch) != (current.head, current.branch):
        raise MlciError(f"{current.branch} moved since the push was confirmed: look again and confirm anew")
    plan = current
    warnings = plan.warnings()

    def fail(message: str) -> MlciError:
        progress(PushProgress(stage="done", message=message, ok=False))
        return MlciError(message)

    if plan.up_to_date:
        message = plan.summary()
        progress(PushProgress(stage="done", message=message, ok=True))
        return PushOutcome(plan=plan, pushed=False, verified=check is not None, message=message, warnings=warnings)

    if check is None:
        progress(PushProgress(stage="check", message="pre-push check SKIPPED (--no-verify)", ok=None))
    else:
        progress(PushProgress(stage="check", message=f"running the pre-push check of {plan.head[:8]} (mlci check)"))
        result = check()
        if not result.ok:
            failed = "; ".join(result.failures) or "the check is red"
            raise fail(f"pre-push check failed ({failed}): nothing was pushed")
        note = getattr(result, "note", "")  # "<sha> checked green at 14:02 on the same content: not checked again"
        progress(
            PushProgress(
                stage="check", message=f"pre-push check passed ({note})" if note else "pre-push check passed", ok=True
            )
        )
        tip = _branch_tip(plan.root, plan.branch)
        if tip != plan.head:
            now = f"now at {tip[:8]}" if tip else "deleted"
            raise fail(
                f"{plan.branch} moved during the check ({now}; {plan.head[:8]} was checked): "
                "nothing was pushed; push again to check the new commit"
            )

    progress(PushProgress(stage="push", message=plan.summary(), percent=0.0))
    infos, remote_lines = _run_push(
        plan, check_passed=check is not None, interactive=interactive, progress=progress, fail=fail
    )
    mine = [i for i in infos if i.remote_ref == f"refs/heads/{plan.branch}"] or list(infos)
    if not mine:
        raise fail(f"git push to {plan.remote} reported nothing for {plan.branch}; nothing was pushed")
    for info in mine:
        reason = _failure(plan, info, remote_lines)
        if reason is not None:
            raise fail(reason)
    noun = "commit" if plan.total_commits == 1 else "commits"
    target = f"{plan.remote}/{plan.branch}"
    message = f"pushed {plan.total_commits} {noun} to {target}; {plan.branch} now tracks {target}"
    upstream_problem = _set_upstream(plan)
    if upstream_problem:
        message = f"pushed {plan.total_commits} {noun} to {target}; the upstream was not set: {upstream_problem}"
    if check is None:
        message += " (pre-push check skipped: --no-verify)"
    progress(PushProgress(stage="done", message=message, percent=100.0, ok=True))
    return PushOutcome(plan=plan, pushed=True, verified=check is not None, message=message, warnings=warnings)


@contextlib.contextmanager
def _quiet_gitpython() -> Iterator[None]:
    """GitPython logs git's error lines as a warning; we report them ourselves, once, in words."""
    logger = logging.getLogger("git.remote")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _branch_tip(root: Path, branch: str) -> str:
    """The SHA `refs/heads/<branch>` points at now, "" when it is gone."""
    repo = _open_repo(root)
    with repo:
        try:
            return str(repo.git.rev_parse("--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"))
        except Exception:  # GitCommandError: no such branch any more
            return ""


def _set_upstream(plan: PushPlan) -> str:
    """Make `<remote>/<branch>` the branch's upstream ("" when done, else why not).

    git's `--set-upstream` only acts on a branch-name source; the source here is a SHA.
    """
    import git

    repo = _open_repo(plan.root)
    with repo:
        try:
            repo.git.branch(f"--set-upstream-to={plan.remote}/{plan.branch}", plan.branch)
        except git.GitCommandError as exc:
            return scrub_url(str(exc.stderr or exc)).strip().strip("'").removeprefix("stderr:").strip()
    return ""


def _run_push(
    plan: PushPlan,
    *,
    check_passed: bool,
    interactive: bool,
    progress: Callable[[PushProgress], None],
    fail: Callable[[str], MlciError],
) -> tuple[list[_RefStatus], list[str]]:
    import git
    from git.cmd import handle_process_output

    reporter = _progress_class()(progress)
    statuses: list[_RefStatus] = []

    def on_stdout(line: str) -> None:
        parts = line.rstrip("\n").split("\t")
        if len(parts) >= 3 and ":" in parts[1]:
            statuses.append(_RefStatus(parts[0], parts[1].split(":", 1)[1], parts[2]))

    repo = _open_repo(plan.root)
    with repo:
        env: Mapping[str, str] = _git_env(plan.head if check_passed else None, interactive)
        options: dict[str, Any] = {}
        if not check_passed:
            options["no_verify"] = True
        try:
            with repo.git.custom_environment(**env), _quiet_gitpython():
                process = repo.git.push(
                    "--",
                    plan.remote,
                    plan.refspec,
                    porcelain=True,
                    progress=True,
                    as_process=True,
                    universal_newlines=True,
                    **options,
                )
                handle_process_output(
                    process, on_stdout, reporter.new_message_handler(), finalizer=None, decode_streams=False
                )
                try:
                    process.wait(stderr="\n".join(reporter.error_lines))
                except git.GitCommandError:
                    if not statuses:  # nothing reached the remote: say why from git's own words
                        raise
        except git.GitCommandError as exc:
            raise fail(_command_error_message(plan, exc, reporter.other_lines)) from None
        return statuses, list(reporter.remote_lines)
