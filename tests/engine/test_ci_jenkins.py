"""Following a Jenkins build: `mlci ci status` against a local server that speaks Jenkins' APIs.

The server (127.0.0.1, a thread) serves the documented shapes recorded in tests/data/ci
(the JSON API of a multibranch project, the queue, the pipeline stages API `wfapi`) and
walks the commit's build through queued, running and finished: each look at the job moves
it one step on. It answers 401 unless the user and API token came as HTTP Basic auth, so
the tests prove the credentials are sent, and then that they never appear in the output.
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mlci.engine.ci.follow import follow_after_push, overall_result
from mlci.engine.ci.jenkins import jenkins_runs
from mlci.engine.events import CiStatus

from tests.gitrepos import git, isolated_git, make_repo

DATA = Path(__file__).resolve().parents[1] / "data" / "ci"
USER = "ada"
TOKEN = "11a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7"
CREDENTIALS = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
JOB = "/job/ml/job/credit"

# Per step: the build's (building, result), then the stages' statuses (wfapi), in order.
STEPS: list[tuple[tuple[bool, str | None], list[str]]] = [
    ((True, None), []),  # step 0: not built yet, only waiting in the queue
    ((True, None), ["IN_PROGRESS", "IN_PROGRESS"]),
    ((True, None), ["SUCCESS", "SUCCESS", "IN_PROGRESS"]),
    ((False, "@@FINAL@@"), ["SUCCESS", "SUCCESS", "@@FINAL_STAGE@@"]),
]
FINAL_STAGE = {"SUCCESS": "SUCCESS", "FAILURE": "FAILED", "UNSTABLE": "UNSTABLE"}


def _recorded(name: str, sha: str) -> Any:
    return json.loads((DATA / name).read_text().replace("@@SHA@@", sha))


@dataclass
class FakeJenkins:
    """The state behind the local Jenkins."""

    sha: str
    final: str
    """The build's result at the end: SUCCESS, FAILURE or UNSTABLE."""
    looks: int = 0
    auth_headers: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def step(self) -> int:
        return min(max(self.looks - 1, 0), 3)

    def _value(self, value: str | None) -> str | None:
        if value == "@@FINAL@@":
            return self.final
        return FINAL_STAGE[self.final] if value == "@@FINAL_STAGE@@" else value

    def answer(self, path: str, query: dict[str, list[str]]) -> Any:
        if path == f"{JOB}/api/json" and "builds[" in query.get("tree", [""])[0]:
            self.looks += 1
            body = _recorded("jenkins_job.json", self.sha)
            main = body["jobs"][0]
            (building, result), _ = STEPS[self.step]
            if self.step == 0:
                main["builds"] = main["builds"][1:]  # only the previous commit's build
            else:
                main["builds"][0].update(building=building, result=self._value(result))
            return body
        if path == "/queue/api/json" and query.get("tree", [""])[0].startswith("items["):
            body = _recorded("jenkins_queue.json", self.sha)
            if self.step > 0:
                body["items"] = body["items"][1:]  # ours left the queue: only another job's waits
            return body
        if path == f"{JOB}/job/main/42/wfapi/describe":
            body = _recorded("jenkins_wfapi_describe.json", self.sha)
            (building, _), statuses = STEPS[self.step]
            body["stages"] = body["stages"][: len(statuses)]
            for stage, status in zip(body["stages"], statuses, strict=True):
                stage["status"] = self._value(status)
            body["status"] = "IN_PROGRESS" if building else FINAL_STAGE[self.final]
            return body
        return None


def _handler(state: FakeJenkins) -> type[http.server.BaseHTTPRequestHandler]:
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
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(state: FakeJenkins) -> str:
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
    git(work, "remote", "add", "origin", "git@git.acme.example:ml/credit.git")
    return work


def _configure(repo: Path, server: str, job: str = "ml/credit") -> None:
    (repo / "mlci.yaml").write_text(f"ci:\n  provider: jenkins\n  api_url: {server}\n  job: {job}\n")


