"""Following an Azure Pipelines run: `mlci ci status` against a local server that speaks the REST API.

The server (127.0.0.1, a thread) serves the documented shapes recorded in tests/data/ci
(Builds - List, Timeline - Get) and walks the commit's run through queued, running and
finished: each look at the list moves it one step on. It answers 401 unless the personal
access token came as HTTP Basic auth with an empty user name, so the tests prove the token
is sent, and then that it never appears in the output.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mlci.engine.ci.follow import CiTarget, find_token, follow_after_push, make_target, overall_result
from mlci.engine.errors import MlciError
from mlci.engine.events import CiStatus

from tests.gitrepos import git, isolated_git, make_repo

DATA = Path(__file__).resolve().parents[1] / "data" / "ci"
PAT = "azdo7q2vx9kz4m3n8b6c5d1f0g2h4j6k8l0p9o7i5u3y1t"
CREDENTIALS = "Basic " + base64.b64encode(f":{PAT}".encode()).decode()
PROJECT_PATH = "/acme/Credit%20Risk/_apis/build/builds"

# Per step: the run's (status, result), then its stages' (state, result) by identifier.
STEPS: list[tuple[tuple[str, str | None], dict[str, tuple[str, str | None]]]] = [
    (("notStarted", None), {}),
    (
        ("inProgress", None),
        {"code": ("inProgress", None), "data": ("pending", None), "model_quick": ("pending", None)},
    ),
    (
        ("inProgress", None),
        {"code": ("completed", "succeeded"), "data": ("completed", "skipped"), "model_full": ("inProgress", None)},
    ),
    (
        ("completed", "@@FINAL@@"),
        {
            "code": ("completed", "succeeded"),
            "data": ("completed", "skipped"),
            "model_full": ("completed", "@@STAGE@@"),
        },
    ),
]
FINAL_STAGE = {"succeeded": "succeeded", "failed": "failed", "partiallySucceeded": "succeededWithIssues"}


def _recorded(name: str, sha: str) -> Any:
    return json.loads((DATA / name).read_text().replace("@@SHA@@", sha))


@dataclass
class FakeAzure:
    """The state behind the local Azure DevOps organization."""

    sha: str
    final: str
    """The run's result at the end: succeeded, failed or partiallySucceeded."""
    looks: int = 0
    auth_headers: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def step(self) -> int:
        return min(max(self.looks - 1, 0), 3)

    def _value(self, value: str | None) -> str | None:
        return {"@@FINAL@@": self.final, "@@STAGE@@": FINAL_STAGE[self.final]}.get(value or "", value)

    def answer(self, path: str, query: dict[str, list[str]]) -> Any:
        if query.get("api-version") != ["7.1"]:
            return None
        if path == PROJECT_PATH and query.get("queryOrder") == ["queueTimeDescending"]:
            self.looks += 1
            body = _recorded("azure_builds.json", self.sha)
            status, result = STEPS[self.step][0]
            body["value"][0].update(status=status, result=self._value(result))
            if result is None:
                body["value"][0].pop("result", None)
            return body
        if path == f"{PROJECT_PATH}/1207/timeline":
            body = _recorded("azure_timeline.json", self.sha)
            stages = STEPS[self.step][1]
            for record in body["records"]:
                if record["type"] == "Stage" and record["identifier"] in stages:
                    state, result = stages[record["identifier"]]
                    record.update(state=state, result=self._value(result))
            return body
        return None


