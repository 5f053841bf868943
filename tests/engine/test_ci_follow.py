"""Following remote CI: `mlci ci status` against a local server that speaks the providers' API shapes.

The server (127.0.0.1, a thread) serves recorded GitHub Actions and GitLab responses from
tests/data/ci and walks the run through queued, in progress and completed: each request
for the list of runs moves it one step on. It answers 401 unless the right token came in
the right header, so the tests also prove the token is sent, and then that it never
appears in what `mlci ci status` prints.
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mlci.engine.ci.follow import (
    CiFollowError,
    CiTarget,
    find_token,
    follow,
    follow_after_push,
    make_target,
    overall_result,
    parse_remote_url,
)
from mlci.engine.errors import MlciError
from mlci.engine.events import CiStatus

from tests.gitrepos import git, isolated_git, make_repo

DATA = Path(__file__).resolve().parents[1] / "data" / "ci"
TOKEN = "ghp_TopSecretTokenValue1234567890"
GITLAB_TOKEN = "glpat-AnotherSecretValue987"

# (run status, run conclusion, [(job status, job conclusion), ...]) in GitHub's vocabulary.
GITHUB_STEPS: list[tuple[str, str | None, list[tuple[str, str | None]]]] = [
    ("queued", None, [("queued", None), ("queued", None)]),
    ("in_progress", None, [("in_progress", None), ("queued", None)]),
    ("in_progress", None, [("completed", "success"), ("in_progress", None)]),
    ("completed", "@@FINAL@@", [("completed", "success"), ("completed", "@@FINAL@@")]),
]
# (pipeline status, [job status, ...]) in GitLab's own vocabulary.
GITLAB_STEPS: list[tuple[str, list[str]]] = [
    ("pending", ["pending", "created"]),
    ("running", ["running", "created"]),
    ("running", ["success", "running"]),
    ("@@FINAL@@", ["success", "@@FINAL@@"]),
]


def _recorded(name: str, sha: str) -> Any:
    text = (DATA / name).read_text().replace("@@SHA@@", sha).replace("@@SHORT@@", sha[:8])
    return json.loads(text)


@dataclass
class FakeProvider:
    """The state behind the local API server."""

    provider: str
    sha: str
    final: str
    repeat_first: int = 1
    """How many polls the first step is served for (to see the follower back off)."""
    polls: int = 0
    auth_headers: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def step(self) -> int:
        return min(max(self.polls - self.repeat_first, 0), 3)

    def _final(self, value: str | None) -> str | None:
        return self.final if value == "@@FINAL@@" else value

    def github(self, path: str) -> Any:
        if re.fullmatch(r"/repos/acme/credit/actions/runs\?head_sha=\w+&per_page=100", path):
            if f"head_sha={self.sha}" not in path:
                return {"total_count": 0, "workflow_runs": []}
            self.polls += 1
            body = _recorded("github_runs.json", self.sha)
            status, conclusion, _ = GITHUB_STEPS[self.step]
            body["workflow_runs"][0].update(status=status, conclusion=self._final(conclusion))
            return body
        if re.fullmatch(r"/repos/acme/credit/actions/runs/9876543210/jobs\?per_page=100", path):
            body = _recorded("github_jobs.json", self.sha)
            for job, (status, conclusion) in zip(body["jobs"], GITHUB_STEPS[self.step][2], strict=True):
                job.update(status=status, conclusion=self._final(conclusion))
            return body
        return None

    def gitlab(self, path: str) -> Any:
        if re.fullmatch(r"/projects/acme%2Fml%2Fcredit/pipelines\?sha=\w+&per_page=100", path):
            if f"sha={self.sha}" not in path:
                return []
            self.polls += 1
            body = _recorded("gitlab_pipelines.json", self.sha)
            body[0]["status"] = self._final(GITLAB_STEPS[self.step][0])
            return body
        if re.fullmatch(r"/projects/acme%2Fml%2Fcredit/pipelines/1183/jobs\?per_page=100", path):
            body = _recorded("gitlab_jobs.json", self.sha)
            for job, status in zip(body, GITLAB_STEPS[self.step][1], strict=True):
                job["status"] = self._final(status)
            return copy.deepcopy(body)
        return None


def _handler(state: FakeProvider) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.paths.append(self.path)
            if state.provider == "github":
                sent = self.headers.get("Authorization", "")
                state.auth_headers.append(sent)
                authorised = sent == f"Bearer {TOKEN}"
                body = state.github(self.path) if authorised else {"message": "Bad credentials"}
            else:
                sent = self.headers.get("PRIVATE-TOKEN", "")
                state.auth_headers.append(sent)
                authorised = sent == GITLAB_TOKEN
                body = state.gitlab(self.path) if authorised else {"message": "401 Unauthorized"}
            code = 200 if authorised and body is not None else (401 if not authorised else 404)
            payload = json.dumps(body if body is not None else {"message": "Not Found"}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(state: FakeProvider) -> str:
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
    git(work, "remote", "add", "origin", "git@github.com:acme/credit.git")
    return work


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN")}
    # No `gh` on PATH: a token of the machine's own must not leak into the tests.
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, "/usr/bin", "/bin"])
    env["NO_PROXY"] = "127.0.0.1"
    env.update(extra)
    return env


def _mlci(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
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
    ("final", "code", "verdict"), [("success", 0, "all runs passed"), ("failure", 1, "a run failed")]
)
def test_github_run_is_followed_to_its_result(repo: Path, serve: Any, final: str, code: int, verdict: str) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    state = FakeProvider("github", sha, final)
    url = serve(state)

    done = _mlci(repo, _env(GITHUB_TOKEN=TOKEN, MLCI_GITHUB_API_URL=url), "--interval", "0.01")

    assert done.returncode == code, done.stderr
    out = done.stdout
    assert out.startswith(f"following github CI of acme/credit at {sha[:12]}")
    seen = [line for line in out.splitlines() if line.startswith("mlci:")]
    assert [line.split()[1] for line in seen] == ["queued", "in_progress", "in_progress", final]
    assert "  code tier: in_progress" in out and "  code tier: success" in out
    assert f"  full training and gates (GPU): {final}" in out
    assert out.rstrip().endswith(verdict)
    assert TOKEN not in out + done.stderr
    assert set(state.auth_headers) == {f"Bearer {TOKEN}"}


def test_gitlab_pipeline_statuses_are_mapped_and_followed(tmp_path: Path, repo: Path, serve: Any) -> None:
    git(repo, "remote", "set-url", "origin", "https://gitlab.com/acme/ml/credit.git")
    sha = git(repo, "rev-parse", "HEAD")
    state = FakeProvider("gitlab", sha, "failed")
    url = serve(state)

    done = _mlci(repo, _env(GITLAB_TOKEN=GITLAB_TOKEN, MLCI_GITLAB_API_URL=url), "--interval", "0.01", "--json")

    assert done.returncode == 1, done.stderr
    statuses = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(s["type"] == "CiStatus" and s["sha"] == sha for s in statuses)
    runs = [s["runs"][0] for s in statuses]
    assert [(r["status"], r["conclusion"]) for r in runs] == [
        ("queued", None),
        ("in_progress", None),
        ("in_progress", None),
        ("completed", "failure"),
    ]
    assert runs[0]["name"] == "pipeline #57 (push)"
    assert [(j["name"], j["status"]) for j in runs[0]["jobs"]] == [
        ("code: code", "queued"),
        ("model: model-full", "queued"),
    ]
    assert [(j["status"], j["conclusion"]) for j in runs[-1]["jobs"]] == [
        ("completed", "success"),
        ("completed", "failure"),
    ]
    assert GITLAB_TOKEN not in done.stdout + done.stderr
    assert set(state.auth_headers) == {GITLAB_TOKEN}


def test_no_token_says_so_and_stops(repo: Path) -> None:
    done = _mlci(repo, _env(MLCI_GITHUB_API_URL="http://127.0.0.1:9"))
    assert done.returncode == 3
    assert "no GitHub token: set GITHUB_TOKEN or GH_TOKEN, or log in with `gh auth login`" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_network_says_so_without_the_token(repo: Path) -> None:
    before = git(repo, "for-each-ref"), git(repo, "status", "--porcelain")
    # Port 1 on the loopback: nothing listens there, so the connection is refused.
    done = _mlci(repo, _env(GITHUB_TOKEN=TOKEN, MLCI_GITHUB_API_URL="http://127.0.0.1:1"), "--once")
    assert done.returncode == 3
    assert "cannot reach the GitHub API at http://127.0.0.1:1" in done.stderr
    assert "not following the remote run" in done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert (git(repo, "for-each-ref"), git(repo, "status", "--porcelain")) == before


def test_a_wrong_token_is_reported_without_echoing_it(repo: Path, serve: Any) -> None:
    url = serve(FakeProvider("github", git(repo, "rev-parse", "HEAD"), "success"))
    wrong = "ghp_WrongTokenThatMustNotBePrinted"
    done = _mlci(repo, _env(GH_TOKEN=wrong, MLCI_GITHUB_API_URL=url), "--once")
    assert done.returncode == 3
    assert "GitHub API answered 401" in done.stderr and "is the token valid" in done.stderr
    assert wrong not in done.stdout + done.stderr


def test_follow_backs_off_while_nothing_changes(serve: Any) -> None:
    sha = "a" * 40
    state = FakeProvider("github", sha, "success", repeat_first=4)
    target = CiTarget(provider="github", api_url=serve(state), project="acme/credit")
    emitted: list[CiStatus] = []
    waits: list[float] = []

    final = follow(target, sha, TOKEN, emit=emitted.append, interval=1.0, max_interval=2.0, sleep=waits.append)

    assert overall_result(final) is True
    # Four identical answers: the wait grows (1.5x, capped), then drops back once the run moves.
    assert waits[:4] == [1.0, 1.5, 2.0, 2.0]
    assert waits[4] == 1.0
    assert len(emitted) == 4  # one event per change, not one per poll


def test_follow_gives_up_when_no_run_appears(serve: Any) -> None:
    state = FakeProvider("github", "b" * 40, "success")
    target = CiTarget(provider="github", api_url=serve(state), project="acme/credit")
    emitted: list[CiStatus] = []
    with pytest.raises(CiFollowError, match=r"no CI run for cccccccccccc after 0 s: is the workflow installed"):
        follow(target, "c" * 40, TOKEN, emit=emitted.append, appear_timeout=0.0, sleep=lambda s: None)
    assert emitted[-1].message.startswith("no CI run for")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:acme/credit.git", ("github.com", "acme/credit")),
        ("https://github.com/acme/credit.git", ("github.com", "acme/credit")),
        ("https://ada:tok@github.com/acme/credit", ("github.com", "acme/credit")),
        ("ssh://git@gitlab.com:2222/acme/ml/credit.git", ("gitlab.com", "acme/ml/credit")),
        ("git@gitlab.example.org:acme/ml/credit.git", ("gitlab.example.org", "acme/ml/credit")),
    ],
)
def test_remote_urls_name_the_project(url: str, expected: tuple[str, str]) -> None:
    assert parse_remote_url(url) == expected


def test_targets_and_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLCI_GITHUB_API_URL", raising=False)
    monkeypatch.delenv("MLCI_GITLAB_API_URL", raising=False)
    assert make_target("git@github.com:acme/credit.git").api_url == "https://api.github.com"
    assert make_target("https://GitHub.com/acme/credit.git").provider == "github"
    assert make_target("https://gitlab.com/acme/ml/credit.git").api_url == "https://gitlab.com/api/v4"
    # Another host gets a token only at the API URL the config names; mlci never guesses one.
    assert make_target(
        "https://ghe.corp.example/acme/credit.git", provider="github", api_url="https://ghe.corp.example/api/v3"
    ).api_url == ("https://ghe.corp.example/api/v3")
    for url, provider in [
        ("https://ghe.corp.example/acme/credit.git", "github"),
        ("git@gitlab.example.org:a/b.git", "gitlab"),
        ("https://github.com.evil.example/acme/credit.git", "github"),
        ("https://gitlab.com.evil.example/acme/credit.git", None),
        ("https://evilgithub.com/acme/credit.git", None),
    ]:
        with pytest.raises(MlciError, match=r"cannot tell the CI provider|only to an API URL you name"):
            make_target(url, provider=provider)
    assert find_token("github", environ={"GH_TOKEN": "x", "GITHUB_TOKEN": "y"}) == "y"
    assert find_token("gitlab", environ={"GITHUB_TOKEN": "y"}) is None


class Recorder:
    """A local HTTP server that stands in for a host the token must never reach: it records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                recorder.requests.append((self.command, self.path, dict(self.headers.items())))
                payload = b'{"workflow_runs": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_CONNECT = _record

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tokens_seen(self, *tokens: str) -> list[str]:
        return [
            f"{command} {path}"
            for command, path, headers in self.requests
            if any(token in f"{path} {headers}" for token in tokens)
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("remote", "config"),
    [
        ("https://github.com.evil.example/acme/credit.git", ""),
        ("https://github.com.evil.example/acme/credit.git", "ci:\n  provider: github\n"),
        ("git@api.github.com.evil.example:acme/credit.git", "ci:\n  provider: github\n"),
        ("https://gitlab.com.evil.example/acme/credit.git", "ci:\n  provider: gitlab\n"),
        ("http://127.0.0.1:{port}/acme/credit.git", "ci:\n  provider: github\n"),
    ],
)
def test_a_lookalike_host_never_gets_the_token(repo: Path, recorder: Recorder, remote: str, config: str) -> None:
    """Before, any host with "github" in its name got the token (at https://<host>/api/v3).

    Every request the follower could make is routed to the recorder (it is the proxy for
    http and https alike, and the last case's remote itself), so it sees any attempt.
    """
    git(repo, "remote", "set-url", "origin", remote.format(port=recorder.port))
    if config:
        (repo / "mlci.yaml").write_text(config)
    proxy = f"http://127.0.0.1:{recorder.port}"
    env = _env(GITHUB_TOKEN=TOKEN, GITLAB_TOKEN=GITLAB_TOKEN, HTTPS_PROXY=proxy, HTTP_PROXY=proxy)
    env["https_proxy"], env["http_proxy"], env["NO_PROXY"] = proxy, proxy, ""

    done = _mlci(repo, env, "--once")

    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "cannot tell the CI provider" in lines[0] or "only to an API URL you name" in lines[0]
    assert TOKEN not in done.stdout + done.stderr and GITLAB_TOKEN not in done.stdout + done.stderr
    assert recorder.requests == []


