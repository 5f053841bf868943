"""Follow the remote CI runs of a commit through the provider's REST API (GitHub Actions, GitLab CI).

Jenkins and Azure Pipelines speak other APIs: `jenkins.py` and `azure.py` read them through
the same client (`_Api`), with the same rules for the token.

GitHub: `GET /repos/{owner}/{repo}/actions/runs?head_sha={sha}`, then each run's
`/actions/runs/{id}/jobs`. GitLab: `GET /projects/{path}/pipelines?sha={sha}`, then each
pipeline's `/pipelines/{id}/jobs`. GitLab statuses are mapped onto GitHub's
(queued, in_progress, completed + conclusion) so one event type describes both.

The token comes from the environment (or `gh auth token`) and is sent in a header only:
it is never printed, logged, or kept in an exception message (`CiFollowError` scrubs it).
It goes only where it belongs: to api.github.com for a remote on exactly github.com, to
gitlab.com for one on exactly gitlab.com, and to any other host only when the config
names that API URL (`ci: {provider, api_url}` in mlci.yaml, or `MLCI_GITHUB_API_URL` /
`MLCI_GITLAB_API_URL`). A lookalike such as github.com.evil.example gets nothing, and a
redirect to another host is refused rather than followed with the token (urllib would
carry the header along). Polling a remote API is the only way to follow it; the interval
backs off while nothing changes. Only the stdlib (urllib) is used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.engine.ci.azure import azure_location, azure_runs, azure_token_hint, find_azure_token, is_azure_host
from mlci.engine.ci.basic_auth import basic_auth, secret_forms
from mlci.engine.ci.jenkins import find_jenkins_credentials, jenkins_runs, jenkins_token_hint
from mlci.engine.ci.local import local_remote_path, local_runs
from mlci.engine.config.redact import mask_credentials
from mlci.engine.errors import MlciError
from mlci.engine.events import CiJob, CiRun, CiStatus

__all__ = [
    "GITHUB_API_ENV",
    "GITLAB_API_ENV",
    "CiFollowError",
    "CiTarget",
    "fetch_status",
    "find_token",
    "follow",
    "follow_after_push",
    "make_target",
    "overall_result",
    "parse_remote_url",
    "target_for_repo",
    "token_hint",
]

GITHUB_API_ENV = "MLCI_GITHUB_API_URL"
"""Overrides the GitHub API base URL (GitHub Enterprise, or a local server in tests)."""
GITLAB_API_ENV = "MLCI_GITLAB_API_URL"
"""Overrides the GitLab API base URL (a self-managed instance, or a local server in tests)."""

PROVIDERS = ("github", "gitlab", "jenkins", "azure")

PROVIDER_HOSTS: Mapping[str, frozenset[str]] = {
    "github": frozenset({"github.com", "www.github.com", "ssh.github.com"}),
    "gitlab": frozenset({"gitlab.com", "www.gitlab.com", "altssh.gitlab.com"}),
}
"""The git hosts of the public services, matched exactly: `github.com.evil.example` is none of them."""
PUBLIC_API_URLS: Mapping[str, str] = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
"""The API each public service's token may go to without the config naming one."""
_NAMES = {"github": "GitHub", "gitlab": "GitLab", "jenkins": "Jenkins", "azure": "Azure DevOps"}

_SUCCESSFUL = frozenset({"success", "skipped", "neutral"})
"""Conclusions that do not make the commit red."""

_GITLAB_STATUS: Mapping[str, tuple[str, str | None]] = {
    "created": ("queued", None),
    "waiting_for_resource": ("queued", None),
    "preparing": ("queued", None),
    "pending": ("queued", None),
    "scheduled": ("queued", None),
    "waiting_for_callback": ("in_progress", None),
    "running": ("in_progress", None),
    "success": ("completed", "success"),
    "failed": ("completed", "failure"),
    "canceled": ("completed", "cancelled"),
    "canceling": ("in_progress", None),
    "skipped": ("completed", "skipped"),
    # A manual job waits for a person; following it would never end, so it counts as done.
    "manual": ("completed", "action_required"),
}
"""GitLab pipeline and job statuses as (status, conclusion) in GitHub's terms."""


class CiFollowError(MlciError):
    """Following is not possible (no token, no network, the API refused); nothing else is affected.

    Exit code 3, so a script can tell "could not follow" from "the run failed" (1).
    """

    exit_code = 3


