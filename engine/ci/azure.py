"""Follow the Azure Pipelines runs of a commit, stage by stage, through the Azure DevOps REST API.

One look (`azure_runs`):

    GET {organization}/{project}/_apis/build/builds?queryOrder=queueTimeDescending&$top=100
        the project's recent runs; those whose `sourceVersion` is the commit are followed
    GET {organization}/{project}/_apis/build/builds/{id}/timeline
        each run's records; those of type `Stage` are its stages, in their order

The organization URL and project come from the remote (`https://dev.azure.com/ORG/PROJECT/_git/REPO`,
`git@ssh.dev.azure.com:v3/ORG/PROJECT/REPO`, `https://ORG.visualstudio.com/PROJECT/_git/REPO`),
or from the config for a repository hosted elsewhere or an Azure DevOps Server
(`ci: {provider: azure, api_url: https://dev.azure.com/ORG, project: PROJECT}`). The personal
access token (AZURE_DEVOPS_TOKEN, needs Build: Read) goes only there. Statuses are mapped
onto GitHub's vocabulary; `partiallySucceeded` stays `partially_succeeded`, which is not green.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from mlci.engine.errors import MlciError
from mlci.engine.events import CiJob, CiRun

__all__ = ["API_VERSION", "azure_location", "azure_runs", "azure_token_hint", "find_azure_token", "is_azure_host"]

JsonGet = Callable[[str, Mapping[str, str]], Any]
"""GET a path under the API URL with a query, and return the decoded JSON (the caller's safe client)."""

API_VERSION = "7.1"

_RUN_STATUS: Mapping[str, str] = {
    "notStarted": "queued",
    "postponed": "queued",
    "inProgress": "in_progress",
    "cancelling": "in_progress",
    "completed": "completed",
}
_RESULT: Mapping[str, str] = {
    "succeeded": "success",
    "succeededWithIssues": "success",
    "partiallySucceeded": "partially_succeeded",
    "failed": "failure",
    "canceled": "cancelled",
    "skipped": "skipped",
    "abandoned": "cancelled",
}
"""A run's or a stage's `result` as a conclusion; anything else is a failure (fail closed)."""
_STAGE_STATE: Mapping[str, str] = {"pending": "queued", "inProgress": "in_progress", "completed": "completed"}


def azure_token_hint() -> str:
    return "no Azure DevOps token: set AZURE_DEVOPS_TOKEN (a personal access token with the Build (Read) scope)"


def find_azure_token(environ: Mapping[str, str]) -> str | None:
    """`:PAT` (Basic auth with an empty user) from AZURE_DEVOPS_TOKEN, or the az CLI's AZURE_DEVOPS_EXT_PAT."""
    for name in ("AZURE_DEVOPS_TOKEN", "AZURE_DEVOPS_EXT_PAT"):
        value = environ.get(name, "").strip()
        if value:
            return f":{value}"
    return None


def is_azure_host(host: str) -> bool:
    """Azure DevOps Services' git hosts, by exact name (`ORG.visualstudio.com` for the old URLs)."""
    host = host.lower().rstrip(".")
    if host in ("dev.azure.com", "ssh.dev.azure.com", "vs-ssh.visualstudio.com"):
        return True
    org, _, domain = host.partition(".")
    return domain == "visualstudio.com" and bool(org) and "." not in org


def _from_remote(host: str, path: str) -> tuple[str, str] | None:
    """(organization URL, project) of an Azure Repos remote; None for any other remote."""
    host = host.lower().rstrip(".")
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/") if p]
    if host in ("ssh.dev.azure.com", "vs-ssh.visualstudio.com") and len(parts) >= 3 and parts[0] == "v3":
        return f"https://dev.azure.com/{urllib.parse.quote(parts[1])}", parts[2]
    if host == "dev.azure.com" and len(parts) >= 2:
        return f"https://dev.azure.com/{urllib.parse.quote(parts[0])}", parts[1]
    if is_azure_host(host) and len(parts) >= 1:
        project = parts[1] if parts[0] == "DefaultCollection" and len(parts) > 1 else parts[0]
        return f"https://{host}", project
    return None


def azure_location(host: str, path: str, *, api_url: str | None, project: str | None) -> tuple[str, str]:
    """(organization URL, project): the config's, else the remote's when it is on Azure DevOps.

    The token goes to a host the remote is on (dev.azure.com, ORG.visualstudio.com) or one
    the config names; mlci never guesses an Azure DevOps Server from another host.
    """
    found = _from_remote(host, path) if host else None
    org_url = api_url or (found[0] if found else None)
    name = project or (found[1] if found else None)
    if org_url is None or name is None:
        raise MlciError(
            f"the remote's host {host or '(none)'!r} is not Azure DevOps: name the organization and project "
            "in mlci.yaml (ci: {provider: azure, api_url: https://dev.azure.com/ORG, project: PROJECT})"
        )
    return org_url.rstrip("/"), name


def _state(status: str, result: Any, states: Mapping[str, str]) -> tuple[str, str | None]:
    mapped = states.get(status, "in_progress")
    if mapped != "completed":
        return mapped, None
    return "completed", _RESULT.get(str(result), "failure")


def _stages(timeline: Mapping[str, Any] | None) -> tuple[CiJob, ...]:
    records = [r for r in ((timeline or {}).get("records") or ()) if r.get("type") == "Stage"]
    records.sort(key=lambda r: (r.get("order") is None, r.get("order") or 0))
    jobs = []
    for record in records:
        status, conclusion = _state(str(record.get("state", "")), record.get("result"), _STAGE_STATE)
        name = str(record.get("name") or record.get("identifier") or "")
        jobs.append(CiJob(name=name, status=status, conclusion=conclusion))
    return tuple(jobs)


def azure_runs(get: JsonGet, project: str, sha: str) -> tuple[CiRun, ...]:
    """The runs of `sha` in the project, each with its stages."""
    base = "/" + urllib.parse.quote(project, safe="")
    data = get(
        f"{base}/_apis/build/builds",
        {"queryOrder": "queueTimeDescending", "$top": "100", "api-version": API_VERSION},
    )
    runs = []
    for build in data.get("value") or ():
        if str(build.get("sourceVersion", "")).lower() != sha.lower():
            continue
        build_id = int(build["id"])
        status, conclusion = _state(str(build.get("status", "")), build.get("result"), _RUN_STATUS)
        timeline = None  # a queued run has no timeline yet
        if status != "queued":
            timeline = get(f"{base}/_apis/build/builds/{build_id}/timeline", {"api-version": API_VERSION})
        definition = (build.get("definition") or {}).get("name") or "pipeline"
        web = ((build.get("_links") or {}).get("web") or {}).get("href") or ""
        runs.append(
            CiRun(
                provider="azure",
                run_id=str(build_id),
                name=f"{definition} #{build.get('buildNumber', build_id)} ({build.get('reason', 'manual')})",
                status=status,
                conclusion=conclusion,
                url=str(web),
                jobs=_stages(timeline if isinstance(timeline, dict) else None),
            )
        )
    return tuple(runs)