def test_a_host_named_by_the_config_gets_the_token(repo: Path, serve: Any) -> None:
    """The other side of the rule: GitHub Enterprise (here, the local server) named in mlci.yaml."""
    sha = git(repo, "rev-parse", "HEAD")
    state = FakeProvider("github", sha, "success")
    url = serve(state)
    git(repo, "remote", "set-url", "origin", "https://ghe.corp.example/acme/credit.git")
    (repo / "mlci.yaml").write_text(f"ci:\n  provider: github\n  api_url: {url}/\n")

    done = _mlci(repo, _env(GITHUB_TOKEN=TOKEN), "--interval", "0.01")

    assert done.returncode == 0, done.stderr
    assert set(state.auth_headers) == {f"Bearer {TOKEN}"}
    assert TOKEN not in done.stdout + done.stderr


def _redirecting(state: FakeProvider, location: str) -> type[http.server.BaseHTTPRequestHandler]:
    """The API (authorising the token) that answers the list of runs with a redirect to `location`."""
    base = _handler(state)

    class Handler(base):  # type: ignore[valid-type,misc]
        def do_GET(self) -> None:
            if "/actions/runs?" in self.path and not self.path.startswith("/moved"):
                state.auth_headers.append(self.headers.get("Authorization", ""))
                self.send_response(302)
                self.send_header("Location", location.format(path=self.path))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path.startswith("/moved"):
                self.path = self.path.removeprefix("/moved")
            super().do_GET()

    return Handler