def _env(**extra: str) -> dict[str, str]:
    names = ("JENKINS_USER", "JENKINS_TOKEN", "JENKINS_USER_ID", "JENKINS_API_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in names}
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
    ("final", "code", "verdict"),
    [("SUCCESS", 0, "all runs passed"), ("FAILURE", 1, "a run failed"), ("UNSTABLE", 1, "a run failed")],
)
def test_a_jenkins_build_is_followed_stage_by_stage(
    repo: Path, serve: Any, final: str, code: int, verdict: str
) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    state = FakeJenkins(sha, final)
    _configure(repo, serve(state))

    done = _status(repo, _env(JENKINS_USER=USER, JENKINS_TOKEN=TOKEN), "--interval", "0.01")

    assert done.returncode == code, (done.stdout, done.stderr)
    out = done.stdout
    assert out.startswith(f"following jenkins CI of ml/credit at {sha[:12]}")
    runs = [line for line in out.splitlines() if line.startswith("ml/credit » main")]
    conclusion = {"SUCCESS": "success", "FAILURE": "failure", "UNSTABLE": "unstable"}[final]
    assert runs[0] == "ml/credit » main (Waiting for next available executor on \u2018gpu\u2019): queued"
    assert [line.split("  ")[0] for line in runs[1:]] == [
        "ml/credit » main #42: in_progress",
        "ml/credit » main #42: in_progress",
        f"ml/credit » main #42: {conclusion}",
    ]
    assert runs[-1].endswith("https://jenkins.acme.example/job/ml/job/credit/job/main/42/")
    assert "  code tier: in_progress" in out and "  code tier: success" in out
    assert f"  full training and gates (GPU): {conclusion}" in out
    assert "nightly" not in out and "#41" not in out and "#3" not in out  # other jobs and commits
    assert out.rstrip().endswith(verdict)
    assert TOKEN not in out + done.stderr and CREDENTIALS.split()[1] not in out + done.stderr
    assert set(state.auth_headers) == {CREDENTIALS}
    # Only the configured server and job were asked, never the URLs in Jenkins' answers.
    assert all(p.startswith((f"{JOB}/", "/queue/api/json")) for p in state.paths)


def test_json_lines_carry_the_stages(repo: Path, serve: Any) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    _configure(repo, serve(FakeJenkins(sha, "SUCCESS")) + "/")

    done = _status(repo, _env(JENKINS_USER=USER, JENKINS_TOKEN=TOKEN), "--interval", "0.01", "--json")

    assert done.returncode == 0, done.stderr
    runs = [json.loads(line)["runs"] for line in done.stdout.splitlines()]
    assert [(r[0]["status"], r[0]["conclusion"]) for r in runs] == [
        ("queued", None),
        ("in_progress", None),
        ("in_progress", None),
        ("completed", "success"),
    ]
    assert all(len(r) == 1 and r[0]["provider"] == "jenkins" for r in runs)
    assert [(j["name"], j["status"], j["conclusion"]) for j in runs[2][0]["jobs"]] == [
        ("tiers", "completed", "success"),
        ("code tier", "completed", "success"),
        ("full training and gates (GPU)", "in_progress", None),
    ]


def test_no_credentials_say_so_and_stop(repo: Path, serve: Any) -> None:
    state = FakeJenkins(git(repo, "rev-parse", "HEAD"), "SUCCESS")
    _configure(repo, serve(state))
    done = _status(repo, _env(JENKINS_USER=USER))  # a user without a token is no credential
    assert done.returncode == 3
    assert "no Jenkins API token: set JENKINS_USER and JENKINS_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr and state.paths == []


def test_a_wrong_token_is_reported_without_echoing_it(repo: Path, serve: Any) -> None:
    _configure(repo, serve(FakeJenkins(git(repo, "rev-parse", "HEAD"), "SUCCESS")))
    wrong = "11ffffffffffffffffffffffffffffffff"
    done = _status(repo, _env(JENKINS_USER_ID=USER, JENKINS_API_TOKEN=wrong), "--once")
    assert done.returncode == 3
    assert f"Jenkins API answered 401 Unauthorized for {JOB}/api/json" in done.stderr
    wrong_header = base64.b64encode(f"{USER}:{wrong}".encode()).decode()
    assert wrong not in done.stdout + done.stderr and wrong_header not in done.stdout + done.stderr


def test_no_network_says_so(repo: Path) -> None:
    before = git(repo, "for-each-ref"), git(repo, "status", "--porcelain", "--untracked-files=no")
    _configure(repo, "http://127.0.0.1:1")  # nothing listens on port 1: the connection is refused
    done = _status(repo, _env(JENKINS_USER=USER, JENKINS_TOKEN=TOKEN), "--once")
    assert done.returncode == 3
    assert "cannot reach the Jenkins API at http://127.0.0.1:1" in done.stderr
    assert "not following the remote run" in done.stderr and TOKEN not in done.stdout + done.stderr
    assert (git(repo, "for-each-ref"), git(repo, "status", "--porcelain", "--untracked-files=no")) == before


@pytest.mark.parametrize(
    ("config", "line", "what"),
    [
        ("ci:\n  provider: jenkins\n", 2, "ci.provider jenkins needs ci.api_url: the Jenkins server's URL"),
        ("ci:\n  provider: github\n  job: ml/credit\n", 3, "ci.job is for ci.provider jenkins only"),
        ("ci:\n  provider: jenkins\n  api_url: http://jenkins.acme.example\n", 3, "ci.api_url must be https"),
    ],
)
def test_bad_jenkins_config_is_one_line(repo: Path, config: str, line: int, what: str) -> None:
    (repo / "mlci.yaml").write_text(config)
    done = _status(repo, _env(JENKINS_USER=USER, JENKINS_TOKEN=TOKEN), "--once")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and f"mlci.yaml:{line}: {what}" in done.stderr