@dataclass(frozen=True)
class CiTarget:
    """Where a commit's CI runs live."""

    provider: str
    """"github", "gitlab", "jenkins" or "azure"."""
    api_url: str
    """The only URL the token is sent to: the API's base, the Jenkins server, the Azure DevOps organization."""
    project: str
    """owner/repo on GitHub; the namespace path on GitLab (group/sub/project); the job's path on Jenkins
    (folder/job); the project on Azure DevOps."""


_SCP_URL = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


def parse_remote_url(url: str) -> tuple[str, str]:
    """(host, project path) of a git remote URL: `git@host:o/r.git`, `https://host/o/r.git`, `ssh://...`."""
    url = url.strip()
    if "://" in url:
        parsed = urllib.parse.urlsplit(url)
        host, path = parsed.hostname or "", parsed.path
    else:
        match = _SCP_URL.match(url)
        if match is None:
            raise MlciError(f"cannot tell the CI project from the remote URL {mask_credentials(url)!r}")
        host, path = match["host"], match["path"]
    path = path.strip("/").removesuffix(".git")
    if not host or "/" not in path:
        raise MlciError(f"cannot tell the CI project from the remote URL {mask_credentials(url)!r}")
    return host, path


def provider_of_host(host: str) -> str | None:
    """The public service a git host is, by exact (case-insensitive) name; None for any other host."""
    host = host.lower().rstrip(".")
    return next((provider for provider, hosts in PROVIDER_HOSTS.items() if host in hosts), None)


def _named_api_url(provider: str, api_url: str | None) -> str | None:
    """The API URL the user named: the config's, else the environment's override for this provider."""
    named = api_url or os.environ.get(GITHUB_API_ENV if provider == "github" else GITLAB_API_ENV, "")
    if not named:
        return None
    parsed = urllib.parse.urlsplit(named)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MlciError(f"the {_NAMES[provider]} API URL {mask_credentials(named)!r} is not an http(s) URL")
    return named.rstrip("/")


def make_target(
    remote_url: str, *, provider: str | None = None, project: str | None = None, api_url: str | None = None
) -> CiTarget:
    """The CI target of a remote URL, and the only API URL its token may be sent to.

    The provider comes from the remote's host when that is exactly github.com or gitlab.com
    (or is given). The API URL is the public service's for those hosts; for any other host
    it must be named (`api_url`, from the config, or the environment's override): mlci does
    not guess `https://<host>/api/v3` and send a token there.
    """
    if provider == "local" or (provider is None and local_remote_path(remote_url) is not None):
        bare = local_remote_path(remote_url)
        if bare is None:
            raise MlciError(
                f"the local CI provider follows a bare repository on this machine; the remote is "
                f"{mask_credentials(remote_url)!r}"
            )
        return CiTarget(provider="local", api_url=str(bare), project=bare.name)
    if provider in ("jenkins", "azure") or (provider is None and is_azure_host(_host_of(remote_url))):
        return _basic_auth_target(provider or "azure", remote_url, project=project, api_url=api_url)
    host = ""
    if project is None:
        host, project = parse_remote_url(remote_url)
    elif remote_url:
        try:
            host, _ = parse_remote_url(remote_url)
        except MlciError:
            host = ""
    known = provider_of_host(host)
    provider = provider or known
    if provider is None:
        raise MlciError(
            f"cannot tell the CI provider from the host {host!r} (only github.com and gitlab.com are known): "
            "name it, and its API URL, in mlci.yaml (ci: {provider: github, api_url: https://HOST/api/v3})"
        )
    if provider not in PROVIDERS:
        raise MlciError(f"unknown CI provider {provider!r} (expected github or gitlab)")
    named = _named_api_url(provider, api_url)
    if named is not None:
        return CiTarget(provider=provider, api_url=named, project=project)
    if known != provider:
        raise MlciError(
            f"the remote's host {host or '(none)'!r} is not {provider}.com: mlci sends the {_NAMES[provider]} token "
            f"only to an API URL you name (ci: {{provider: {provider}, api_url: ...}} in mlci.yaml)"
        )
    return CiTarget(provider=provider, api_url=PUBLIC_API_URLS[provider], project=project)


def _host_of(remote_url: str) -> str:
    try:
        return parse_remote_url(remote_url)[0] if remote_url else ""
    except MlciError:
        return ""