def test_a_redirect_to_another_host_does_not_carry_the_token(repo: Path, recorder: Recorder) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    state = FakeProvider("github", sha, "success")
    # Another host (localhost, not 127.0.0.1) and another port: urllib would resend the token there.
    api = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), _redirecting(state, f"http://localhost:{recorder.port}/stolen{{path}}")
    )
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{api.server_address[1]}"
        env = _env(GITHUB_TOKEN=TOKEN, MLCI_GITHUB_API_URL=url)
        env["NO_PROXY"] = "127.0.0.1,localhost"
        done = _mlci(repo, env, "--once")
    finally:
        api.shutdown()
        api.server_close()

    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "redirected to another host (http://localhost:" in done.stderr
    assert "not following it with the token" in done.stderr
    assert state.auth_headers == [f"Bearer {TOKEN}"]  # the API itself had it
    assert recorder.tokens_seen(TOKEN) == [] and recorder.requests == []
    assert TOKEN not in done.stdout + done.stderr


def test_a_redirect_within_the_api_host_is_followed(repo: Path, serve: Any) -> None:
    """GitHub answers a renamed repository with a redirect on api.github.com itself: that still works."""
    sha = git(repo, "rev-parse", "HEAD")
    state = FakeProvider("github", sha, "success")
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _redirecting(state, "/moved{path}"))
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{api.server_address[1]}"
        done = _mlci(repo, _env(GITHUB_TOKEN=TOKEN, MLCI_GITHUB_API_URL=url), "--interval", "0.01")
    finally:
        api.shutdown()
        api.server_close()
    assert done.returncode == 0, done.stderr
    assert set(state.auth_headers) == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("config", "line", "what"),
    [
        ("ci:\n  provider: bamboo\n", 2, "ci.provider must be one of github, gitlab, jenkins, azure"),
        ("ci:\n  api_url: https://ghe.corp.example/api/v3\n", 2, "ci.api_url needs ci.provider"),
        ("ci:\n  provider: github\n  api_url: ftp://ghe/api\n", 3, "ci.api_url must be an http(s) URL"),
        ("ci:\n  provider: github\n  api_url: http://ghe.corp.example/api/v3\n", 3, "ci.api_url must be https"),
        ("ci:\n  provider: github\n  api_url: https://u:pw@ghe/api/v3\n", 3, "ci.api_url must not hold credentials"),
    ],
)
def test_bad_ci_config_is_one_line(repo: Path, config: str, line: int, what: str) -> None:
    (repo / "mlci.yaml").write_text(config)
    done = _mlci(repo, _env(GITHUB_TOKEN=TOKEN), "--once")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert f"mlci.yaml:{line}: {what}" in done.stderr
    assert "pw" not in done.stderr


def test_follow_after_push_never_raises_and_says_why(repo: Path, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the dashboard calls after a push: problems become a message on the panel, nothing else."""
    sha = git(repo, "rev-parse", "HEAD")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]))
    seen: list[CiStatus] = []
    assert follow_after_push(repo, sha, emit=seen.append) is None
    assert seen[-1].message.startswith("no GitHub token") and seen[-1].runs == ()

    git(repo, "remote", "set-url", "origin", str(repo.parent / "remote.git"))
    assert follow_after_push(repo, sha, emit=seen.append) is None
    assert "cannot tell the CI project from the remote URL" in seen[-1].message

    git(repo, "remote", "set-url", "origin", "https://github.com/acme/credit.git")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("MLCI_GITHUB_API_URL", serve(FakeProvider("github", sha, "success")))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    final = follow_after_push(repo, sha, emit=seen.append, interval=0.01)
    assert final is not None and overall_result(final) is True
    assert all(TOKEN not in str(status) for status in seen)
