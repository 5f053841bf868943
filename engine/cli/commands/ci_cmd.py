"""`mlci ci init` writes the remote CI workflow; `mlci ci status` follows the runs of a commit.

`mlci ci status` exit codes: 0 every run completed green; 1 a run failed (or was
cancelled); 2 bad arguments or not a git repository; 3 the runs could not be followed
(no token, no network, the API refused, or no run appeared in time); 4 with `--once`, when
a run has not finished yet. The token never appears in the output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlci.engine.events import CiStatus

__all__ = ["add_arguments", "format_status", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ci_command", metavar="{init,status}", required=True)
    init = sub.add_parser(
        "init", help="write .github/workflows/mlci.yml, .gitlab-ci.yml, Jenkinsfile or azure-pipelines.yml"
    )
    init.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    init.add_argument("--provider", choices=("github", "gitlab", "jenkins", "azure", "local"), default="github")
    init.add_argument(
        "--dvc-remote",
        metavar="PATH",
        help="local: the DVC remote the CI clone pulls its data from, when it is not in the committed .dvc/config",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing workflow file")
    init.add_argument("--python", default="3.11", help="the Python version the workflow sets up (default 3.11)")
    init.add_argument(
        "--install", default="mlci-tui", help="the pip requirement that provides mlci in CI (default mlci-tui)"
    )

    status = sub.add_parser(
        "status",
        help="follow the CI runs of a commit until they finish",
        description="Exit 0 when every run is green, 1 when one failed, 2 for bad arguments, "
        "3 when the runs cannot be followed (no token, no network, no run), 4 with --once while a run "
        "is unfinished.",
    )
    status.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    status.add_argument("--sha", help="the commit (default: HEAD)")
    status.add_argument("--remote", help="the remote whose URL names the CI project (default: origin)")
    status.add_argument(
        "--provider",
        choices=("github", "gitlab", "jenkins", "azure", "local"),
        help="default: ci.provider in mlci.yaml, else guessed from the remote's host (a bare repository "
        "on this machine: local)",
    )
    status.add_argument(
        "--project",
        help="owner/repo (GitLab: group/project; Jenkins: folder/job; Azure: the project) when the remote does not say",
    )
    status.add_argument("--interval", type=float, default=5.0, help="seconds between polls at first (default 5)")
    status.add_argument("--once", action="store_true", help="look once, print, and exit")
    status.add_argument("--json", action="store_true", help="print each status as a JSON line")


def format_status(status: CiStatus) -> list[str]:
    """Plain lines for one CiStatus: each run, then its jobs, indented."""
    if status.message:
        return [status.message]
    if not status.runs:
        return [f"no CI run for {status.sha[:12]} yet"]
    lines = []
    for run in status.runs:
        state = run.conclusion if run.status == "completed" else run.status
        lines.append(f"{run.name}: {state}" + (f"  {run.url}" if run.url else ""))
        for job in run.jobs:
            job_state = job.conclusion if job.status == "completed" else job.status
            lines.append(f"  {job.name}: {job_state}")
    return lines


def _init_local(root: Path, args: argparse.Namespace) -> int:
    """Install the post-receive hook that runs `mlci check` in the remote, a bare repository on this machine."""
    import git
    from mlci.engine.ci.local import install_hook, local_remote_path
    from mlci.engine.config.loader import load_config
    from mlci.engine.errors import MlciError

    config = load_config(root)
    with git.Repo(root, search_parent_directories=True) as repo:
        try:
            url = str(repo.git.remote("get-url", config.git.remote))
        except git.GitCommandError:
            raise MlciError(f"no remote named {config.git.remote!r}") from None
    bare = local_remote_path(url)
    if bare is None:
        raise MlciError(f"--provider local needs a bare repository on this machine as {config.git.remote!r}, not {url}")
    settings = {"tracking_uri": config.mlflow.tracking_uri}
    if args.dvc_remote:
        settings["dvc_remote_path"] = str(Path(args.dvc_remote).resolve())
    hook = install_hook(bare, settings=settings)
    print(f"installed {hook}: each pushed branch is checked (mlci check) on a fresh clone")
    print("follow a pushed commit's run with: mlci ci status (the dashboard follows it after a push)")
    return 0


def _init(args: argparse.Namespace) -> int:
    from mlci.engine.ci.workflow import write_workflow
    from mlci.engine.config.loader import load_config

    root = Path(args.path).resolve()
    if args.provider == "local":
        return _init_local(root, args)
    main_branch = load_config(root).git.main_branch
    written = write_workflow(
        root,
        args.provider,
        force=args.force,
        main_branch=main_branch,
        python_version=args.python,
        install=args.install,
    )
    for item in written:
        rel = item.path.relative_to(root)
        print(f"wrote {rel}" if item.written else f"{rel}: {item.note}")
    if args.provider in _FOLLOW_HINTS:
        print(_FOLLOW_HINTS[args.provider])
    return 0


_FOLLOW_HINTS = {
    "jenkins": "to follow its builds (mlci ci status, the dashboard): name the server and job in mlci.yaml "
    "(ci: {provider: jenkins, api_url: https://JENKINS, job: FOLDER/JOB}) and set JENKINS_USER and JENKINS_TOKEN",
    "azure": "to follow its runs (mlci ci status, the dashboard): set AZURE_DEVOPS_TOKEN; for a repository "
    "outside Azure Repos, name it in mlci.yaml (ci: {provider: azure, api_url: https://dev.azure.com/ORG, "
    "project: PROJECT})",
}
"""What `mlci ci init` says next for providers that the remote's URL alone cannot locate."""


def _resolve(root: Path, rev: str) -> str:
    import git
    from mlci.engine.errors import MlciError

    with git.Repo(root, search_parent_directories=True) as repo:
        try:
            return str(repo.git.rev_parse("--verify", f"{rev}^{{commit}}"))
        except git.GitCommandError:
            raise MlciError(f"no commit {rev!r} in this repository") from None


def _status(args: argparse.Namespace) -> int:
    from mlci.engine.ci.follow import CiFollowError, find_token, follow, overall_result, target_for_repo
    from mlci.engine.errors import ConfigError, MlciError
    from mlci.engine.events import event_to_json

    root = Path(args.path).resolve()
    try:
        target = target_for_repo(root, remote=args.remote or "origin", provider=args.provider, project=args.project)
        sha = _resolve(root, args.sha or "HEAD")
    except ConfigError:
        raise  # already file:line
    except MlciError as exc:
        raise ConfigError(root, None, str(exc)) from None

    def emit(status: CiStatus) -> None:
        if args.json:
            print(json.dumps(event_to_json(status)), flush=True)
        else:
            for line in format_status(status):
                print(line, file=sys.stderr if status.message else sys.stdout, flush=True)

    if not args.json:
        print(f"following {target.provider} CI of {target.project} at {sha[:12]}", flush=True)
    try:
        token = find_token(target.provider, api_url=target.api_url)
        final = follow(target, sha, token, emit=emit, interval=args.interval, once=args.once)
    except CiFollowError as exc:
        return exc.exit_code  # its message was emitted already
    result = overall_result(final)
    if result is None:
        return 4
    if not args.json:
        print("all runs passed" if result else "a run failed", flush=True)
    return 0 if result else 1


def run(args: argparse.Namespace) -> int:
    if args.ci_command == "init":
        return _init(args)
    return _status(args)