def _basic_auth_target(provider: str, remote_url: str, *, project: str | None, api_url: str | None) -> CiTarget:
    """Jenkins at the server the config names; Azure DevOps at the remote's organization or the config's.

    The Jenkins job defaults to the remote's path (`owner/repo`, as an organization folder
    names it); a Jenkins server is never guessed, since its credentials would go there.
    """
    try:
        host, path = parse_remote_url(remote_url) if remote_url else ("", "")
    except MlciError:
        host, path = "", ""
    if provider == "azure":
        org_url, name = azure_location(host, path, api_url=api_url, project=project)
        return CiTarget(provider="azure", api_url=org_url, project=name)
    if not api_url:
        raise MlciError(
            "Jenkins is followed at the server mlci.yaml names: ci: {provider: jenkins, api_url: https://JENKINS, "
            "job: FOLDER/JOB}"
        )
    job = project or path
    if not job:
        raise MlciError("no Jenkins job to follow: name it in mlci.yaml (ci: {job: FOLDER/JOB})")
    return CiTarget(provider="jenkins", api_url=api_url.rstrip("/"), project=job)


def find_token(provider: str, *, environ: Mapping[str, str] | None = None, api_url: str | None = None) -> str | None:
    """The API token: GITHUB_TOKEN, GH_TOKEN or `gh auth token` for GitHub; GITLAB_TOKEN for GitLab.

    `gh` is asked for the token of the host `api_url` is on (github.com for the public API),
    so a GitHub Enterprise server never gets the github.com token from it.
    """
    env = os.environ if environ is None else environ
    if provider == "jenkins":
        return find_jenkins_credentials(env)
    if provider == "azure":
        return find_azure_token(env)
    names = ("GITHUB_TOKEN", "GH_TOKEN") if provider == "github" else ("GITLAB_TOKEN",)
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    if provider == "github" and shutil.which("gh"):
        try:
            done = subprocess.run(
                ["gh", "auth", "token", "--hostname", _gh_hostname(api_url)],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        token = done.stdout.strip()
        return token if done.returncode == 0 and token else None
    return None


def _gh_hostname(api_url: str | None) -> str:
    host = urllib.parse.urlsplit(api_url).hostname if api_url else None
    return "github.com" if host in (None, "api.github.com") else str(host)


def token_hint(provider: str) -> str:
    if provider == "jenkins":
        return jenkins_token_hint()
    if provider == "azure":
        return azure_token_hint()
    if provider == "github":
        return "no GitHub token: set GITHUB_TOKEN or GH_TOKEN, or log in with `gh auth login`"
    return "no GitLab token: set GITLAB_TOKEN (a token with read_api scope)"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the API's own origin (scheme, host, port).

    urllib's own handler copies every header, the token's included, to wherever a
    redirect points. GitHub redirects a renamed repository within api.github.com, which
    still works; a redirect anywhere else ends the request, and the token stays here.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            fp.close()
            scheme, host, port = _origin(newurl)
            raise CiFollowError(
                f"the CI API redirected to another host ({scheme}://{host}:{port}); not following it with the token"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Api:
    """A tiny JSON client that keeps the token out of every message it produces, and on its API's host."""

    def __init__(self, target: CiTarget, token: str, *, timeout: float = 20.0) -> None:
        self.target = target
        self._token = token
        self._timeout = timeout
        self._opener = urllib.request.build_opener(_SameOriginRedirects)

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "mlci", "Accept": "application/json"}
        if self.target.provider == "github":
            headers["Accept"] = "application/vnd.github+json"
            headers["X-GitHub-Api-Version"] = "2022-11-28"
            headers["Authorization"] = f"Bearer {self._token}"
        elif self.target.provider == "gitlab":
            headers["PRIVATE-TOKEN"] = self._token
        else:  # Jenkins (user:API token) and Azure DevOps (:personal access token) take HTTP Basic auth
            headers["Authorization"] = basic_auth(self._token)
        return headers

    def scrub(self, text: str) -> str:
        secrets = secret_forms(self._token) if self.target.provider in ("jenkins", "azure") else (self._token,)
        for secret in secrets:
            text = text.replace(secret, "***") if secret else text
        return mask_credentials(text)

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        url = f"{self.target.api_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, headers=self._headers())
        name = _NAMES[self.target.provider]
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            hint = " (is the token valid, with access to the repository?)" if exc.code in (401, 403, 404) else ""
            raise CiFollowError(self.scrub(f"{name} API answered {exc.code} {exc.reason} for {path}{hint}")) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            where = mask_credentials(self.target.api_url)
            raise CiFollowError(self.scrub(f"cannot reach the {name} API at {where}: {reason}")) from None
        try:
            return json.loads(body)
        except ValueError:
            raise CiFollowError(f"the {name} API sent something that is not JSON for {path}") from None


def _github_runs(api: _Api, sha: str) -> tuple[CiRun, ...]:
    owner_repo = api.target.project
    data = api.get(f"/repos/{owner_repo}/actions/runs", {"head_sha": sha, "per_page": "100"})
    runs = []
    for run in data.get("workflow_runs", []):
        jobs_data = api.get(f"/repos/{owner_repo}/actions/runs/{run['id']}/jobs", {"per_page": "100"})
        jobs = tuple(
            CiJob(
                name=str(job.get("name", "")),
                status=str(job.get("status", "")),
                conclusion=job.get("conclusion"),
                url=str(job.get("html_url") or ""),
            )
            for job in jobs_data.get("jobs", [])
        )
        runs.append(
            CiRun(
                provider="github",
                run_id=str(run["id"]),
                name=str(run.get("name") or run.get("display_title") or run["id"]),
                status=str(run.get("status", "")),
                conclusion=run.get("conclusion"),
                url=str(run.get("html_url") or ""),
                jobs=jobs,
            )
        )
    return tuple(runs)


def _gitlab_state(status: str) -> tuple[str, str | None]:
    return _GITLAB_STATUS.get(status, ("in_progress", None))


def _gitlab_runs(api: _Api, sha: str) -> tuple[CiRun, ...]:
    project = urllib.parse.quote(api.target.project, safe="")
    pipelines = api.get(f"/projects/{project}/pipelines", {"sha": sha, "per_page": "100"})
    runs = []
    for pipeline in pipelines:
        jobs_data = api.get(f"/projects/{project}/pipelines/{pipeline['id']}/jobs", {"per_page": "100"})
        jobs = []
        for job in jobs_data:
            status, conclusion = _gitlab_state(str(job.get("status", "")))
            stage = f"{job['stage']}: " if job.get("stage") else ""
            jobs.append(
                CiJob(
                    name=f"{stage}{job.get('name', '')}",
                    status=status,
                    conclusion=conclusion,
                    url=str(job.get("web_url") or ""),
                )
            )
        status, conclusion = _gitlab_state(str(pipeline.get("status", "")))
        runs.append(
            CiRun(
                provider="gitlab",
                run_id=str(pipeline["id"]),
                name=f"pipeline #{pipeline.get('iid', pipeline['id'])} ({pipeline.get('source', 'push')})",
                status=status,
                conclusion=conclusion,
                url=str(pipeline.get("web_url") or ""),
                jobs=tuple(jobs),
            )
        )
    return tuple(runs)


def fetch_status(target: CiTarget, sha: str, token: str) -> CiStatus:
    """One look at the runs of `sha`. Raises CiFollowError (token-free message) when the API cannot answer."""
    if target.provider == "local":  # the runs' records are files in the bare repository: no API, no token
        return CiStatus(sha=sha, runs=local_runs(Path(target.api_url), sha))
    api = _Api(target, token)
    try:
        if target.provider == "jenkins":
            runs = jenkins_runs(api.get, target.project, sha)
        elif target.provider == "azure":
            runs = azure_runs(api.get, target.project, sha)
        else:
            runs = _github_runs(api, sha) if target.provider == "github" else _gitlab_runs(api, sha)
    except (KeyError, TypeError, AttributeError) as exc:
        raise CiFollowError(api.scrub(f"unexpected answer from the {target.provider} API: missing {exc}")) from None
    return CiStatus(sha=sha, runs=runs)


def overall_result(status: CiStatus) -> bool | None:
    """True when every run completed green, False when any completed red, None while any is unfinished."""
    if not status.runs:
        return None
    if any(run.status != "completed" for run in status.runs):
        return None
    return all((run.conclusion or "") in _SUCCESSFUL for run in status.runs)


def follow(
    target: CiTarget,
    sha: str,
    token: str | None,
    *,
    emit: Callable[[CiStatus], None],
    interval: float = 5.0,
    max_interval: float = 60.0,
    appear_timeout: float = 300.0,
    once: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], object] = time.sleep,
) -> CiStatus:
    """Poll until every run of `sha` has completed, emitting a CiStatus whenever something changed.

    Args:
        interval: First wait between polls; it grows by half while nothing changes, up to
            `max_interval`, and drops back when something does.
        appear_timeout: How long to wait for a first run to appear after the push.
        once: Look once, emit, and return.
        should_stop: Checked between polls (the TUI sets it when the user moves on).
        sleep: How to wait between polls; the TUI passes a `threading.Event.wait` so that
            stopping does not wait out the interval.

    Raises:
        CiFollowError: No token, no network, the API refused, or no run appeared in time.
            An empty-runs CiStatus with the reason in `message` is emitted first.
    """

    def give_up(message: str) -> CiFollowError:
        emit(CiStatus(sha=sha, runs=(), message=message))
        return CiFollowError(message)

    if not token and target.provider != "local":
        raise give_up(token_hint(target.provider) + "; not following the remote run")
    started = time.monotonic()
    wait = interval
    last: CiStatus | None = None
    while True:
        try:
            status = fetch_status(target, sha, token or "")
        except CiFollowError as exc:
            raise give_up(f"{exc}; not following the remote run") from None
        if status != last:
            emit(status)
            wait = interval
        else:
            wait = min(max_interval, wait * 1.5)
        last = status
        if once or overall_result(status) is not None or should_stop():
            return status
        if not status.runs and time.monotonic() - started > appear_timeout:
            raise give_up(
                f"no CI run for {sha[:12]} after {appear_timeout:.0f} s: is the workflow installed (mlci ci init)?"
            )
        sleep(wait)


