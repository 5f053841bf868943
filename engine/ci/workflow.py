"""Write the remote CI workflow (`mlci ci init`): GitHub Actions, GitLab CI, Jenkins or Azure Pipelines.

The workflow installs the project and calls `mlci` itself, so the remote runs exactly the
checks that run locally: the code tier on every push; the data tier, the quick model tier
and the gates on pull (merge, change) requests, with `mlci report` posted there; full
training and the gates on the main branch and on a weekly schedule, on a GPU runner (a
`gpu` runner label, agent label or self-hosted agent pool).

The templates live in `templates/` next to this module; `@@NAME@@` placeholders are
used because `${{ }}` and `$VAR` belong to the CI languages themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlci.engine.errors import MlciError

__all__ = ["WORKFLOW_FILES", "WrittenFile", "render_workflow", "write_workflow"]

WORKFLOW_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "github": (
        (".github/workflows/mlci.yml", "github-mlci.yml"),
        (".github/actionlint.yaml", "github-actionlint.yaml"),
    ),
    "gitlab": ((".gitlab-ci.yml", "gitlab-ci.yml"),),
    "jenkins": (("Jenkinsfile", "Jenkinsfile"),),
    "azure": (("azure-pipelines.yml", "azure-pipelines.yml"),),
}
"""Per provider: (path in the project, template name). The first file is the workflow itself."""

DEFAULT_INSTALL = "mlci-tui"
"""What the workflow installs to get `mlci` (a pip requirement: a version pin, a git URL)."""


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    written: bool
    """False when an existing file was kept (a helper file that the user already has)."""
    note: str = ""


def render_workflow(
    template: str, *, main_branch: str = "main", python_version: str = "3.11", install: str = DEFAULT_INSTALL
) -> str:
    """A template's text with the project's values filled in."""
    text = resources.files("mlci.engine.ci").joinpath("templates", template).read_text(encoding="utf-8")
    values = {"MAIN_BRANCH": main_branch, "PYTHON_VERSION": python_version, "MLCI_INSTALL": install}
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    if "@@" in text:  # a placeholder without a value is a bug in the template, never the user's
        raise MlciError(f"template {template} has a placeholder that no value fills")
    return text


def write_workflow(
    root: Path,
    provider: str,
    *,
    force: bool = False,
    main_branch: str = "main",
    python_version: str = "3.11",
    install: str = DEFAULT_INSTALL,
) -> tuple[WrittenFile, ...]:
    """Write the provider's workflow into the project; refuse to overwrite it unless `force`.

    A helper file (actionlint's runner labels) that already exists is kept as it is, with a
    note, since it may hold the user's own settings.
    """
    if provider not in WORKFLOW_FILES:
        raise MlciError(f"unknown CI provider {provider!r} (expected: {', '.join(WORKFLOW_FILES)})")
    files = WORKFLOW_FILES[provider]
    workflow_path = root / files[0][0]
    if workflow_path.exists() and not force:
        raise MlciError(f"{files[0][0]} already exists: pass --force to overwrite it")
    rendered = [
        (root / rel, render_workflow(t, main_branch=main_branch, python_version=python_version, install=install))
        for rel, t in files
    ]
    written = []
    for index, (path, text) in enumerate(rendered):
        if index > 0 and path.exists():
            note = "kept as it is: make sure it declares the `gpu` self-hosted runner label"
            written.append(WrittenFile(path=path, written=False, note=note))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".mlci-tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: a half-written workflow never lands in the project
        written.append(WrittenFile(path=path, written=True))
    return tuple(written)
