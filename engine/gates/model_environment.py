"""Whether this interpreter has what an MLflow model was logged with: its pinned packages and Python.

`mlflow.pyfunc.load_model` makes the same check and logs a warning, but in the gates child that
warning lands among the lines of stderr that are shown only when the child fails, so the
dashboard never showed it; and it costs 0.2 CPU-s of every gates run, since MLflow maps every
installed distribution to its modules first. Here each requirement is looked up by name
(`importlib.metadata.version`), and what differs becomes a progress line of the gates: a
figure measured with another torch than the model's may not be the figure production sees.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["environment_differences"]

_PYTHON = re.compile(r"^python:\s*['\"]?(\d+)\.(\d+)", re.MULTILINE)
"""The `python: 3.11.7` line of the model's python_env.yaml (read without a YAML parser)."""


def _requirement_difference(line: str) -> str | None:
    """What this environment lacks of one requirements.txt line (None when it has it, or cannot tell)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion

    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return None  # a path, a URL or an option (`-r`, `--index-url`): not a package to look up
    if requirement.marker is not None and not requirement.marker.evaluate():
        return None
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        return f"{requirement.name} is not installed (the model needs {line})"
    try:
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            return f"{requirement.name} {installed} is installed (the model needs {line})"
    except InvalidVersion:
        return None
    return None


def _text(path: Path) -> str:
    """The file's text; "" when it is missing or unreadable (nothing to differ from)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def environment_differences(model_dir: Path) -> list[str]:
    """How this environment differs from the one the model at `model_dir` was logged with ([] when it does not).

    Reads the model's `requirements.txt` and `python_env.yaml`; a model without them (not logged
    by MLflow, or logged without an environment) has nothing to differ from.
    """
    differences: list[str] = []
    if (found := _PYTHON.search(_text(model_dir / "python_env.yaml"))) is not None:
        logged = (int(found.group(1)), int(found.group(2)))
        if logged != sys.version_info[:2]:
            differences.append(
                f"Python {sys.version_info[0]}.{sys.version_info[1]} runs here (the model was logged on "
                f"{logged[0]}.{logged[1]})"
            )
    for raw in _text(model_dir / "requirements.txt").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#") and (difference := _requirement_difference(line)) is not None:
            differences.append(difference)
    return differences