def test_the_dashboard_follows_a_jenkins_build(repo: Path, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the CI panel is fed after a push: the same statuses, and problems as a message."""
    sha = git(repo, "rev-parse", "HEAD")
    _configure(repo, serve(FakeJenkins(sha, "SUCCESS")))
    for name in ("JENKINS_USER", "JENKINS_TOKEN", "JENKINS_USER_ID", "JENKINS_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    seen: list[CiStatus] = []
    assert follow_after_push(repo, sha, emit=seen.append) is None
    assert seen[-1].message.startswith("no Jenkins API token") and seen[-1].runs == ()

    monkeypatch.setenv("JENKINS_USER", USER)
    monkeypatch.setenv("JENKINS_TOKEN", TOKEN)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    final = follow_after_push(repo, sha, emit=seen.append, interval=0.01)
    assert final is not None and overall_result(final) is True
    assert [s.runs[0].status for s in seen[1:]] == ["queued", "in_progress", "in_progress", "completed"]
    assert all(TOKEN not in str(status) for status in seen)


def test_a_server_that_echoes_the_credentials_still_gets_them_scrubbed(repo: Path) -> None:
    """Whatever comes back (here, a 401 whose reason repeats the header and the token) is printed without them."""

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            sent = self.headers.get("Authorization", "")
            decoded = base64.b64decode(sent.removeprefix("Basic ")).decode()
            self.send_response(401, f"{sent} {decoded} {decoded.partition(':')[2]}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _configure(repo, f"http://127.0.0.1:{server.server_address[1]}")
        done = _status(repo, _env(JENKINS_USER=USER, JENKINS_TOKEN=TOKEN), "--once")
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 3
    assert "Jenkins API answered 401" in done.stderr and "***" in done.stderr
    assert TOKEN not in done.stdout + done.stderr and CREDENTIALS.split()[1] not in done.stdout + done.stderr


def test_the_job_defaults_to_the_remotes_path_and_the_server_is_never_guessed(repo: Path) -> None:
    from mlci.engine.ci.follow import make_target
    from mlci.engine.errors import MlciError

    target = make_target("git@git.acme.example:ml/credit.git", provider="jenkins", api_url="https://ci.acme.example/")
    assert (target.provider, target.api_url, target.project) == ("jenkins", "https://ci.acme.example", "ml/credit")
    with pytest.raises(MlciError, match=r"Jenkins is followed at the server mlci\.yaml names"):
        make_target("git@git.acme.example:ml/credit.git", provider="jenkins")
    done = _status(repo, _env(JENKINS_USER=USER, JENKINS_TOKEN=TOKEN), "--provider", "jenkins", "--once")
    assert done.returncode == 2 and "Jenkins is followed at the server mlci.yaml names" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_change_request_merge_build_is_found_by_its_head() -> None:
    """A PR built as a merge commit records that commit as lastBuiltRevision; the PR's head is `pullHash`."""
    head, merge = "c" * 40, "d" * 40
    answers: dict[str, Any] = {
        f"{JOB}/api/json": {
            "_class": "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
            "jobs": [
                {
                    "name": "PR-7",
                    "builds": [
                        {
                            "number": 2,
                            "url": "https://jenkins.acme.example/job/ml/job/credit/job/PR-7/2/",
                            "building": False,
                            "result": "SUCCESS",
                            "actions": [
                                {
                                    "_class": "jenkins.scm.api.SCMRevisionAction",
                                    "revision": {
                                        "_class": "org.jenkinsci.plugins.github_branch_source.PullRequestSCMRevision",
                                        "pullHash": head,
                                        "baseHash": "e" * 40,
                                    },
                                },
                                {"_class": "hudson.plugins.git.util.BuildData", "lastBuiltRevision": {"SHA1": merge}},
                            ],
                        }
                    ],
                }
            ],
        },
        f"{JOB}/job/PR-7/2/wfapi/describe": {"stages": [{"name": "code tier", "status": "SUCCESS"}]},
        "/queue/api/json": {"items": []},
    }
    asked: list[str] = []

    def get(path: str, query: Mapping[str, str]) -> Any:
        asked.append(path)
        return answers[path]

    (run,) = jenkins_runs(get, "ml/credit", head)
    assert (run.name, run.status, run.conclusion) == ("ml/credit » PR-7 #2", "completed", "success")
    assert [(j.name, j.conclusion) for j in run.jobs] == [("code tier", "success")]
    assert asked == [f"{JOB}/api/json", f"{JOB}/job/PR-7/2/wfapi/describe"]
    assert jenkins_runs(get, "ml/credit", "f" * 40) == ()  # no build of it, none queued
