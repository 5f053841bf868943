"""`run_check` and `mlci run` / `mlci check`: every tier once, in order, holding after red; exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import Tier, Verdict
from mlci.engine.loop.check import CheckResult, run_check

from tests.loop_projects import EventLog, make_project

pytestmark = pytest.mark.usefixtures("only_testmon")

TWO_TIERS = "tiers:\n  code:\n    tests: [tests/unit]\n  data:\n    tests: [tests/data]\n"


def two_tier_project(root: Path, unit: str) -> Path:
    return make_project(
        root,
        tests={"tests/unit/test_u.py": unit, "tests/data/test_d.py": "def test_rows():\n    assert 3 > 2\n"},
        config=TWO_TIERS,
    )


def test_a_green_project_passes_the_check(tmp_path: Path) -> None:
    root = two_tier_project(tmp_path / "p", "def test_u():\n    pass\n")
    log = EventLog()
    assert run_check(load_config(root), emit=log) == CheckResult(ok=True, failures=())
    assert [f.verdict for f in log.finished(Tier.CODE) + log.finished(Tier.DATA)] == [Verdict.PASSED] * 2
    code_start, data_start = log.started(Tier.CODE)[0], log.started(Tier.DATA)[0]
    assert code_start.at <= data_start.at


def test_a_red_tier_fails_the_check_naming_the_test_and_holds_the_next(tmp_path: Path) -> None:
    root = two_tier_project(tmp_path / "p", "def test_ok():\n    pass\n\ndef test_y():\n    assert False\n")
    result = run_check(load_config(root), emit=EventLog())
    assert result == CheckResult(
        ok=False,
        failures=(
            "code tier: 1 failed: tests/unit/test_u.py::test_y",
            "data tier: held: code tier is red",
        ),
    )


def mlci(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"NO_COLOR": "1", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
    )


def test_mlci_check_and_run_exit_non_zero_when_red(tmp_path: Path) -> None:
    root = two_tier_project(tmp_path / "p", "def test_y():\n    assert False\n")
    check = mlci("check", cwd=root)
    assert check.returncode == 1, check.stderr
    assert "✘ red:\n  code tier: 1 failed: tests/unit/test_u.py::test_y\n  data tier: held" in check.stdout
    assert "FAILED tests/unit/test_u.py::test_y  assert False" in check.stdout
    assert "\033[" not in check.stdout  # not a terminal: no colour
    only_data = mlci("run", "--tier", "data", cwd=root)
    assert only_data.returncode == 0, only_data.stdout + only_data.stderr
    assert "▶ data" in only_data.stdout and "▶ code" not in only_data.stdout
    assert only_data.stdout.rstrip().endswith("✔ all green")


def test_mlci_run_json_prints_one_event_per_line(tmp_path: Path) -> None:
    import json

    root = two_tier_project(tmp_path / "p", "def test_u():\n    pass\n")
    result = mlci("run", "--tier", "code", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "PlanMade" and types[-1] == "TierFinished"
    assert {"TierStarted", "OutputLines", "TestResult"} <= set(types)
    assert events[-1]["verdict"] == "passed"


def test_bad_config_or_a_missing_tier_runs_nothing(tmp_path: Path) -> None:
    root = two_tier_project(tmp_path / "p", "def test_u():\n    pass\n")
    no_model = mlci("run", "--tier", "model", cwd=root)
    assert no_model.returncode == 2
    assert "this project has no model tier" in no_model.stderr
    (root / "mlci.yaml").write_text("tiers:\n  code:\n    timeout: soon\n")
    for command in ("run", "check", "watch", "why"):
        bad = mlci(command, cwd=root)
        assert bad.returncode == 2, command
        assert "mlci.yaml:3" in bad.stderr and "timeout must be a number" in bad.stderr
        assert "Traceback" not in bad.stderr
    assert not (root / ".mlci").exists()


def test_mlci_check_checks_a_commit_in_place_or_apart(tmp_path: Path) -> None:
    from tests.loop_projects import git

    root = two_tier_project(tmp_path / "p", "def test_u():\n    pass\n")
    green = git(root, "rev-parse", "HEAD").strip()
    (root / "tests" / "unit" / "test_u.py").write_text("def test_u():\n    assert False\n")
    git(root, "commit", "-qam", "break it")

    red_head = mlci("check", cwd=root)
    assert red_head.returncode == 1
    assert "in place: the working tree is exactly" in red_head.stdout

    older = mlci("check", "--commit", green[:10], cwd=root)
    assert older.returncode == 0, older.stdout + older.stderr
    assert f"checking {green[:8]} in a temporary worktree (HEAD is " in older.stdout
    assert git(root, "worktree", "list").count("\n") == 1  # the worktree is gone again

    unknown = mlci("check", "--commit", "no-such-branch", cwd=root)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == f"mlci check: 'no-such-branch' names no commit in {root}"


def test_a_tree_that_changes_during_an_in_place_check_is_not_a_verdict_on_the_commit(tmp_path: Path) -> None:
    writes = "from pathlib import Path\n\n\ndef test_u():\n    Path('notes.txt').write_text('written by a test\\n')\n"
    root = make_project(tmp_path / "p", tests={"tests/test_u.py": writes, "notes.txt": "as committed\n"})

    done = mlci("check", cwd=root)

    assert done.returncode == 1, done.stdout
    assert "in place: the working tree is exactly" in done.stdout
    assert "the working tree changed during the check (1 uncommitted file differs from" in done.stdout
