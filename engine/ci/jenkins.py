"""Follow the Jenkins builds of a commit, stage by stage: the JSON API and the pipeline stages API.

One look (`jenkins_runs`) asks the server named in the config (`ci: {provider: jenkins,
api_url: https://jenkins.example.com, job: ml/credit}`):

    GET /job/ml/job/credit/api/json?tree=...     the job's recent builds, or for a multibranch
                                                 project those of each branch and change-request
                                                 job, each with the commit it built
    GET /queue/api/json?tree=...                 builds of the job still waiting for an executor
    GET /job/.../{number}/wfapi/describe         the stages of each build of the commit

A build names its commit once it has checked it out (the git plugin's `lastBuiltRevision`,
or a branch source's `revision`); before that, and while it waits in the queue, no API says
which commit it is for, so a queued build of the job is shown as queued until one of the
commit's builds appears. Jenkins' results are mapped onto GitHub's vocabulary (queued,
in_progress, completed + conclusion); UNSTABLE stays `unstable`, which is not green.

Every URL is built from the configured server and the job path: the absolute URLs that
Jenkins puts in its answers (its own idea of its root URL) are shown, never fetched with
the credentials. The stages API (`wfapi`) comes with the Pipeline: REST API plugin, which
Pipeline: Stage View (one of Jenkins' suggested plugins) installs.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mlci.engine.errors import MlciError
from mlci.engine.events import CiJob, CiRun

__all__ = ["find_jenkins_credentials", "jenkins_job_path", "jenkins_runs", "jenkins_token_hint"]

JsonGet = Callable[[str, Mapping[str, str]], Any]
"""GET a path under the API URL with a query, and return the decoded JSON (the caller's safe client)."""

_BUILD_FIELDS = "number,url,building,result,actions[lastBuiltRevision[SHA1],revision[hash,pullHash]]"
_JOB_TREE = f"_class,name,builds[{_BUILD_FIELDS}]{{0,20}},jobs[name,builds[{_BUILD_FIELDS}]{{0,10}}]"
"""The recent builds of a pipeline job, or of each branch job of a multibranch project, in one request."""
_QUEUE_TREE = "items[id,why,task[name,url]]"

_BUILD_RESULT: Mapping[str, str] = {
    "SUCCESS": "success",
    "FAILURE": "failure",
    "UNSTABLE": "unstable",
    "ABORTED": "cancelled",
    "NOT_BUILT": "skipped",
}
"""A finished build's `result` as a conclusion; anything else is a failure (fail closed)."""

_STAGE_STATE: Mapping[str, tuple[str, str | None]] = {
    "SUCCESS": ("completed", "success"),
    "FAILED": ("completed", "failure"),
    "UNSTABLE": ("completed", "unstable"),
    "ABORTED": ("completed", "cancelled"),
    "NOT_EXECUTED": ("completed", "skipped"),
    "IN_PROGRESS": ("in_progress", None),
    # Waiting for someone to answer an `input` step: the build is still running.
    "PAUSED_PENDING_INPUT": ("in_progress", None),
}
"""The stages API's `status` of a stage as (status, conclusion) in GitHub's terms."""


def jenkins_token_hint() -> str:
    return "no Jenkins API token: set JENKINS_USER and JENKINS_TOKEN (an API token from your user's Security page)"


def find_jenkins_credentials(environ: Mapping[str, str]) -> str | None:
    """`user:API token` from JENKINS_USER and JENKINS_TOKEN (or the CLI's JENKINS_USER_ID and JENKINS_API_TOKEN)."""
    for user_name, token_name in (("JENKINS_USER", "JENKINS_TOKEN"), ("JENKINS_USER_ID", "JENKINS_API_TOKEN")):
        user, token = environ.get(user_name, "").strip(), environ.get(token_name, "").strip()
        if user and token:
            return f"{user}:{token}"
    return None


def jenkins_job_path(job: str) -> str:
    """`ml/credit` (folders, then the job) as the URL path `/job/ml/job/credit`."""
    parts = [part for part in job.strip("/").split("/") if part]
    if not parts:
        raise MlciError("no Jenkins job named: set ci.job in mlci.yaml (the job's path, folders/job)")
    return "".join(f"/job/{urllib.parse.quote(part, safe='')}" for part in parts)


def _mentions(node: Any, sha: str) -> bool:
    """Whether a build's actions name `sha` as what it built (git plugin or branch source)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("SHA1", "hash", "pullHash") and isinstance(value, str) and value.lower() == sha.lower():
                return True
            if _mentions(value, sha):
                return True
    elif isinstance(node, list):
        return any(_mentions(item, sha) for item in node)
    return False


def _builds(data: Mapping[str, Any], path: str, label: str) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(job path, display label, build) for the job's builds and those of its branch jobs."""
    for build in data.get("builds") or ():
        yield path, label, build
    for child in data.get("jobs") or ():
        name = str(child["name"])
        child_path = f"{path}/job/{urllib.parse.quote(name, safe='')}"
        child_label = f"{label} » {urllib.parse.unquote(name)}"
        for build in child.get("builds") or ():
            yield child_path, child_label, build


def _stages(describe: Mapping[str, Any]) -> tuple[CiJob, ...]:
    jobs = []
    for stage in describe.get("stages") or ():
        status, conclusion = _STAGE_STATE.get(str(stage.get("status", "")), ("in_progress", None))
        jobs.append(CiJob(name=str(stage.get("name", "")), status=status, conclusion=conclusion))
    return tuple(jobs)


def _queued(get: JsonGet, path: str, label: str) -> tuple[CiRun, ...]:
    """The job's (or its branch jobs') builds waiting for an executor."""
    queue = get("/queue/api/json", {"tree": _QUEUE_TREE})
    runs = []
    for item in queue.get("items") or ():
        task_path = urllib.parse.urlsplit(str(item["task"].get("url", ""))).path.rstrip("/")
        if not (task_path.endswith(path) or f"{path}/job/" in task_path):
            continue
        task = urllib.parse.unquote(str(item["task"].get("name", "")))
        name = label if task_path.endswith(path) else f"{label} » {task}"
        why = str(item.get("why") or "waiting in the queue")
        runs.append(
            CiRun(
                provider="jenkins",
                run_id=f"queue-{item['id']}",
                name=f"{name} ({why})",
                status="queued",
                conclusion=None,
            )
        )
    return tuple(runs)


def jenkins_runs(get: JsonGet, job: str, sha: str) -> tuple[CiRun, ...]:
    """The builds of `sha` in the job (stage by stage), or the job's queued builds while there are none."""
    path = jenkins_job_path(job)
    label = job.strip("/")
    data = get(f"{path}/api/json", {"tree": _JOB_TREE})
    runs = []
    for build_path, build_label, build in _builds(data, path, label):
        if not _mentions(build.get("actions"), sha):
            continue
        number = int(build["number"])
        describe = get(f"{build_path}/{number}/wfapi/describe", {})
        if build.get("building") or build.get("result") is None:
            status, conclusion = "in_progress", None
        else:
            status, conclusion = "completed", _BUILD_RESULT.get(str(build.get("result")), "failure")
        runs.append(
            CiRun(
                provider="jenkins",
                run_id=f"{build_path}/{number}",
                name=f"{build_label} #{number}",
                status=status,
                conclusion=conclusion,
                url=str(build.get("url") or ""),
                jobs=_stages(describe),
            )
        )
    return tuple(runs) if runs else _queued(get, path, label)