def target_for_repo(
    root: Path,
    *,
    remote: str = "origin",
    provider: str | None = None,
    project: str | None = None,
    api_url: str | None = None,
) -> CiTarget:
    """The CI target named by a repository's remote URL (or by `project`, when the URL cannot say).

    The provider and API URL not given come from the project's config (`ci:` in mlci.yaml).
    """
    import git
    from mlci.engine.config.loader import load_config

    ci = load_config(root, with_gates=False).ci
    provider = provider or ci.provider
    api_url = api_url or ci.api_url
    project = project or ci.job or ci.project

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise MlciError(f"not a git repository: {root}") from None
    repo.git.update_environment(GIT_OPTIONAL_LOCKS="0")  # a read: take no lock of the user's repository
    with repo:
        try:
            url = str(repo.git.remote("get-url", remote))
        except git.GitCommandError as exc:
            if "no such remote" not in str(exc.stderr).lower():
                raise  # git cannot read the repository at all: the caller says git's own reason
            url = ""
    if not url and not project:
        raise MlciError(f"no remote named {remote!r} to tell the CI project from: pass --remote or --project")
    return make_target(url, provider=provider, project=project, api_url=api_url)


def follow_after_push(
    root: Path,
    sha: str,
    *,
    emit: Callable[[CiStatus], None],
    remote: str = "origin",
    stop: threading.Event | None = None,
    interval: float = 5.0,
) -> CiStatus | None:
    """Follow the runs a push started, for the dashboard: it never raises.

    Whatever stops it (no token, no network, a remote that is no CI provider) is emitted
    as a CiStatus whose `message` says so; nothing else is affected. Setting `stop` ends
    the wait between polls at once.
    """
    stop = stop if stop is not None else threading.Event()
    try:
        target = target_for_repo(root, remote=remote)
        return follow(
            target,
            sha,
            find_token(target.provider, api_url=target.api_url),
            emit=emit,
            interval=interval,
            should_stop=stop.is_set,
            sleep=stop.wait,
        )
    except CiFollowError:
        return None  # its message has been emitted already
    except MlciError as exc:
        emit(CiStatus(sha=sha, runs=(), message=f"{exc}; not following the remote run"))
        return None
    except Exception as exc:
        if type(exc).__module__.partition(".")[0] != "git":
            raise
        reason = " ".join(str(getattr(exc, "stderr", "") or exc).split())
        emit(CiStatus(sha=sha, runs=(), message=f"git cannot read {root}: {reason}; not following the remote run"))
        return None
