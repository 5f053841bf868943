"""The talk that plays itself, from start to end (quick mode), each step's verdict asserted from its output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_local_ci import _switch_local_ci_on

pytestmark = pytest.mark.e2e

MLCI = str(Path(sys.executable).with_name("mlci"))

EXPECTED = (
    "code tier red: tests/unit/test_features.py::test_transform_is_standardised",
    "code green",
    "data tier red: tests/data/test_drift.py::",
    "data, model green",
    "regression gate red: ",
    "gates pass; ",
    "champion",
    "pushed; the check passed; remote CI green",
)


@pytest.mark.timeout(2400)  # eight steps, three trainings, a check and a remote CI run
def test_the_scenario_plays_from_start_to_end(sandbox: Path, tool_env: dict[str, str]) -> None:
    _switch_local_ci_on(sandbox, tool_env)  # as `mlci demo` leaves it; the test fixture switched it off
    result = subprocess.run(
        [MLCI, "demo", "--scenario", "--headless", "--on", str(sandbox)],
        capture_output=True,
        text=True,
        env=tool_env,
        check=False,
        timeout=2400,
    )
    answers = [
        line for line in result.stdout.splitlines() if line.startswith("[") and ("  ✓ " in line or "  ✗ " in line)
    ]
    assert result.returncode == 0, "\n".join(answers) + "\n" + result.stdout[-3000:] + result.stderr[-2000:]
    assert len(answers) == len(EXPECTED), answers
    for number, (line, expected) in enumerate(zip(answers, EXPECTED, strict=True), 1):
        assert (line.startswith(f"[{number}/8]") and f"✓ {expected}" in line) or expected in line, (number, line)
    assert "the end" in result.stdout
    # The story leaves the branch pushed, and nothing of the presenter's tree uncommitted.
    status = subprocess.run(["git", "status", "--porcelain"], cwd=sandbox, capture_output=True, text=True, check=True)
    assert status.stdout == ""