def _handler(state: FakeAzure) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.paths.append(self.path)
            sent = self.headers.get("Authorization", "")
            state.auth_headers.append(sent)
            parts = urllib.parse.urlsplit(self.path)
            body = state.answer(parts.path, urllib.parse.parse_qs(parts.query)) if sent == CREDENTIALS else None
            code = 401 if sent != CREDENTIALS else (200 if body is not None else 404)
            payload = json.dumps(body if body is not None else {"message": "no"}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8; api-version=7.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(state: FakeAzure) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolated_git(monkeypatch, tmp_path)
    work, _ = make_repo(tmp_path, with_remote=False)
    git(work, "remote", "add", "origin", "git@github.com:acme/credit.git")  # Azure Pipelines builds GitHub repos too
    return work


def _configure(repo: Path, server: str) -> None:
    (repo / "mlci.yaml").write_text(f"ci:\n  provider: azure\n  api_url: {server}/acme\n  project: Credit Risk\n")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AZURE_DEVOPS_TOKEN", "AZURE_DEVOPS_EXT_PAT")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    env["NO_PROXY"] = "127.0.0.1"
    env.update(extra)
    return env


def _status(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", "ci", "status", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("final", "code", "verdict", "conclusion"),
    [
        ("succeeded", 0, "all runs passed", "success"),
        ("failed", 1, "a run failed", "failure"),
        ("partiallySucceeded", 1, "a run failed", "partially_succeeded"),
    ],
)
def test_an_azure_run_is_followed_stage_by_stage(
    repo: Path, serve: Any, final: str, code: int, verdict: str, conclusion: str
) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    state = FakeAzure(sha, final)
    _configure(repo, serve(state))

    done = _status(repo, _env(AZURE_DEVOPS_TOKEN=PAT), "--interval", "0.01")

    assert done.returncode == code, (done.stdout, done.stderr)
    out = done.stdout
    assert out.startswith(f"following azure CI of Credit Risk at {sha[:12]}")
    runs = [line.split("  ")[0] for line in out.splitlines() if line.startswith("credit #")]
    assert runs == [
        "credit #20251120.3 (individualCI): queued",
        "credit #20251120.3 (individualCI): in_progress",
        "credit #20251120.3 (individualCI): in_progress",
        f"credit #20251120.3 (individualCI): {conclusion}",
    ]
    assert "#20251120.2" not in out  # the run of another commit
    assert "https://dev.azure.com/acme/0a1b2c3d-0000-4000-8000-000000000001/_build/results?buildId=1207" in out
    # Stages in their order, jobs and tasks left out.
    assert "  code tier: in_progress\n  data tier: queued\n  quick model tier and gates: queued\n" in out
    assert "  code tier: success\n  data tier: skipped\n" in out
    stage_end = "success" if final == "succeeded" else "failure" if final == "failed" else "success"
    assert f"  full training and gates (GPU): {stage_end}" in out
    assert out.rstrip().endswith(verdict)
    assert PAT not in out + done.stderr and CREDENTIALS.split()[1] not in out + done.stderr
    assert set(state.auth_headers) == {CREDENTIALS}
    # The queued run was not asked for a timeline it does not have yet.
    timelines = [p for p in state.paths if "/timeline" in p]
    assert len(timelines) == 3 and all(p.startswith("/acme/Credit%20Risk/") for p in state.paths)


def test_no_token_says_so_and_stops(repo: Path, serve: Any) -> None:
    state = FakeAzure(git(repo, "rev-parse", "HEAD"), "succeeded")
    _configure(repo, serve(state))
    done = _status(repo, _env())
    assert done.returncode == 3
    assert "no Azure DevOps token: set AZURE_DEVOPS_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr and state.paths == []


def test_a_wrong_token_is_reported_without_echoing_it(repo: Path, serve: Any) -> None:
    _configure(repo, serve(FakeAzure(git(repo, "rev-parse", "HEAD"), "succeeded")))
    wrong = "wrongpat0000000000000000000000000000000000000000"
    done = _status(repo, _env(AZURE_DEVOPS_EXT_PAT=wrong), "--once")
    assert done.returncode == 3
    assert "Azure DevOps API answered 401 Unauthorized" in done.stderr and "is the token valid" in done.stderr
    header = base64.b64encode(f":{wrong}".encode()).decode()
    assert wrong not in done.stdout + done.stderr and header not in done.stdout + done.stderr


def test_no_network_says_so(repo: Path) -> None:
    _configure(repo, "http://127.0.0.1:1")
    done = _status(repo, _env(AZURE_DEVOPS_TOKEN=PAT), "--once")
    assert done.returncode == 3
    assert "cannot reach the Azure DevOps API at http://127.0.0.1:1/acme" in done.stderr
    assert PAT not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("url", "api_url", "project"),
    [
        ("https://dev.azure.com/acme/Credit%20Risk/_git/credit", "https://dev.azure.com/acme", "Credit Risk"),
        ("https://acme@dev.azure.com/acme/credit/_git/credit", "https://dev.azure.com/acme", "credit"),
        ("git@ssh.dev.azure.com:v3/acme/credit/credit", "https://dev.azure.com/acme", "credit"),
        ("https://acme.visualstudio.com/credit/_git/credit", "https://acme.visualstudio.com", "credit"),
        (
            "https://acme.visualstudio.com/DefaultCollection/credit/_git/credit",
            "https://acme.visualstudio.com",
            "credit",
        ),
    ],
)
def test_an_azure_repos_remote_names_the_organization_and_project(url: str, api_url: str, project: str) -> None:
    assert make_target(url) == CiTarget(provider="azure", api_url=api_url, project=project)


@pytest.mark.parametrize(
    "url",
    [
        "https://dev.azure.com.evil.example/acme/credit/_git/credit",
        "https://acme.visualstudio.com.evil.example/credit/_git/credit",
        "git@github.com:acme/credit.git",
    ],
)
def test_azure_elsewhere_needs_the_config(url: str) -> None:
    """The token goes to Azure DevOps' own hosts, or to the organization URL the config names; nowhere else."""
    with pytest.raises(MlciError, match=r"is not Azure DevOps: name the organization and project"):
        make_target(url, provider="azure")
    target = make_target(url, provider="azure", api_url="https://dev.azure.com/acme", project="credit")
    assert target.api_url == "https://dev.azure.com/acme"


def test_tokens_from_the_environment() -> None:
    assert find_token("azure", environ={"AZURE_DEVOPS_TOKEN": " pat "}) == ":pat"
    assert find_token("azure", environ={"AZURE_DEVOPS_EXT_PAT": "p2"}) == ":p2"
    assert find_token("azure", environ={"GITHUB_TOKEN": "x"}) is None
    assert find_token("jenkins", environ={"JENKINS_USER": "ada", "JENKINS_TOKEN": "t"}) == "ada:t"
    assert find_token("jenkins", environ={"JENKINS_TOKEN": "t"}) is None


def test_the_dashboard_follows_an_azure_run(repo: Path, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    _configure(repo, serve(FakeAzure(sha, "succeeded")))
    monkeypatch.setenv("AZURE_DEVOPS_TOKEN", PAT)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    seen: list[CiStatus] = []
    final = follow_after_push(repo, sha, emit=seen.append, interval=0.01)
    assert final is not None and overall_result(final) is True
    assert [s.runs[0].status for s in seen] == ["queued", "in_progress", "in_progress", "completed"]
    assert [job.name for job in seen[1].runs[0].jobs] == [
        "code tier",
        "data tier",
        "quick model tier and gates",
        "full training and gates (GPU)",
    ]
    assert all(PAT not in str(status) for status in seen)
